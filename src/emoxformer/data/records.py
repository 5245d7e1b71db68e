"""Typed records the dataset readers return, one class per modality, and the multimodal record of a manifest row
that holds several modalities of one recording."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TextRecord:
    """One utterance: MELD's, or a text manifest's row (dialogue and utterance ids numbered by the reader)."""

    id: str
    label: int
    text: str
    speaker: str
    dialogue_id: int
    utterance_id: int
    split: str


@dataclass(frozen=True)
class AudioRecord:
    """One speech clip. A RAVDESS file also carries the seven fields of its name; other clips (a manifest's)
    leave them 0."""

    id: str
    label: int
    path: Path
    modality: int = 0
    vocal_channel: int = 0
    emotion_code: int = 0
    intensity: int = 0
    statement: int = 0
    repetition: int = 0
    actor: int = 0


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One face: uint8 pixels, grey [H, W] (48x48 in FER2013) or colour [H, W, 3]; `usage` is FER2013's Usage
    column, or the split of a manifest's row."""

    id: str
    label: int
    usage: str
    pixels: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class MultiRecord:
    """One recording of a multimodal manifest (data/multimodal.py): any of a transcript, a speech clip, a face image
    and a video (its audio track and the faces of sampled frames), read when the row is scored; `where` is the
    manifest and line, for messages about the row."""

    id: str
    label: int
    split: str
    where: tuple[Path, int]
    text: str | None = None
    audio: Path | None = None
    image: Path | None = None
    video: Path | None = None
    speaker: str = ""
    video_has_audio: bool = False  # the video holds an audio track

    @property
    def cells(self) -> tuple[str, ...]:
        """The manifest columns this row fills (text, audio, image, video)."""
        return tuple(c for c in ("text", "audio", "image", "video") if getattr(self, c) is not None)


@dataclass
class SplitRecords:
    """A dataset's records by split ("train", "val", "test") and what was skipped while reading."""

    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    test: list = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the reader decided that the counts do not show

    def __getitem__(self, split: str) -> list:
        if split not in SPLITS:
            raise KeyError(split)
        return getattr(self, split)

    def items(self):
        return [(s, getattr(self, s)) for s in SPLITS]
