"""Any corpus through a manifest: a CSV or JSONL file listing a corpus's samples, read into the records of its
modality and registered as a dataset (`data.extra` in the experiment config, `--manifest` of `evaluate` and
`data summary`).

Columns (CSV header or JSONL keys; other columns are ignored):
- `text` (text corpora) or `path` (speech clips, face images; relative paths start at the manifest's folder, or at
  the entry's `root`);
- `label`: one of the seven emotions, or a label the label map names;
- `split`: train, val or test (dev, valid and validation mean val); not needed when the manifest is given per split
  as a mapping {train: FILE, val: FILE, test: FILE};
- optional `speaker`, `dialogue`, `turn` (text: dialogue context in file order, or by `turn` when given) and `id`.
EmoBox's JSONL is read as it is: `key` (the id), `wav` (the path), `emo` (the label; `length`, `channel` and the rest
are ignored), one file per split.

Labels: the seven names (anger, disgust, fear, happy, sad, surprise, neutral, any case) map to themselves. Other
labels need a label map: the manifest's header (JSONL: a first line `{"label_map": {"angry": "anger"}}`; CSV: a
line `# label_map: {"angry": "anger"}` above the column names) and/or the config's `label_map` (which wins). EmoBox's
`emo` codes and names (ang, hap, sad, neu, fea, dis, sur; Angry, Happy, Fearful, Surprised, ...) are known without one;
its "calm" is not mapped (the RAVDESS reader's calm -> neutral follows the reference code, which is a choice a corpus
of one's own should make explicitly). Labels left unmapped stop the reading with their names and counts, or, with
`drop_unmapped`, drop their rows, each counted in the summary's `skipped`.

Bad rows (a file that does not exist or cannot be decoded, an unknown split, empty text, a missing column) name the
manifest and row (the line number) and stop the reading, or are skipped and counted with `data.skip_bad`.

A corpus without validation rows (EmoBox ships train and test per fold) validates on `val_fraction` of its training
rows: whole speakers when the rows name them (speaker-independent), never more rows than the fraction, else (no
speakers, or speakers too few or too large to come near the fraction) a stratified random share (`data.split_seed`).
What was held out is printed as a note and kept in the summary's `notes`.

Images are decoded when the manifest is read and held in memory, as FER2013's are: about 140 us and 2.3 KB per
48x48 PNG (a FER-size corpus of 35,000 faces: 5 s, 80 MB), but about 2 ms and 150 KB per 224x224 colour JPEG, so
a corpus of hundreds of thousands of large images wants lazy loading, which this reader does not do.
"""
from __future__ import annotations

from functools import partial

import csv
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..labels import EMOTIONS, LABEL_TO_INDEX
from ..media import audio_info, decode_image
from .errors_policy import BadRowPolicy
from .specs import DatasetSpec
from .records import AudioRecord, ImageRecord, SplitRecords, TextRecord
from .text_cleaning import clean_utterance, replace_surrogates

