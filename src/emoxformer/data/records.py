"""Typed records the dataset readers return, one class per modality."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TextRecord:
    """One MELD utterance."""

    id: str
    label: int
    text: str
    speaker: str
    dialogue_id: int
    utterance_id: int
    split: str


@dataclass(frozen=True)
class AudioRecord:
    """One RAVDESS file with the seven fields of its name."""

    id: str
    label: int
    path: Path
    modality: int
    vocal_channel: int
    emotion_code: int
    intensity: int
    statement: int
    repetition: int
    actor: int


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One FER2013 face: a grey uint8 array (48x48 in the real data)."""

    id: str
    label: int
    usage: str
    pixels: np.ndarray = field(repr=False)


@dataclass
class SplitRecords:
    """A dataset's records by split ("train", "val", "test") and what was skipped while reading."""

    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    test: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __getitem__(self, split: str) -> list:
        if split not in SPLITS:
            raise KeyError(split)
        return getattr(self, split)

    def items(self):
        return [(s, getattr(self, s)) for s in SPLITS]
