"""FER2013 loading: this project's vectorised pixel decoding vs the seed's per-row parsing.

Writes a fer2013.csv of 35,887 rows (the real size) in the real format, then times reading it into
uint8 48x48 arrays both ways. Last line: {"name", "baseline_s", "ours_s", "ratio"}.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report, timed  # noqa: E402

from emoxformer.data.fer2013 import read_fer_csv  # noqa: E402


def seed_style(path: Path) -> list[np.ndarray]:
    """What the reference code does: pandas rows, one string split and array per image."""
    frame = pd.read_csv(path)
    return [np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48) for _, row in frame.iterrows()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=35_887)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fer2013.csv"
        base = rng.integers(0, 256, (256, 48 * 48))
        usages = np.array(["Training", "PublicTest", "PrivateTest"])[rng.integers(0, 3, args.rows)]
        frame = pd.DataFrame({"emotion": rng.integers(0, 7, args.rows),
                              "pixels": [" ".join(map(str, base[i % 256])) for i in range(args.rows)], "Usage": usages})
        frame.to_csv(path, index=False)
        print(f"fer_decode: {args.rows} rows ({path.stat().st_size / 1e6:.0f} MB), best of {args.repeats}; {machine()}")
        os.environ["EMOXFORMER_CACHE"] = "off"  # time the decoding itself, not the decoded-array cache
        ours = timed(lambda: read_fer_csv(path), args.repeats)
        os.environ["EMOXFORMER_CACHE"] = str(Path(tmp) / "cache")
        read_fer_csv(path)  # fills the cache
        warm = timed(lambda: read_fer_csv(path), args.repeats)
        print(f"  with the decoded-array cache warm (later runs): {warm:.3f} s")
        baseline = timed(lambda: seed_style(path), args.repeats)
        ours_images = read_fer_csv(path)
        reference = seed_style(path)
        decoded = sorted(ours_images.train + ours_images.val + ours_images.test, key=lambda r: int(r.id.split("/")[-1]))
        assert all(np.array_equal(a.pixels, b) for a, b in zip(decoded, reference)), "decodings differ"
    report("fer_decode", baseline, ours)


if __name__ == "__main__":
    main()
