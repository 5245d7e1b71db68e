"""FER2013 loading against the reference code's Dataset, on a fer2013.csv of the real size and format.

The reference code (like most FER2013 loaders) reads the CSV with pandas and parses a row's pixel string
inside `__getitem__` (`data.iloc[idx]`, then `np.fromstring(pixels, sep=' ', dtype=np.uint8).reshape(48, 48)`),
on every access of every epoch. Two measurements:

(a) first read of a fresh file: `read_fer_csv` with an empty decode cache (parse, check every row, build the
    records, write the cache) vs `pd.read_csv` + one `np.fromstring` per row over all rows (the reference's
    decoding without its per-access `iloc`, so a lower bound of its first epoch's decoding);
(b) data loading of one epoch: every image through `Dataset.__getitem__` as the DataLoader calls it, to the
    prepared tensor: RecordDataset over the decoded ImageRecords vs the reference Dataset (iloc + fromstring +
    the same Preprocessor.prepare_image). No augmentation on either side (it would add the same cost to both).
    Blocks of images alternate between the two, so load from other processes hits both alike.

Last line: {"name", "baseline_s", "ours_s", "ratio"} for (b) at the chosen image size, plus `first_read_*` for
(a) and `epoch_ratio_48px` for (b) with the 48x48 grey input of the built-in face encoder.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report, timed  # noqa: E402

from emoxformer.data.datasets import RecordDataset  # noqa: E402
from emoxformer.data.fer2013 import read_fer_csv  # noqa: E402
from emoxformer.model.config import EmoXFormerConfig  # noqa: E402
from emoxformer.model.preprocessing import Preprocessor  # noqa: E402

FER_DATASET_INDEX = 2  # fer2013 in DATASET_NAMES
BLOCK = 1000  # images per alternating timing block


class ReferenceFERDataset(Dataset):
    """The reference code's approach: the raw DataFrame, one row parsed per access."""

    def __init__(self, csv_path: Path, preprocessor: Preprocessor):
        self.data = pd.read_csv(csv_path)
        self.preprocessor = preprocessor

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> dict:
        row = self.data.iloc[idx]
        pixels = np.fromstring(row["pixels"], sep=" ", dtype=np.uint8).reshape(48, 48)
        return {"label": int(row["emotion"]), "vision": self.preprocessor.prepare_image(pixels)}


def write_fer_csv(path: Path, rows: int, seed: int = 0) -> None:
    """emotion,pixels,Usage rows in the real file's format (48x48 values 0..255, single spaces)."""
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (256, 48 * 48))
    usages = np.array(["Training", "PublicTest", "PrivateTest"])[rng.integers(0, 3, rows)]
    pd.DataFrame({"emotion": rng.integers(0, 7, rows), "pixels": [" ".join(map(str, faces[i % 256])) for i in range(rows)],
                  "Usage": usages}).to_csv(path, index=False)


def reference_first_read(path: Path) -> list[np.ndarray]:
    frame = pd.read_csv(path)
    return [np.fromstring(pixels, sep=" ", dtype=np.uint8).reshape(48, 48) for pixels in frame["pixels"]]


def our_first_read(path: Path, scratch: Path):
    """read_fer_csv with the decode cache pointed at a new, empty folder."""
    cache = Path(tempfile.mkdtemp(dir=scratch))
    os.environ["EMOXFORMER_CACHE"] = str(cache)
    try:
        return read_fer_csv(path)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def interleaved_epoch(ours: Dataset, reference: Dataset, images: int) -> tuple[float, float]:
    """Seconds for `images` __getitem__ calls on each dataset, timed in alternating blocks."""
    ours_s = reference_s = 0.0
    for start in range(0, images, BLOCK):
        indices = range(start, min(start + BLOCK, images))
        begin = time.perf_counter()
        for i in indices:
            ours[i]
        ours_s += time.perf_counter() - begin
        begin = time.perf_counter()
        for i in indices:
            reference[i]
        reference_s += time.perf_counter() - begin
    return reference_s, ours_s


def image_preprocessor(size: int) -> Preprocessor:
    """Image settings of ViT-B/16 (224, RGB, mean = std = 0.5) or of the built-in grey face encoder (48)."""
    if size == 48:
        return Preprocessor(EmoXFormerConfig())
    return Preprocessor(EmoXFormerConfig(image_size=size, image_channels=3, image_mean=[0.5] * 3, image_std=[0.5] * 3))


def check_same_pixels(records: list, reference: list[np.ndarray]) -> None:
    by_row = sorted(records, key=lambda r: int(r.id.split("/")[-1]))
    if len(by_row) != len(reference) or not all(np.array_equal(a.pixels, b) for a, b in zip(by_row, reference)):
        raise AssertionError("read_fer_csv and the reference decoding differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=35_887)
    parser.add_argument("--repeats", type=int, default=3, help="first-read repeats (best of)")
    parser.add_argument("--image-size", type=int, default=224, help="prepared image side for (b); 224 = ViT-B/16")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "fer2013.csv"
        write_fer_csv(path, args.rows)
        print(f"fer_decode: {args.rows} rows ({path.stat().st_size / 1e6:.0f} MB); {machine()}")

        # (a) alternating repeats, best of each
        first_ours, first_reference = float("inf"), float("inf")
        for _ in range(args.repeats):
            first_reference = min(first_reference, timed(lambda: reference_first_read(path), 1))
            first_ours = min(first_ours, timed(lambda: our_first_read(path, tmp), 1))
        print(f"  (a) first read, empty cache: ours {first_ours:.2f} s, reference {first_reference:.2f} s, "
              f"x{first_reference / first_ours:.2f} (best of {args.repeats})")
        os.environ["EMOXFORMER_CACHE"] = str(tmp / "cache")
        split_records = read_fer_csv(path)  # fills the cache
        warm = timed(lambda: read_fer_csv(path), 2)
        print(f"      later reads (decode cache warm): {warm:.2f} s")
        records = split_records.train + split_records.val + split_records.test
        check_same_pixels(records, reference_first_read(path))
        records.sort(key=lambda r: int(r.id.split("/")[-1]))  # same row order as the reference Dataset

        # (b) one epoch of __getitem__ per image size
        epoch = {}
        for size in dict.fromkeys([48, args.image_size]):
            preprocessor = image_preprocessor(size)
            ours = RecordDataset(records, FER_DATASET_INDEX, preprocessor)
            reference = ReferenceFERDataset(path, preprocessor)
            ours[0], reference[0]  # warm-up
            epoch[size] = interleaved_epoch(ours, reference, len(records))
            reference_s, ours_s = epoch[size]
            print(f"  (b) one epoch, {len(records)} x __getitem__ to a {preprocessor.config.image_channels}x{size}x{size} "
                  f"tensor: ours {ours_s:.1f} s, reference {reference_s:.1f} s, x{reference_s / ours_s:.2f}")
    baseline_s, ours_s = epoch[args.image_size]
    report("fer_decode", baseline_s, ours_s, image_size=args.image_size,
           epoch_ratio_48px=round(epoch[48][0] / epoch[48][1], 2), first_read_baseline_s=round(first_reference, 4),
           first_read_ours_s=round(first_ours, 4), first_read_ratio=round(first_reference / first_ours, 2))

if __name__ == "__main__":
    main()
