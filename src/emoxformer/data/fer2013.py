"""Reader for FER2013: `fer2013.csv` (emotion,pixels,Usage) or the image-folder variant."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..labels import FER_FOLDER_TO_EMOTION, FER_INDEX_TO_EMOTION, LABEL_TO_INDEX
from ..media import MediaError, decode_image
from .cache import fingerprint, load_arrays, save_arrays
from .errors_policy import FIRST_DATA_ROW, BadRowPolicy
from .records import ImageRecord, SplitRecords

FER_SIDE = 48
FER_PIXELS = FER_SIDE * FER_SIDE
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
_ROWS_PER_CHUNK = 1024


def decode_pixel_strings(pixels: list[str], n_values: int = FER_PIXELS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse whitespace-separated pixel strings with vectorised byte operations per chunk of rows instead of a
    parser call (or a Python loop) per row.

    Returns (images uint8 [n_good, n_values], indices of the good rows, a problem string per row, "" when good).
    """
    problems = [""] * len(pixels)
    images = np.empty((len(pixels), n_values), dtype=np.uint8)
    for start in range(0, len(pixels), _ROWS_PER_CHUNK):
        texts = pixels[start:start + _ROWS_PER_CHUNK]
        images[start:start + len(texts)], problems[start:start + len(texts)] = _decode_chunk(texts, n_values)
    good = np.array([not problem for problem in problems], dtype=bool)
    if good.all():
        return images, np.arange(len(pixels)), problems
    return images[good], np.flatnonzero(good), problems


# Each byte's class for the vectorised parse: a digit's value, whitespace or anything else.
_SPACE, _OTHER = 10, 11
_BYTE_CLASS = bytes(b - 48 if 48 <= b <= 57 else _SPACE if b in b" \t\r\n" else _OTHER for b in range(256))
_LONG_TOKEN = 0xFFFF  # four digits or more ("0255" is valid): such a row is parsed exactly, by Python's int


def _token_values() -> np.ndarray:
    """A token's value by the classes of its last four bytes, key = c0 | c1 << 4 | c2 << 8 | c3 << 12 (c0: the last
    digit; bytes before a token's first digit belong to whitespace or to earlier tokens)."""
    key = np.arange(1 << 16)
    c0, c1, c2, c3 = key & 15, key >> 4 & 15, key >> 8 & 15, key >> 12
    values = np.where(c1 >= _SPACE, c0, np.where(c2 >= _SPACE, 10 * c1 + c0,
                                                 np.where(c3 >= _SPACE, 100 * c2 + 10 * c1 + c0, _LONG_TOKEN)))
    return values.astype(np.uint16)


_TOKEN_VALUES = _token_values()


def _decode_chunk(texts: list[str], n_values: int) -> tuple[np.ndarray, list[str]]:
    """Values uint8 [rows, n_values] (rows with a problem hold anything) and a problem per row, "" when good.

    The rows are joined by a space into one byte string; a token ends where a digit is followed by whitespace, its
    value comes from a table lookup on its last four bytes, and each row's token count from where its bytes start
    and end, so a short row beside a long one is still named.
    """
    raw = " ".join(["  ", *texts, ""]).encode("ascii", errors="replace")  # 3 leading spaces: 4 bytes to every token
    classes = raw.translate(_BYTE_CLASS)
    if _OTHER in classes:
        return _without_bad_characters(texts, n_values)
    classes = np.frombuffer(classes, dtype=np.uint8)
    space = classes >= _SPACE
    ends = np.flatnonzero(space[1:] > space[:-1])  # last digit of every token, in order
    # pairs[i + 2] = the classes of bytes i - 1 and i in one byte, so two lookups give a token's last four bytes
    pairs = np.zeros(len(classes) + 2, dtype=np.uint8)
    np.left_shift(classes[:-1], 4, out=pairs[3:])
    pairs[3:] |= classes[1:]
    key = np.left_shift(pairs[ends], 8, dtype=np.uint16)
    key |= pairs[2:][ends]
    tokens = _TOKEN_VALUES[key]
    row_starts = 3 + np.concatenate(([0], np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)))
    first_token = np.searchsorted(ends, row_starts)  # of each row, and one past the last row
    counts = np.diff(first_token)
    values = np.zeros((len(texts), n_values), dtype=np.uint16)
    whole = counts == n_values
    if whole.all():
        values = tokens.reshape(len(texts), n_values)
    elif whole.any():
        values[whole] = tokens[first_token[:-1][whole][:, None] + np.arange(n_values)]
    problems = ["" if count == n_values else f"pixel string has {count} values, expected {n_values}" for count in counts.tolist()]
    for row in np.flatnonzero((values == _LONG_TOKEN).any(axis=1)).tolist():
        exact, (problems[row],) = _decode_rows([texts[row]], n_values)
        values[row] = exact[0]
    for row in np.flatnonzero((values > 255).any(axis=1) & whole).tolist():
        problems[row] = problems[row] or "pixel value above 255"
    return values.astype(np.uint8), problems


