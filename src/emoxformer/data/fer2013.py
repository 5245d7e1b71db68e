"""Reader for FER2013: `fer2013.csv` (emotion,pixels,Usage) or the image-folder variant."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..labels import FER_FOLDER_TO_EMOTION, FER_INDEX_TO_EMOTION, LABEL_TO_INDEX
from .cache import fingerprint, load_arrays, save_arrays
from .errors_policy import BadRowPolicy
from .records import ImageRecord, SplitRecords

FER_SIDE = 48
FER_PIXELS = FER_SIDE * FER_SIDE
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_ROWS_PER_CHUNK = 1024


def decode_pixel_strings(pixels: list[str], n_values: int = FER_PIXELS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse whitespace-separated pixel strings in one C-level pass per chunk instead of a Python loop over values.

    Returns (images uint8 [n_good, n_values], indices of the good rows, a problem string per row, "" when good).
    """
    problems = [""] * len(pixels)
    for row in _rows_with_bad_characters(pixels):
        problems[row] = "pixel string holds non-numeric tokens"
    candidates = np.array([row for row, problem in enumerate(problems) if not problem], dtype=np.int64)
    images = np.empty((len(candidates), n_values), dtype=np.uint8)
    # Chunks of rows: one huge string makes np.fromstring several times slower (its output keeps reallocating).
    for start in range(0, len(candidates), _ROWS_PER_CHUNK):
        chunk = candidates[start:start + _ROWS_PER_CHUNK]
        texts = [pixels[row] for row in chunk]
        values = _decode_chunk(texts, n_values)
        if values is None:  # some row has the wrong number of values: find it
            values, chunk_problems = _decode_rows(texts, n_values)
        else:
            chunk_problems = ["pixel value above 255" if too_big else "" for too_big in (values > 255).any(axis=1)]
        images[start:start + len(chunk)] = values
        for row, problem in zip(chunk.tolist(), chunk_problems):
            problems[row] = problem
    good = np.array([not problems[row] for row in candidates.tolist()], dtype=bool)
    return images[good], candidates[good], problems


_ROW_END = -1  # written after every row of a chunk; rows hold only digits and whitespace, so never a pixel


def _decode_chunk(texts: list[str], n_values: int) -> np.ndarray | None:
    """The chunk's values [rows, n_values], or None unless every row holds exactly `n_values` values.

    The end marker after each row must land in column `n_values` of every row: a short row followed by a long
    one keeps the total size right but moves the markers. Parsing as int64 saturates absurdly long digit runs
    (to 2^63 - 1, "above 255") instead of wrapping them into 0..255 as int32 did; should a platform wrap them
    to a negative value that could pose as a marker, the chunk goes to the row-by-row path.
    """
    end = f" {_ROW_END} "
    values = np.fromstring(end.join(texts) + end, dtype=np.int64, sep=" ")
    if values.size != len(texts) * (n_values + 1):
        return None
    values = values.reshape(len(texts), n_values + 1)
    if (values[:, n_values] != _ROW_END).any() or (values[:, :n_values] < 0).any():
        return None
    return values[:, :n_values]


def _decode_rows(texts: list[str], n_values: int) -> tuple[np.ndarray, list[str]]:
    """Row by row (slow; only for a chunk holding a bad row): values [rows, n_values] and a problem per row."""
    values = np.zeros((len(texts), n_values), dtype=np.int64)
    problems = []
    for row, text in enumerate(texts):
        numbers = [int(token) for token in text.split()]
        if len(numbers) != n_values:
            problems.append(f"pixel string has {len(numbers)} values, expected {n_values}")
        elif max(numbers) > 255:
            problems.append("pixel value above 255")
        else:
            problems.append("")
            values[row] = numbers
    return values, problems


def _rows_with_bad_characters(pixels: list[str]) -> list[int]:
    """Rows holding anything but digits and whitespace; one C-level pass when every row is clean."""
    joined = "\n".join(pixels).encode("ascii", errors="replace")
    if not joined.translate(None, delete=_ALLOWED_BYTES):
        return []
    return [row for row, text in enumerate(pixels) if text.encode("ascii", errors="replace").translate(None, delete=_ALLOWED_BYTES)]


_ALLOWED_BYTES = b"0123456789 \t\r\n"


def _decode_cached(path: Path, pixels: pd.Series) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """decode_pixel_strings, reusing an earlier decoding of the same file (same path, size and mtime)."""
    key = fingerprint([path], version=2)  # 2: rows checked per chunk (version 1 could shift pixels)
    cached = load_arrays("fer2013", key)
    if cached is not None and len(cached["problems"]) == len(pixels):
        return cached["images"], cached["rows"], cached["problems"].tolist()
    images, rows, problems = decode_pixel_strings(pixels.tolist())
    save_arrays("fer2013", key, images=images, rows=rows, problems=np.array(problems, dtype=str))
    return images, rows, problems


