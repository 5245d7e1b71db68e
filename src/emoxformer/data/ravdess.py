"""Reader for RAVDESS speech: `Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`, split by actor."""
from __future__ import annotations

import csv
import io
import os
import random
import re
from pathlib import Path

from ..errors import ConfigError, DataError
from ..io_utils import atomic_write
from ..labels import EMOTIONS, LABEL_TO_INDEX, RAVDESS_EMOTIONS
from ..media import audio_info
from .errors_policy import BadRowPolicy
from .records import AudioRecord, SplitRecords

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)\.wav$", re.IGNORECASE)
_FIELD_RANGES = {
    "modality": (1, 3),  # 01 full-AV, 02 video-only, 03 audio-only
    "vocal_channel": (1, 2),  # 01 speech, 02 song
    "emotion_code": (1, 8),
    "intensity": (1, 2),
    "statement": (1, 2),
    "repetition": (1, 2),
    "actor": (1, 24),
}
# What each clip says (the file name's statement field): the words carry no emotion, so a text+speech model given
# both must do at least as well as from the voice alone.
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
DEFAULT_VAL_ACTORS = (19, 20)
DEFAULT_TEST_ACTORS = (21, 22, 23, 24)
# EmoBox's speaker-independent 6-fold protocol: test actors of each fold.
EMOBOX_FOLDS = ((1, 11, 20, 21), (4, 10, 12, 14), (8, 9, 19, 23), (3, 5, 7, 24), (2, 15, 16, 18), (6, 13, 17, 22))


def transcript(record: AudioRecord) -> str:
    """The sentence a RAVDESS clip speaks."""
    return STATEMENTS[record.statement]


def emobox_fold_actors(fold: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(validation actors, test actors) of EmoBox fold `fold` (1..6). EmoBox tests on the fold's actors and trains on
    the other 20; model selection here also needs a validation split, so two of those 20 hold out: the
    lowest-numbered male (odd) and female (even) actor, keeping the split speaker-independent and gender-balanced."""
    if not isinstance(fold, int) or isinstance(fold, bool) or not 1 <= fold <= len(EMOBOX_FOLDS):
        raise ConfigError(f"data.ravdess_fold must be one of 1..{len(EMOBOX_FOLDS)} (EmoBox's folds), got {fold!r}")
    test = EMOBOX_FOLDS[fold - 1]
    rest = [actor for actor in range(1, 25) if actor not in test]
    validation = (min(a for a in rest if a % 2 == 1), min(a for a in rest if a % 2 == 0))
    return validation, test


def parse_actors(value: str, option: str) -> tuple[int, ...]:
    """Actor numbers written as a comma list ("21,22"); ConfigError naming `option` unless each is a RAVDESS actor."""
    low, high = _FIELD_RANGES["actor"]
    try:
        numbers = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        numbers = ()
    if not numbers or not all(low <= n <= high for n in numbers):
        raise ConfigError(f"{option} {value!r}: give RAVDESS actor numbers ({low}..{high}) separated by commas, e.g. 21,22")
    return numbers


def parse_ravdess_name(path: Path) -> dict[str, int]:
    """The seven numeric fields of a RAVDESS file name; DataError if the name is not one."""
    match = _NAME.match(path.name)
    if not match:
        raise DataError(path, "file name is not a RAVDESS name MM-VV-EE-II-SS-RR-AA.wav")
    fields = dict(zip(_FIELD_RANGES, (int(g) for g in match.groups())))
    for name, (low, high) in _FIELD_RANGES.items():
        if not low <= fields[name] <= high:
            raise DataError(path, f"{name} field {fields[name]:02d} outside {low:02d}..{high:02d}")
    return fields


def actor_folders(root: Path) -> list[Path]:
    """The actor folders under a RAVDESS root, in any case of "Actor_": a copy unpacked as actor_05 must not silently
    drop that actor on a case-sensitive disk."""
    return sorted(p for p in root.iterdir() if p.name.lower().startswith("actor_") and p.is_dir())


def read_ravdess_files(root: str | Path, include_song: bool = False, skip_bad: bool = False,
                       songs_left_out: list[Path] | None = None) -> tuple[list[AudioRecord], list[str]]:
    """Every RAVDESS wav under `root/Actor_*/`, speech only unless `include_song` (the song clips left out are
    appended to `songs_left_out` when given)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "RAVDESS folder not found")
    actor_dirs = actor_folders(root)
    if not actor_dirs:
        raise DataError(root, "no Actor_XX folders found")
    policy = BadRowPolicy(skip_bad)
    records: list[AudioRecord] = []
    for actor_dir in actor_dirs:
        # Each file once, whatever the case of its suffix: globbing *.wav and *.WAV lists every file twice where
        # the file system (or glob) ignores case (macOS, Windows).
        for path in sorted(p for p in actor_dir.iterdir() if p.suffix.lower() == ".wav" and p.is_file()):
            try:
                fields = parse_ravdess_name(path)
                if f"actor_{fields['actor']:02d}" != actor_dir.name.lower():
                    raise DataError(path, f"actor field {fields['actor']:02d} does not match folder {actor_dir.name}")
                audio_info(path)  # missing, truncated, unreadable or empty clips are refused here
            except DataError as error:
                policy.bad(error.path, error.problem)
                continue
            if fields["vocal_channel"] == 2 and not include_song:
                if songs_left_out is not None:
                    songs_left_out.append(path)
                continue
            label = LABEL_TO_INDEX[RAVDESS_EMOTIONS[fields["emotion_code"]][1]]
            records.append(AudioRecord(id=f"ravdess/{path.stem}", label=label, path=path, **fields))
    return records, policy.skipped


