"""Multimodal manifests: rows that hold several modalities of one recording, each row one multimodal record.

Columns (CSV header or JSONL keys), any of:
- `text`: the transcript;
- `audio`: a speech clip (wav, flac, ...);
- `image`: a face image (a photo: the largest face is cropped, as `predict --image` does);
- `video`: a video file: its audio track and the faces of its sampled frames, read as `predict --video` reads it;
besides `label`, `split` (or none, for an evaluation set) and optional `speaker` and `id`. A row fills one or more
of the four; an `audio` cell beside a `video` cell replaces the video's track; a row gives its faces by `image` or
`video`, not both. Relative paths start at the manifest's folder (or the entry's `root`); labels are mapped as in
single-modality manifests (data/manifest.py).

A manifest is multimodal when it has an `audio`, `image` or `video` column (a single-modality manifest names its
files in `path`). Such a corpus is scored by `evaluate --manifest` (every modality subset, both fusions; see
`evaluate_multimodal`), and trains as a `data.extra` entry of modality `multi`: each row one example holding all its
modalities (data/recordings.py). Training reads the `split` column (or a manifest per split) as single-modality
manifests do, and without validation rows holds out `val_fraction` of the training rows, by speaker when they name one.

Bad rows (a file that does not exist, an audio file that does not read, a video without a video stream, both an
image and a video, no cell at all) name the manifest and row and stop the reading, or are skipped and counted with
`skip_bad`. A video without an audio track is kept, scored on its faces (and transcript), and noted.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

from ..errors import ConfigError, DataError
from ..media import MediaError, audio_info, image_info
from ..model.config import MODALITIES
from .errors_policy import BadRowPolicy
from .manifest import (SplitLeaks, _describe, _read_table, _text, canonical_split, current_entry, default_id_prefix,
                       hold_out_validation, label_map, manifest_files)
from .records import MultiRecord, SplitRecords
from .specs import DatasetSpec
from .text_cleaning import clean_utterance

CELL_COLUMNS = ("text", "audio", "image", "video")
MEDIA_COLUMNS = ("audio", "image", "video")
MULTI = "multi"  # the modality name of such a corpus in `data.extra`


def manifest_columns(manifest: str | Path) -> list[str]:
    return _read_table(Path(manifest))[1]


def is_multimodal_manifest(manifest: str | Path) -> bool:
    """True when the manifest has an `audio`, `image` or `video` column (rows holding several modalities)."""
    return any(column in MEDIA_COLUMNS for column in manifest_columns(manifest))


def corpus_modalities(manifest: str | dict) -> tuple[str, ...]:
    """The model modalities the rows of a multimodal manifest (one file, or one per split) feed: text from `text`,
    audio from `audio` or `video`, vision from `image` or `video`."""
    columns = {column for path, _ in manifest_files(manifest) for column in manifest_columns(path)}
    used = {"text"} & columns
    used |= {"audio"} if {"audio", "video"} & columns else set()
    used |= {"vision"} if {"image", "video"} & columns else set()
    return tuple(m for m in MODALITIES if m in used)


def multimodal_spec(entry) -> DatasetSpec:
    """The dataset of a `data.extra` entry of modality multi (its reader takes that entry from the config it is
    given, as single-modality manifest corpora do)."""
    current = partial(current_entry, entry)

    def read(folder: Path, data_config) -> SplitRecords:
        return read_multimodal_manifest(current(data_config), data_config, every_row=False)

    try:
        modalities = corpus_modalities(entry.manifest)
    except DataError as error:
        raise ConfigError(str(error)) from None
    return DatasetSpec(entry.name, MULTI, read, f"multimodal manifest {_describe(entry.manifest)}",
                       image_colour=entry.image_colour, locate=lambda data_config: Path(current(data_config).location()),
                       entry=entry, modalities=modalities)


def read_multimodal_manifest(entry, data_config=None, every_row: bool = True) -> SplitRecords:
    """The MultiRecords of multimodal manifest `entry` (name, manifest, root, label_map, drop_unmapped, val_fraction)
    by split; `every_row`: all in `test` (what `evaluate --manifest` scores)."""
    policy = BadRowPolicy(bool(getattr(data_config, "skip_bad", False)))
    result = SplitRecords()
    unmapped: Counter = Counter()
    dropped: list[str] = []
    seen: dict[str, tuple[Path, int]] = {}
    silent_videos: list[str] = []
    records: list[MultiRecord] = []
    leaks = SplitLeaks()
    for path, file_split in manifest_files(entry.manifest):
        header_map, columns, lines = _read_table(path)
        if not any(c in columns for c in CELL_COLUMNS) or "label" not in columns:
            raise DataError(path, f"a multimodal manifest needs a label column and one or more of "
                                  f"{', '.join(CELL_COLUMNS)}; found {', '.join(columns) or 'none'}")
        if not every_row and file_split is None and "split" not in columns:
            raise DataError(path, "no split column: give each row a split (train, val or test), or give the manifest "
                                  "per split as {train: FILE, val: FILE, test: FILE}")
        labels = label_map(path, header_map, getattr(entry, "label_map", None))
        base = Path(entry.root) if getattr(entry, "root", None) else path.parent
        for line, values in lines:
            if isinstance(values, str):
                policy.bad(path, values, line)
                continue
            label_text = _text(values.get("label"))
            if not label_text:
                policy.bad(path, "empty or missing label", line)
                continue
            label = labels.get(label_text.lower())
            if label is None:
                unmapped[label_text] += 1
                dropped.append(str(DataError(path, f"label {label_text!r} is not mapped to the 7 emotions (dropped)", line)))
                continue
            split = "test" if every_row else file_split or canonical_split(_text(values.get("split")))
            if split is None:
                policy.bad(path, f"unknown split {_text(values.get('split'))!r} (use train, val or test)", line)
                continue
            record = _record(path, line, values, label, split, base, entry.name, policy,
                             default_id_prefix(entry, file_split))
            if record is None:
                continue
            if record.id in seen:
                first = seen[record.id]
                policy.bad(path, f"duplicate id {record.id!r} (first at {first[0].name}, row {first[1]})", line)
                continue
            leak = leaks.admit([f for f in (record.audio, record.image, record.video) if f is not None], record.split,
                               record.where)
            if leak:
                policy.bad(path, leak, line)
                continue
            seen[record.id] = record.where
            if record.video is not None and not record.video_has_audio and record.audio is None:
                silent_videos.append(f"{path.name} row {line}")
            records.append(record)
    if unmapped and not getattr(entry, "drop_unmapped", False):
        names = ", ".join(f"{label!r} ({count})" for label, count in unmapped.most_common())
        raise DataError(_describe(entry.manifest), f"labels not among the 7 emotions and not mapped: {names}; map them "
                        f"with a label map (the manifest's label_map header or --label-map) or drop them with "
                        f"--drop-unmapped")
    if not every_row:
        records = _with_validation(records, entry, data_config, result)
    for record in records:
        result[record.split].append(record)
    result.skipped = policy.skipped + dropped
    if silent_videos:
        shown = ", ".join(silent_videos[:5]) + (f" and {len(silent_videos) - 5} more" if len(silent_videos) > 5 else "")
        result.notes.append(f"{len(silent_videos)} videos without an audio track ({shown}): scored on their faces "
                            f"(and text) alone")
    return result


def _with_validation(records: list[MultiRecord], entry, data_config, result: SplitRecords) -> list[MultiRecord]:
    """Without validation rows, `val_fraction` of the training rows moved to validation (by whole speakers when the
    rows name them; the manifest reader's rule), noted in `result`."""
    rows = [SimpleNamespace(split=r.split, speaker=r.speaker, label=r.label) for r in records]
    note = hold_out_validation(rows, float(getattr(entry, "val_fraction", 0.1)), int(getattr(data_config, "split_seed", 42)))
    if note:
        result.notes.append(note)
        print(f"note: {entry.name}: {note}", file=sys.stderr)
    return [replace(record, split=row.split) for record, row in zip(records, rows)]


def _record(path: Path, line: int, values: dict, label: int, split: str, base: Path, name: str,
            policy: BadRowPolicy, id_prefix: str = "") -> MultiRecord | None:
    cells: dict = {}
    text = _text(values.get("text"))
    if text:
        cells["text"] = clean_utterance(text) or None
        if cells["text"] is None:
            policy.bad(path, "empty text", line)
            return None
    for column in MEDIA_COLUMNS:
        raw = _text(values.get(column), keep_surrogates=True)
        if raw:
            cells[column] = Path(raw) if Path(raw).is_absolute() else base / raw
    if not cells:
        policy.bad(path, f"the row holds none of {', '.join(CELL_COLUMNS)}", line)
        return None
    if "image" in cells and "video" in cells:
        policy.bad(path, "both an image and a video: a row's faces come from one of them", line)
        return None
    has_track = False
    try:
        if "audio" in cells:
            audio_info(cells["audio"])
        if "image" in cells:
            image_info(cells["image"])
        if "video" in cells:
            has_track = _probe_video(cells["video"])
    except MediaError as error:
        policy.bad(path, f"{error.problem} ({error.path})", line)
        return None
    key = _text(values.get("id")) or f"{id_prefix}{path.stem}/{line}"
    return MultiRecord(id=f"{name}/{key}", label=label, split=split, where=(path, line), text=cells.get("text"),
                       audio=cells.get("audio"), image=cells.get("image"), video=cells.get("video"),
                       speaker=_text(values.get("speaker")), video_has_audio=has_track)


def _probe_video(path: Path) -> bool:
    """Whether the video holds an audio track; MediaError when it is missing, unreadable or holds no video stream."""
    if not path.is_file():
        raise MediaError(path, "video file not found")
    try:
        import av
    except ImportError:
        raise MediaError(path, "video needs PyAV: pip install av") from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(path, "the video file holds no video stream")
            return bool(container.streams.audio)
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"unreadable video ({exc.__class__.__name__})") from None
