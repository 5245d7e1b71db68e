"""The demo's one-click examples, written at start-up by the package's sample-data generator (nothing is downloaded)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from ..data.sample_data import draw_face, sample_utterance, synthesize_voice
from ..labels import RAVDESS_EMOTIONS

VOICE_RATE = 16_000


@dataclass(frozen=True)
class Example:
    title: str
    text: str | None = None
    audio: str | None = None
    image: str | None = None


def make_examples(folder: str | Path, seed: int = 0) -> list[Example]:
    """Text, speech, a face photo, and all three together, each showing one emotion."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return [
        Example("text: happy", text=sample_utterance(rng, "happy")),
        Example("speech: surprise", audio=write_voice(folder / "surprised-voice.wav", rng, "surprise")),
        Example("face photo: sad", image=write_face_photo(folder / "sad-face-photo.png", rng, "sad")),
        Example("all three: anger", text=sample_utterance(rng, "anger"),
                audio=write_voice(folder / "angry-voice.wav", rng, "anger"),
                image=write_face_photo(folder / "angry-face-photo.png", rng, "anger")),
    ]


def write_voice(path: Path, rng: np.random.Generator, emotion: str, seconds: float = 1.6) -> str:
    code = next(code for code, (_, label) in RAVDESS_EMOTIONS.items() if label == emotion)
    sf.write(path, synthesize_voice(rng, code, actor=3, seconds=seconds, rate=VOICE_RATE), VOICE_RATE, subtype="PCM_16")
    return str(path)


def write_face_photo(path: Path, rng: np.random.Generator, emotion: str, size=(360, 270), side=150) -> str:
    """A sample face pasted off-centre on a textured background, so the face detector has something to find.
    The face is drawn at FER2013's 48x48, as in training, and enlarged as a photo would show it."""
    width, height = size
    background = rng.normal(120, 18, (height, width)).clip(0, 255).astype(np.uint8)
    left, top = int(width * 0.45), int((height - side) * 0.4)
    face = Image.fromarray(draw_face(rng, emotion)).resize((side, side), Image.BICUBIC)
    background[top:top + side, left:left + side] = np.asarray(face)
    Image.fromarray(background).convert("RGB").save(path)
    return str(path)