# A manifest's split names -> this project's.
SPLIT_NAMES = {"train": "train", "val": "val", "dev": "val", "valid": "val", "validation": "val", "test": "test"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# EmoBox's `emo` values (codes and names across its corpora), used only for manifests whose label column is `emo`.
EMOBOX_LABELS = {
    "ang": "anger", "angry": "anger", "anger": "anger",
    "dis": "disgust", "disgust": "disgust", "disgusted": "disgust",
    "fea": "fear", "fear": "fear", "fearful": "fear",
    "hap": "happy", "happy": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "sur": "surprise", "surprise": "surprise", "surprised": "surprise",
    "neu": "neutral", "neutral": "neutral",
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_HEADER = re.compile(r"^#\s*label_map\s*:\s*(.*)$")
_VALUE_COLUMNS = {"text": ("text",), "audio": ("path", "wav"), "vision": ("path",)}
_LABEL_COLUMNS = ("label", "emo")


@dataclass
class _Row:
    where: tuple[Path, int]  # manifest, line
    id: str
    label: int
    split: str | None
    value: Any  # text, a clip's path, or an image's pixels
    speaker: str
    dialogue: str
    turn: int | None
    file: Path | None = None  # the clip or image the row names


class SplitLeaks:
    """The media files already placed in a split: a file that a row places in another split is leakage (a test
    recording also trained on, however its path is spelled)."""

    def __init__(self):
        self.placed: dict[Path, tuple[str, Path, int]] = {}

    def admit(self, files, split: str, where: tuple[Path, int]) -> str | None:
        """Why a row (at `where`) placing `files` in `split` leaks, or None, and then its files are placed."""
        resolved = [Path(file).resolve() for file in files]
        for file, key in zip(files, resolved):
            first = self.placed.get(key)
            if first is not None and first[0] != split:
                return (f"{file} is also in the {first[0]} split ({first[1].name}, row {first[2]}): one recording in "
                        f"two splits would be scored on data it trained on")
        for key in resolved:
            self.placed.setdefault(key, (split, *where))
        return None


def default_id_prefix(entry, file_split: str | None) -> str:
    """Default ids (a row without `id`/`key`) of a per-split manifest start with the file's split: files of the
    same layout (train/m.csv and test/m.csv) would otherwise give the same ids."""
    return f"{file_split}/" if isinstance(entry.manifest, dict) and len(entry.manifest) > 1 else ""


def canonical_split(value: Any) -> str | None:
    return SPLIT_NAMES.get(str(value).strip().lower())


def manifest_files(manifest: str | dict) -> list[tuple[Path, str | None]]:
    """(file, the split all its rows belong to, or None when a `split` column says) for a manifest given as one
    file or as {split: file}."""
    if isinstance(manifest, dict):
        return [(Path(file), canonical_split(split)) for split, file in manifest.items()]
    return [(Path(manifest), None)]


def parse_manifest_argument(items: list[str]) -> str | dict[str, str]:
    """`--manifest FILE` or `--manifest SPLIT=FILE ...` (train=a.jsonl test=b.jsonl) as a `data.extra` manifest.

    One item is a file unless it is SPLIT=FILE with a split name before the first "=" and is not itself an existing
    file, so a path holding "=" (runs/lr=3e-4/test.jsonl) stays a path.
    """
    items = [str(item) for item in items]
    pairs = [item.split("=", 1) for item in items]
    is_pair = [len(pair) == 2 and canonical_split(pair[0]) is not None and pair[1] != "" for pair in pairs]
    if len(items) == 1 and (not is_pair[0] or Path(items[0]).is_file()):
        return items[0]
    if items and all(is_pair):
        return {split.strip(): file for split, file in pairs}
    raise ConfigError(f"--manifest takes one FILE or SPLIT=FILE pairs (train=a.jsonl test=b.jsonl; splits: train, val, "
                      f"test), got {' '.join(items)}")


def read_manifest(entry, data_config=None, every_row: bool = False, unsplit_as_test: bool = False) -> SplitRecords:
    """The records of manifest corpus `entry` (name, modality, manifest, root, label_map, drop_unmapped,
    val_fraction) by split; `every_row`: all rows in `test` whatever their split (what `evaluate --manifest`
    scores); `unsplit_as_test`: a file without a split column is test rows (else refused, as training needs splits).
    Problems raise DataError naming the manifest (and row); `data_config.skip_bad` skips bad rows."""
    skip_bad = bool(getattr(data_config, "skip_bad", False))
    seed = int(getattr(data_config, "split_seed", 42))
    policy = BadRowPolicy(skip_bad)
    rows: list[_Row] = []
    unmapped: Counter = Counter()
    dropped: list[str] = []
    seen: dict[str, tuple[Path, int]] = {}
    leaks = SplitLeaks()
    for path, file_split in manifest_files(entry.manifest):
        header_map, columns, lines = _read_table(path)
        value_column, label_column = _columns(path, columns, entry.modality)
        if file_split is None and not every_row and "split" not in columns:
            if unsplit_as_test:
                file_split = "test"
            else:
                raise DataError(path, "no split column: give each row a split (train, val or test), or give the "
                                      "manifest per split as {train: FILE, val: FILE, test: FILE}")
        labels = label_map(path, header_map, entry.label_map, emobox=label_column == "emo")
        base = Path(entry.root) if getattr(entry, "root", None) else path.parent
        id_prefix = default_id_prefix(entry, file_split)
        for line, values in lines:
            if isinstance(values, str):  # a line that is not a JSON object
                policy.bad(path, values, line)
                continue
            row = _parse_row(path, line, values, value_column, label_column, labels, file_split, every_row, base,
                             entry, policy, unmapped, dropped, id_prefix)
            if row is None:
                continue
            if row.id in seen:
                policy.bad(path, f"duplicate id {row.id!r} (first at {seen[row.id][0].name}, row {seen[row.id][1]})", line)
                continue
            leak = leaks.admit([row.file] if row.file is not None else [], row.split, row.where)
            if leak:
                policy.bad(path, leak, line)
                continue
            seen[row.id] = row.where
            rows.append(row)
    if unmapped and not entry.drop_unmapped:
        names = ", ".join(f"{label!r} ({count})" for label, count in unmapped.most_common())
        raise DataError(_describe(entry.manifest), f"labels not among the 7 emotions and not mapped: {names}; map them "
                        f"with a label map (the manifest's label_map header or the config's label_map) or drop them "
                        f"with drop_unmapped")
    note = None if every_row else hold_out_validation(rows, float(getattr(entry, "val_fraction", 0.1)), seed)
    result = SplitRecords(skipped=policy.skipped + dropped, notes=[note] if note else [])
    if note:
        print(f"note: {entry.name}: {note}", file=sys.stderr)
    _to_records(rows, entry.name, entry.modality, result)
    return result


def _describe(manifest: str | dict) -> str:
    return manifest if isinstance(manifest, str) else ", ".join(str(f) for f in manifest.values())


# ----------------------------------------------------------------------------- files
def _read_table(path: Path) -> tuple[dict, list[str], Iterator[tuple[int, dict | str]]]:
    """(the header's label map, the column names, (line, row mapping or problem) for each row)."""
    if not path.is_file():
        raise DataError(path, "manifest not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(path, "manifest is not UTF-8 text") from None
    except OSError as exc:
        raise DataError(path, f"unreadable manifest ({exc.__class__.__name__})") from None
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or (path.suffix.lower() not in (".csv", ".tsv")
                                                                 and text.lstrip().startswith("{")):
        return _read_jsonl(path, text)
    return _read_csv(path, text, "\t" if path.suffix.lower() == ".tsv" else ",")


def _lines(text: str) -> list[str]:
    """The lines of a JSONL manifest, split at "\n" only (a "\r" before it dropped): `str.splitlines` would also split
    at U+2028, U+2029, U+0085, \x0b, \x0c and \x1c-\x1e, which a row's strings may hold as they are."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read_jsonl(path: Path, text: str):
    rows: list[tuple[int, dict | str]] = []
    header: dict = {}
    for line, content in enumerate(_lines(text), start=1):
        if not content.strip():
            continue
        try:
            # strict=False: control characters (\x0b, a tab) inside strings are text
            value = json.loads(content, strict=False, object_pairs_hook=_object_without_repeats)
        except json.JSONDecodeError as exc:
            rows.append((line, f"not a JSON object ({exc.msg})"))
            continue
        except _RepeatedKey as exc:
            rows.append((line, str(exc)))
            continue
        if not isinstance(value, dict):
            rows.append((line, f"not a JSON object (a {type(value).__name__})"))
        elif not rows and not header and set(value) == {"label_map"}:
            header = _header_map(path, line, value["label_map"])
        else:
            rows.append((line, value))
    if not rows:
        raise DataError(path, "manifest holds no rows")
    # Keys as CSV headers are read (stripped, lower-cased); the columns are every key of any row, not the first's.
    rows = [(line, _lowered_keys(values) if isinstance(values, dict) else values) for line, values in rows]
    if not any(isinstance(values, dict) for _, values in rows):  # no columns to check: say what is wrong with the rows
        line, problem = rows[0]
        raise DataError(path, f"{problem} (and every other row)" if len(rows) > 1 else problem, line)
    columns = list(dict.fromkeys(key for _, values in rows if isinstance(values, dict) for key in values))
    return header, columns, rows


class _RepeatedKey(ValueError):
    pass


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object as a dict, refusing a key given twice (json.loads would silently keep the later value)."""
    value: dict = {}
    for key, item in pairs:
        if key in value:
            raise _RepeatedKey(f"key {key!r} given twice: keep one")
        value[key] = item
    return value


def _spelled_twice(names) -> str | None:
    """The first two of `names` that name one column once stripped and lower-cased ("'text' and 'Text '"), if any:
    reading on would keep the later one's values and silently drop the other's."""
    seen: dict[str, str] = {}
    for name in map(str, names):
        key = name.strip().lower()
        if not key:  # blank header cells (a spreadsheet's trailing empty columns) name no column
            continue
        if key in seen:
            return f"{seen[key]!r} and {name!r}"
        seen[key] = name
    return None


def _lowered_keys(values: dict) -> dict | str:
    """A JSONL row with its keys as CSV headers are read (stripped, lower-cased), or its problem."""
    twice = _spelled_twice(values)
    if twice:
        return f"keys {twice} name one column: keep one"
    return {str(k).strip().lower(): v for k, v in values.items()}


def _read_csv(path: Path, text: str, delimiter: str):
    lines = text.splitlines(keepends=True)
    header: dict = {}
    start = 0
    while start < len(lines) and (lines[start].startswith("#") or not lines[start].strip()):
        match = _HEADER.match(lines[start].strip())
        if match:
            try:
                header.update(_header_map(path, start + 1, json.loads(match.group(1))))
            except json.JSONDecodeError as exc:
                raise DataError(path, f"label_map header is not a JSON object ({exc.msg})", start + 1) from None
        start += 1
    reader = csv.reader(io.StringIO("".join(lines[start:])), delimiter=delimiter)
    try:
        spelled = next(reader)
    except StopIteration:
        raise DataError(path, "manifest holds no column names") from None
    columns = [c.strip().lower() for c in spelled]
    twice = _spelled_twice(spelled)
    if twice:
        raise DataError(path, f"columns {twice} name one column: keep one", start + 1)
    rows: list[tuple[int, dict | str]] = []
    try:
        for values in reader:
            line = start + reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                rows.append((line, f"{len(values)} fields, the header has {len(columns)} ({', '.join(columns)})"))
            else:
                rows.append((line, dict(zip(columns, values))))
    except csv.Error as exc:
        raise DataError(path, f"not a readable CSV ({exc})", start + reader.line_num) from None
    if not rows:
        raise DataError(path, "manifest holds no rows")
    return header, columns, rows


def _header_map(path: Path, line: int, value: Any) -> dict:
    if not isinstance(value, dict):
        raise DataError(path, f"label_map must map labels to emotions, got {type(value).__name__}", line)
    return value


def _columns(path: Path, columns: list[str], modality: str) -> tuple[str, str]:
    value_column = next((c for c in _VALUE_COLUMNS[modality] if c in columns), None)
    label_column = next((c for c in _LABEL_COLUMNS if c in columns), None)
    if value_column is None or label_column is None:
        wanted = "text" if modality == "text" else "path (or EmoBox's wav)" if modality == "audio" else "path"
        multimodal = any(c in columns for c in ("audio", "image", "video"))
        raise DataError(path, f"a {modality} manifest needs the columns {wanted}, label (or EmoBox's emo) and split; "
                              f"found {', '.join(columns) or 'none'}" + ("; its audio/image/video columns make it a "
                              "multimodal manifest: give it modality multi" if multimodal else ""))
    return value_column, label_column


# ----------------------------------------------------------------------------- labels
def label_map(path, header: dict, config: dict | None, emobox: bool = False) -> dict[str, int]:
    """Label (lower case) -> emotion index: the seven names, EmoBox's labels for an `emo` column, the header's map,
    then the config's (later ones win)."""
    mapping = {name: LABEL_TO_INDEX[name] for name in EMOTIONS}
    if emobox:
        mapping.update({label: LABEL_TO_INDEX[name] for label, name in EMOBOX_LABELS.items()})
    for source, given in (("the manifest's label_map", header), ("label_map", config or {})):
        for label, emotion in given.items():
            target = str(emotion).strip().lower()
            if target not in LABEL_TO_INDEX:
                raise DataError(path, f"{source} maps {label!r} to {emotion!r}, which is not one of {', '.join(EMOTIONS)}")
            mapping[str(label).strip().lower()] = LABEL_TO_INDEX[target]
    return mapping


# ----------------------------------------------------------------------------- rows
def _parse_row(path: Path, line: int, values: dict, value_column: str, label_column: str, labels: dict[str, int],
               file_split: str | None, every_row: bool, base: Path, entry, policy: BadRowPolicy, unmapped: Counter,
               dropped: list[str], id_prefix: str = "") -> _Row | None:
    missing = [c for c in (value_column, label_column) if _text(values.get(c)) == ""]
    if missing:
        policy.bad(path, "empty text" if missing == ["text"] else f"empty or missing {' and '.join(missing)}", line)
        return None
    label_text = _text(values[label_column])
    label = labels.get(label_text.lower())
    if label is None:
        unmapped[label_text] += 1
        dropped.append(str(DataError(path, f"label {label_text!r} is not mapped to the 7 emotions (dropped)", line)))
        return None
    split = "test" if every_row else file_split
    if split is None:
        split = canonical_split(_text(values.get("split")))
        if split is None:
            policy.bad(path, f"unknown split {_text(values.get('split'))!r} (use train, val or test; dev, valid and "
                             "validation mean val)", line)
            return None
    raw = _text(values[value_column], keep_surrogates=entry.modality != "text")
    if entry.modality == "text":
        value = clean_utterance(raw)
        if not value:
            policy.bad(path, "empty text", line)
            return None
        key = _text(values.get("id")) or _text(values.get("key")) or f"{id_prefix}{path.stem}/{line}"
    else:
        media = Path(raw) if Path(raw).is_absolute() else base / raw
        try:
            value = _check_audio(media) if entry.modality == "audio" else _decode_image(media)
        except DataError as error:
            policy.bad(path, error.problem + f" ({media})", line)
            return None
        key = _text(values.get("id")) or _text(values.get("key")) or f"{id_prefix}{raw}"
    turn = _text(values.get("turn"))
    if turn and not re.fullmatch(r"-?\d+", turn):
        policy.bad(path, f"turn must be an integer, got {turn!r}", line)
        return None
    return _Row((path, line), f"{entry.name}/{key}", label, split, value, _text(values.get("speaker")),
                _text(values.get("dialogue")), int(turn) if turn else None, None if entry.modality == "text" else media)


def _text(value: Any, keep_surrogates: bool = False) -> str:
    """A cell as stripped text; lone surrogates (a JSON "\\ud800" escape) become U+FFFD, except in a media path,
    where they may stand for a file name's bytes that are not UTF-8."""
    text = "" if value is None else str(value).strip()
    return text if keep_surrogates else replace_surrogates(text)


def _check_audio(path: Path) -> Path:
    """The clip's path once its header reads (decoded later, by the audio store, with the same media layer)."""
    audio_info(path)
    return path


def _decode_image(path: Path) -> np.ndarray:
    return decode_image(path)  # grey stays [H, W], colour becomes [H, W, 3], as the Predictor reads images


# ----------------------------------------------------------------------------- splits and records
def hold_out_validation(rows: list[_Row], fraction: float, seed: int) -> str | None:
    """Without validation rows, move about `fraction` of the training rows to `val`, and say what was moved.

    Whole speakers when every training row names one (speaker-independent): speakers in a seeded random order, each
    taken while the held-out rows stay within the fraction (never more), at least one speaker left for training.
    When whole speakers cannot come near the fraction (under half of it: too few speakers, or one speaker holds
    more rows than the fraction), and when no speakers are named, a stratified share of each label's rows instead
    (speakers, if any, are then shared by training and validation, which the note says).
    """
    if fraction <= 0 or any(row.split == "val" for row in rows):
        return None
    train = [row for row in rows if row.split == "train"]
    if len(train) < 2:
        return None
    rng = np.random.default_rng(seed)
    target = fraction * len(train)
    speakers = sorted({row.speaker for row in train})
    chosen: list[_Row] = []
    reason = "the rows name no speakers"
    if all(row.speaker for row in train) and len(speakers) >= 2:
        counts = Counter(row.speaker for row in train)
        held, total = set(), 0
        for index in rng.permutation(len(speakers)):
            speaker = speakers[index]
            if len(held) == len(speakers) - 1 or total >= target:
                break
            if total + counts[speaker] <= max(target, 1):
                held.add(speaker)
                total += counts[speaker]
        if held and total >= target / 2:
            for row in train:
                if row.speaker in held:
                    row.split = "val"
            return (f"no validation rows: held out {total} of {len(train)} training rows ({total / len(train):.1%}; "
                    f"val_fraction {fraction:g}) as {len(held)} of {len(speakers)} speakers: {_some(sorted(held))}")
        reason = (f"{len(speakers)} speakers, the smallest with {min(counts.values())} rows, cannot make "
                  f"{fraction:g} of {len(train)} rows by whole speakers; speakers are shared by training and validation")
    for label in sorted({row.label for row in train}):
        members = [row for row in train if row.label == label]
        picks = rng.permutation(len(members))[: int(round(len(members) * fraction))]
        chosen += [members[i] for i in sorted(picks)]
    for row in chosen:
        row.split = "val"
    return (f"no validation rows: held out {len(chosen)} of {len(train)} training rows ({len(chosen) / len(train):.1%}; "
            f"val_fraction {fraction:g}) as a stratified random share of each label ({reason})")


def _some(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _to_records(rows: list[_Row], name: str, modality: str, result: SplitRecords) -> None:
    dialogues: dict[tuple[str, str], int] = {}
    turns: Counter = Counter()
    for row in rows:
        if modality == "audio":
            record = AudioRecord(id=row.id, label=row.label, path=row.value)
        elif modality == "vision":
            record = ImageRecord(id=row.id, label=row.label, usage=row.split, pixels=row.value)
        else:
            # Rows of one dialogue (and split) are its turns, ordered by `turn` or else by their order in the file;
            # a row without a dialogue is a dialogue of its own (no context).
            dialogue = (row.split, row.dialogue or f"\0{row.id}")
            dialogue_id = dialogues.setdefault(dialogue, len(dialogues))
            turns[dialogue] += 1
            record = TextRecord(id=row.id, label=row.label, text=row.value, speaker=row.speaker,
                                dialogue_id=dialogue_id, utterance_id=row.turn if row.turn is not None else turns[dialogue],
                                split=row.split)
        result[row.split].append(record)


# ----------------------------------------------------------------------------- registry, evaluation
def current_entry(entry, data_config):
    """The `data.extra` entry named as `entry` in `data_config` (so a config reads its own manifest), else `entry`."""
    return next((e for e in getattr(data_config, "extra", None) or () if e.name == entry.name), entry)


def manifest_spec(entry) -> DatasetSpec:
    """The dataset of `entry` (a `data.extra` item). Its reader takes the entry of that name from the data config it
    is given (so a config's own manifest is read), else this one."""
    current = partial(current_entry, entry)

    def read(folder: Path, data_config) -> SplitRecords:
        return read_manifest(current(data_config), data_config)

    return DatasetSpec(
        entry.name, entry.modality, read, f"{entry.modality} manifest {_describe(entry.manifest)}",
        image_colour=getattr(entry, "image_colour", "colour"), locate=lambda data_config: Path(current(data_config).location()),
        entry=entry)


def guess_modality(manifest: str | Path) -> str:
    """A manifest's modality from its columns: an `audio`, `image` or `video` column -> multi (data/multimodal.py);
    `text` -> text; else the file type of the first row's `path`/`wav`."""
    header, columns, rows = _read_table(Path(manifest))
    if any(column in columns for column in ("audio", "image", "video")):
        return "multi"
    if "text" in columns:
        return "text"
    first = next((values for _, values in rows if isinstance(values, dict)), {})
    suffix = Path(_text(first.get("path") or first.get("wav"))).suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in IMAGE_SUFFIXES:
        return "vision"
    raise ConfigError(f"{manifest}: cannot tell the modality from its columns ({', '.join(columns)}); pass --modality")


def corpus_name(manifest: str | Path) -> str:
    """A dataset name from a manifest's file name (`CREMA-D test.jsonl` -> `crema_d_test`), never a built-in's."""
    name = re.sub(r"[^a-z0-9_]+", "_", Path(manifest).stem.lower()).strip("_") or "manifest"
    name = name if name[0].isalpha() else f"m_{name}"
    return f"{name}_manifest" if name in ("meld", "ravdess", "fer2013") else name
