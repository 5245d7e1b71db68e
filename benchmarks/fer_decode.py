"""FER2013 loading against the reference code's Dataset, on a fer2013.csv of the real size and format.

The reference code (like most FER2013 loaders) reads the CSV with pandas and parses a row's pixel string
inside `__getitem__` (`data.iloc[idx]`, then `np.fromstring(pixels, sep=' ', dtype=np.uint8).reshape(48, 48)`),
on every access of every epoch. Two measurements:

(a) first read of a fresh file: `read_fer_csv` with an empty decode cache (parse, check every row, build the
    records, write the cache) vs `pd.read_csv` + one `np.fromstring` per row over all rows (the reference's
    decoding without its per-access `iloc`, so a lower bound of its first epoch's decoding);
(b) data loading of one epoch as a DataLoader worker runs it: every image through `Dataset.__getitem__`, and each
    batch through the collate function, to the prepared [batch, C, S, S] tensor. Ours: RecordDataset over the
    decoded ImageRecords (uint8 faces) and Collator, which resizes and normalises a batch at once
    (Preprocessor.image_batch). Reference: iloc + fromstring + per-sample preprocessing (PIL resize, NumPy
    normalisation: this package's per-sample path before batching) and torch's default collation (stacking).
    One torch thread, as in a DataLoader worker; no augmentation on either side (per sample on uint8 faces on
    both, so the same cost). Blocks of batches alternate between the two, so load from other processes hits both
    alike.

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
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report, timed  # noqa: E402

from emoxformer.data.collate import Collator  # noqa: E402
from emoxformer.data.datasets import RecordDataset  # noqa: E402
from emoxformer.data.fer2013 import read_fer_csv  # noqa: E402
from emoxformer.model.config import EmoXFormerConfig  # noqa: E402
from emoxformer.model.preprocessing import Preprocessor, to_uint8_image  # noqa: E402

FER_DATASET_INDEX = 2  # fer2013 in DATASET_NAMES
BLOCK = 1024  # images per alternating timing block (whole batches)


def reference_prepare_image(config, image) -> torch.Tensor:
    """Per-sample preprocessing as this package did it before batching (PIL convert and resize, NumPy
    normalisation), standing for the reference code's per-sample transform."""
    pil = Image.fromarray(to_uint8_image(image))
    if config.image_colour == "grey":
        pil = pil.convert("L")
    pil = pil.convert("L" if config.image_channels == 1 else "RGB")
    if pil.size != (config.image_size, config.image_size):
        pil = pil.resize((config.image_size, config.image_size), Image.BILINEAR)
    values = np.asarray(pil, dtype=np.float32) / 255.0
    values = values[None] if values.ndim == 2 else values.transpose(2, 0, 1)
    mean = np.asarray(config.image_mean, dtype=np.float32)[:, None, None]
    std = np.asarray(config.image_std, dtype=np.float32)[:, None, None]
    return torch.from_numpy((values - mean) / std)


class ReferenceFERDataset(Dataset):
    """The reference code's approach: the raw DataFrame, one row parsed and preprocessed per access."""

    def __init__(self, csv_path: Path, preprocessor: Preprocessor):
        self.data = pd.read_csv(csv_path)
        self.preprocessor = preprocessor

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> dict:
        row = self.data.iloc[idx]
        pixels = np.fromstring(row["pixels"], sep=" ", dtype=np.uint8).reshape(48, 48)
        return {"label": int(row["emotion"]), "vision": reference_prepare_image(self.preprocessor.config, pixels)}


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


def our_batch(dataset: RecordDataset, collate: Collator, indices) -> torch.Tensor:
    return collate([dataset[i] for i in indices])["vision"]["pixel_values"]


def reference_batch(dataset: ReferenceFERDataset, indices) -> torch.Tensor:
    return default_collate([dataset[i] for i in indices])["vision"]


def interleaved_epoch(ours: RecordDataset, reference: ReferenceFERDataset, images: int, batch_size: int) -> tuple[float, float]:
    """Seconds for one epoch of batches (__getitem__ per image, then collation) on each side, timed in
    alternating blocks of whole batches."""
    collate = Collator()
    batches = [range(start, min(start + batch_size, images)) for start in range(0, images, batch_size)]
    per_block = max(1, BLOCK // batch_size)
    ours_s = reference_s = 0.0
    for first in range(0, len(batches), per_block):
        block = batches[first:first + per_block]
        begin = time.perf_counter()
        for indices in block:
            our_batch(ours, collate, indices)
        ours_s += time.perf_counter() - begin
        begin = time.perf_counter()
        for indices in block:
            reference_batch(reference, indices)
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
    parser.add_argument("--batch-size", type=int, default=32, help="images per collated batch in (b)")
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

        # (b) one epoch of __getitem__ and collation per image size, one torch thread as in a DataLoader worker
        epoch = {}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        for size in dict.fromkeys([48, args.image_size]):
            preprocessor = image_preprocessor(size)
            ours = RecordDataset(records, FER_DATASET_INDEX, preprocessor)
            reference = ReferenceFERDataset(path, preprocessor)
            our_batch(ours, Collator(), range(args.batch_size)), reference_batch(reference, range(args.batch_size))  # warm-up
            epoch[size] = interleaved_epoch(ours, reference, len(records), args.batch_size)
            reference_s, ours_s = epoch[size]
            print(f"  (b) one epoch, {len(records)} x __getitem__ + collation in batches of {args.batch_size} to "
                  f"{preprocessor.config.image_channels}x{size}x{size} (1 torch thread): ours {ours_s:.1f} s, "
                  f"reference {reference_s:.1f} s, x{reference_s / ours_s:.2f}")
        torch.set_num_threads(threads)
    baseline_s, ours_s = epoch[args.image_size]
    report("fer_decode", baseline_s, ours_s, image_size=args.image_size, batch_size=args.batch_size,
           epoch_ratio_48px=round(epoch[48][0] / epoch[48][1], 2), first_read_baseline_s=round(first_reference, 4),
           first_read_ours_s=round(first_ours, 4), first_read_ratio=round(first_reference / first_ours, 2))

if __name__ == "__main__":
    main()