def _without_bad_characters(texts: list[str], n_values: int) -> tuple[np.ndarray, list[str]]:
    """_decode_chunk for a chunk where some rows hold characters other than digits and whitespace."""
    bad = [bool(text.encode("ascii", errors="replace").translate(None, delete=_ALLOWED_BYTES)) for text in texts]
    clean = [row for row, is_bad in enumerate(bad) if not is_bad]
    values = np.zeros((len(texts), n_values), dtype=np.uint8)
    problems = ["pixel string holds non-numeric tokens"] * len(texts)
    if clean:
        values[clean], clean_problems = _decode_chunk([texts[row] for row in clean], n_values)
        for row, problem in zip(clean, clean_problems):
            problems[row] = problem
    return values, problems


def _decode_rows(texts: list[str], n_values: int) -> tuple[np.ndarray, list[str]]:
    """Row by row with Python's int (slow; only for rows holding a token of four digits or more): values
    [rows, n_values] and a problem per row."""
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
        if not (emotion.isascii() and emotion.isdigit()) or int(emotion) not in FER_INDEX_TO_EMOTION:
            policy.bad(path, f"unknown emotion {emotion!r} (FER2013 uses 0..6)", row + FIRST_DATA_ROW)
            continue
        if usage not in USAGE_TO_SPLIT:
            policy.bad(path, f"unknown Usage {usage!r} (expected Training, PublicTest or PrivateTest)", row + FIRST_DATA_ROW)
            continue
        if problems[row]:
            policy.bad(path, problems[row], row + FIRST_DATA_ROW)
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
    other_files: list[Path] = []
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
                    other_files.append(path)
                    continue
                try:
                    pixels = decode_image(path, grey=True)  # FER2013's faces are grey
                except MediaError as error:
                    policy.bad(path, error.problem)
                    continue
                usage = _usage_from_name(path.name) or ("Training" if folder == "train" else "Test")
                records.append(ImageRecord(id=f"fer2013/{folder}/{class_dir.name}/{path.stem}", label=label, usage=usage, pixels=pixels))
        by_folder[folder] = records
    result = SplitRecords(skipped=policy.skipped)
    left_out = None
    if other_files:
        suffixes = ", ".join(sorted({p.suffix.lower() or "(no suffix)" for p in other_files}))
        left_out = (f"{len(other_files)} files that are not {'/'.join(sorted(s[1:] for s in IMAGE_SUFFIXES))} "
                    f"images left out ({suffixes}; e.g. {other_files[0]})")
        result.notes.append(left_out)
    for folder, records in by_folder.items():
        if not records:
            raise DataError(root / folder, "no face images read" + (f" ({left_out})" if left_out else ""))
    test = by_folder["test"]
    usages = {r.usage for r in test}
    # The official split only when the test folder holds both halves (a folder of PublicTest files alone would
    # leave the test split empty): else a hold-out of train validates.
    if usages == {"PublicTest", "PrivateTest"}:
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


def read_fer2013_for(path: Path, data_config) -> SplitRecords:
    """The registry's reader: FER2013 at `path` with the validation hold-out and bad-row policy of `data_config`."""
    return read_fer2013(path, val_fraction=data_config.fer_val_fraction, seed=data_config.split_seed,
                        skip_bad=data_config.skip_bad)