def split_by_actor(
    records: list[AudioRecord],
    val_actors: tuple[int, ...] = DEFAULT_VAL_ACTORS,
    test_actors: tuple[int, ...] = DEFAULT_TEST_ACTORS,
) -> SplitRecords:
    """Speaker-independent split: every actor's files land in exactly one split."""
    overlap = set(val_actors) & set(test_actors)
    if overlap:
        raise ConfigError(f"actors {sorted(overlap)} are in both the validation and the test split")
    result = SplitRecords()
    for record in records:
        split = "test" if record.actor in test_actors else "val" if record.actor in val_actors else "train"
        result[split].append(record)
    return result


def split_by_file(records: list[AudioRecord], seed: int = 42, val_fraction: float = 0.1, test_fraction: float = 0.1) -> SplitRecords:
    """The reference code's file-random split. It leaks speakers into the test set: use only to compare with it."""
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    n_test = round(len(shuffled) * test_fraction)
    n_val = round(len(shuffled) * val_fraction)
    return SplitRecords(test=shuffled[:n_test], val=shuffled[n_test:n_test + n_val], train=shuffled[n_test + n_val:])


def read_ravdess(
    root: str | Path,
    split: str = "actor",
    val_actors: tuple[int, ...] = DEFAULT_VAL_ACTORS,
    test_actors: tuple[int, ...] = DEFAULT_TEST_ACTORS,
    seed: int = 42,
    include_song: bool = False,
    skip_bad: bool = False,
) -> SplitRecords:
    songs: list[Path] = []
    records, skipped = read_ravdess_files(root, include_song=include_song, skip_bad=skip_bad, songs_left_out=songs)
    songs_note = (f"{len(songs)} song clips (vocal channel 02) left out: data.ravdess_include_song=true reads them"
                  if songs else None)
    if not records:
        raise DataError(root, "no RAVDESS speech clips (Actor_XX/03-01-*.wav) to read"
                              + (f"; {songs_note}" if songs_note else "") + (f"; {len(skipped)} bad files skipped" if skipped else ""))
    if split == "actor":
        result = split_by_actor(records, tuple(val_actors), tuple(test_actors))
    elif split == "random":
        result = split_by_file(records, seed)
    else:
        raise ConfigError(f"unknown RAVDESS split {split!r}: use 'actor' (speaker-independent) or 'random'")
    result.skipped = skipped
    result.notes += [songs_note] if songs_note else []
    return result


def read_ravdess_for(path: Path, data_config) -> SplitRecords:
    """The registry's reader: RAVDESS at `path`, split as `data_config` says (EmoBox fold `ravdess_fold` when set,
    else `ravdess_val_actors` / `ravdess_test_actors`, or the reference code's random split)."""
    if data_config.ravdess_fold is not None:
        val_actors, test_actors = emobox_fold_actors(data_config.ravdess_fold)
    else:
        val_actors, test_actors = tuple(data_config.ravdess_val_actors), tuple(data_config.ravdess_test_actors)
    return read_ravdess(path, split=data_config.ravdess_split, val_actors=val_actors, test_actors=test_actors,
                        seed=data_config.split_seed, include_song=data_config.ravdess_include_song,
                        skip_bad=data_config.skip_bad)


def write_transcript_manifest(split: SplitRecords, out: str | Path) -> dict[str, int]:
    """Write `split`'s clips as a multimodal manifest (data/multimodal.py): one row per clip with the sentence it
    speaks as `text` and the clip as `audio`, its emotion, split and actor. Trained as a `data.extra` corpus of
    modality `multi`, these are real text + speech pairs; paths are relative to the manifest's folder where they
    can be. Returns the rows written per split."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "audio", "label", "split", "speaker"])
    counts = {}
    for split_name in ("train", "val", "test"):
        for record in split[split_name]:
            try:
                audio = os.path.relpath(record.path.resolve(), out.parent.resolve())
            except ValueError:  # another drive (Windows): keep the absolute path
                audio = str(record.path.resolve())
            writer.writerow([record.id, transcript(record), Path(audio).as_posix(), EMOTIONS[record.label],
                             split_name, f"actor_{record.actor:02d}"])
        counts[split_name] = len(split[split_name])
    atomic_write(out, buffer.getvalue())
    return counts
