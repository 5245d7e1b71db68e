"""Reader for MELD's `{train,dev,test}_sent_emo.csv`."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..labels import LABEL_TO_INDEX, MELD_TO_EMOTION
from .errors_policy import FIRST_DATA_ROW, BadRowPolicy
from .records import SplitRecords, TextRecord
from .text_cleaning import clean_utterance, decode_csv_bytes

MELD_COLUMNS = (
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
    "Utterance_ID", "Season", "Episode", "StartTime", "EndTime",
)
# MELD's file names -> this project's split names.
MELD_FILES = {"train": "train_sent_emo.csv", "val": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
_REQUIRED = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")


def meld_data_dir(path: str | Path) -> Path:
    """Accept either the folder holding the CSVs or its parent (`meld/` with a `data/` inside)."""
    path = Path(path)
    return path / "data" if (path / "data").is_dir() else path


def read_meld_csv(path: str | Path, split: str, policy: BadRowPolicy | None = None) -> list[TextRecord]:
    """Read one MELD CSV into TextRecords, keeping dialogue and speaker information."""
    path = Path(path)
    policy = policy or BadRowPolicy()
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        text = decode_csv_bytes(path.read_bytes())
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as exc:
        raise DataError(path, f"not a readable CSV ({str(exc).splitlines()[0]})") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}; expected MELD columns {', '.join(MELD_COLUMNS)}")

    records: list[TextRecord] = []
    seen: set[tuple[int, int]] = set()
    columns = [frame[c].tolist() for c in _REQUIRED]
    for row, (utterance, speaker, emotion, dialogue, utt) in enumerate(zip(*columns), start=FIRST_DATA_ROW):
        emotion_key = emotion.strip().lower()
        if emotion_key not in MELD_TO_EMOTION:
            policy.bad(path, f"unknown emotion {emotion!r} (MELD labels: {', '.join(MELD_TO_EMOTION)})", row)
            continue
        try:
            dialogue_id, utterance_id = int(dialogue), int(utt)
        except ValueError:
            policy.bad(path, f"Dialogue_ID/Utterance_ID must be integers, got {dialogue!r}/{utt!r}", row)
            continue
        if (dialogue_id, utterance_id) in seen:
            policy.bad(path, f"duplicate utterance id (Dialogue_ID {dialogue_id}, Utterance_ID {utterance_id})", row)
            continue
        cleaned = clean_utterance(utterance)
        if not cleaned:
            policy.bad(path, "empty utterance", row)
            continue
        seen.add((dialogue_id, utterance_id))
        records.append(
            TextRecord(
                id=f"meld/{split}/dia{dialogue_id}_utt{utterance_id}",
                label=LABEL_TO_INDEX[MELD_TO_EMOTION[emotion_key]],
                text=cleaned,
                speaker=clean_utterance(speaker),
                dialogue_id=dialogue_id,
                utterance_id=utterance_id,
                split=split,
            )
        )
    return records


def read_meld(path: str | Path, skip_bad: bool = False) -> SplitRecords:
    """Read MELD's three official splits (train, dev -> val, test)."""
    data_dir = meld_data_dir(path)
    policy = BadRowPolicy(skip_bad)
    result = SplitRecords()
    for split, name in MELD_FILES.items():
        getattr(result, split).extend(read_meld_csv(data_dir / name, split, policy))
    result.skipped = policy.skipped
    return result


def read_meld_for(path: Path, data_config) -> SplitRecords:
    """The registry's reader: MELD at `path` with the bad-row policy of `data_config`."""
    return read_meld(path, skip_bad=data_config.skip_bad)