def read_fer_csv(path: str | Path, skip_bad: bool = False) -> SplitRecords:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(path, f"not a readable CSV ({str(exc).splitlines()[0]})") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("emotion", "pixels", "Usage") if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; expected emotion,pixels,Usage")
    policy = BadRowPolicy(skip_bad)
    images, good_rows, problems = _decode_cached(path, frame["pixels"])
    image_of_row = dict(zip(good_rows.tolist(), range(len(good_rows))))
    result = SplitRecords()
    emotions, usages = frame["emotion"].tolist(), frame["Usage"].tolist()
    for row in range(len(frame)):
        emotion, usage = emotions[row].strip(), usages[row].strip()
        if not emotion.isdigit() or int(emotion) not in FER_INDEX_TO_EMOTION:
            policy.bad(path, f"unknown emotion {emotion!r} (FER2013 uses 0..6)", row + 1)
            continue
        if usage not in USAGE_TO_SPLIT:
            policy.bad(path, f"unknown Usage {usage!r} (expected Training, PublicTest or PrivateTest)", row + 1)
            continue
        if problems[row]:
            policy.bad(path, problems[row], row + 1)
            continue
        pixels = images[image_of_row[row]].reshape(FER_SIDE, FER_SIDE)
        label = LABEL_TO_INDEX[FER_INDEX_TO_EMOTION[int(emotion)]]
        result[USAGE_TO_SPLIT[usage]].append(ImageRecord(id=f"fer2013/{usage}/{row}", label=label, usage=usage, pixels=pixels))
    result.skipped = policy.skipped
    return result


def _usage_from_name(name: str) -> str | None:
    for usage in USAGE_TO_SPLIT:
        if name.startswith(usage):
            return usage
    return None


def read_fer_folders(root: str | Path, val_fraction: float = 0.1, seed: int = 42, skip_bad: bool = False) -> SplitRecords:
    """The image-folder variant `root/{train,test}/<class>/*.jpg|png`.

    Validation: when test file names keep the original Usage (`PublicTest_…`, `PrivateTest_…`), the
    official PublicTest/PrivateTest split is recovered; otherwise a seeded hold-out of `train` is used.
    """
    root = Path(root)
    policy = BadRowPolicy(skip_bad)
    by_folder: dict[str, list[ImageRecord]] = {}
    for folder in ("train", "test"):
        folder_path = root / folder
        if not folder_path.is_dir():
            raise DataError(folder_path, "FER2013 image folder not found")
        records: list[ImageRecord] = []
        for class_dir in sorted(p for p in folder_path.iterdir() if p.is_dir()):
            if class_dir.name.lower() not in FER_FOLDER_TO_EMOTION:
                raise DataError(class_dir, f"unknown class folder (expected {', '.join(FER_FOLDER_TO_EMOTION)})")
            label = LABEL_TO_INDEX[FER_FOLDER_TO_EMOTION[class_dir.name.lower()]]
            for path in sorted(class_dir.iterdir()):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    with Image.open(path) as image:
                        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
                except (UnidentifiedImageError, OSError) as exc:
                    policy.bad(path, f"unreadable image ({exc.__class__.__name__})")
                    continue
                usage = _usage_from_name(path.name) or ("Training" if folder == "train" else "Test")
                records.append(ImageRecord(id=f"fer2013/{folder}/{class_dir.name}/{path.stem}", label=label, usage=usage, pixels=pixels))
        by_folder[folder] = records
    result = SplitRecords(skipped=policy.skipped)
    test = by_folder["test"]
    if test and all(r.usage in ("PublicTest", "PrivateTest") for r in test):
        result.train = by_folder["train"]
        result.val = [r for r in test if r.usage == "PublicTest"]
        result.test = [r for r in test if r.usage == "PrivateTest"]
    else:
        result.train, result.val = _hold_out(by_folder["train"], val_fraction, seed)
        result.test = test
    return result


def _hold_out(records: list[ImageRecord], fraction: float, seed: int) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Stratified seeded hold-out: `fraction` of each class goes to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    labels = np.array([r.label for r in records])
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_val = int(round(len(idx) * fraction))
        val += [records[i] for i in sorted(idx[:n_val])]
        train += [records[i] for i in sorted(idx[n_val:])]
    return train, val


def read_fer2013(path: str | Path, val_fraction: float = 0.1, seed: int = 42, skip_bad: bool = False) -> SplitRecords:
    """`path` is `fer2013.csv`, or a folder holding it or holding `train/` and `test/`."""
    path = Path(path)
    if path.is_file():
        return read_fer_csv(path, skip_bad)
    if (path / "fer2013.csv").is_file():
        return read_fer_csv(path / "fer2013.csv", skip_bad)
    if (path / "train").is_dir():
        return read_fer_folders(path, val_fraction, seed, skip_bad)
    raise DataError(path, "no fer2013.csv and no train/ test/ image folders found")
