"""Reading user media for prediction: audio (file or array) and images (file, array or PIL) through the package's one
media layer (emoxformer.media, which the dataset readers use too), its problems reported as InputError; video
(PyAV)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..media import MediaError, audio_from_array, decode_image, load_audio
from ..media import read_video as media_read_video

MIN_AUDIO_SECONDS = 0.1
SILENCE_RMS = 1e-4


def read_audio(audio, sample_rate: int | None, target_rate: int, max_seconds: float) -> np.ndarray:
    """A path, or an array with its sample rate (mono [n] or [n, channels]) -> mono float32 at `target_rate`."""
    name = str(audio) if isinstance(audio, (str, Path)) else "audio array"
    try:
        if isinstance(audio, (str, Path)):
            wave = load_audio(audio, target_rate, max_seconds)
        else:
            if sample_rate is None:
                raise InputError("an audio array needs its sample rate (sample_rate=...)")
            wave = audio_from_array(audio, int(sample_rate), target_rate, max_seconds)
    except MediaError as error:
        raise InputError(str(error)) from None
    return check_audio(wave, target_rate, name)


def check_audio(wave: np.ndarray, rate: int, name: str) -> np.ndarray:
    if wave.size == 0:
        raise InputError(f"{name}: audio holds no samples")
    if not np.isfinite(wave).all():
        raise InputError(f"{name}: audio holds NaN or infinite samples")
    if wave.size < MIN_AUDIO_SECONDS * rate:
        raise InputError(f"{name}: audio is too short ({wave.size / rate:.3f} s; at least {MIN_AUDIO_SECONDS} s needed)")
    if np.sqrt(np.mean(wave.astype(np.float64) ** 2)) < SILENCE_RMS:
        raise InputError(f"{name}: audio is silent")
    return wave


def read_image(image, max_pixels: int) -> np.ndarray:
    """A path, PIL image or array -> uint8 array [H, W] (grey) or [H, W, 3] (colour), decoded as the dataset
    readers decode their images (EXIF orientation, 16-bit and float ranges, alpha over the fixed background)."""
    try:
        return decode_image(image, max_pixels)
    except MediaError as error:
        raise InputError(str(error)) from None


def read_video(path, max_frames: int, target_rate: int, max_seconds: float) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Up to `max_frames` RGB frames spread over the video, and its audio track (mono, target rate) if any; problems
    as InputError (the media layer's `read_video`, which training's readers use too)."""
    try:
        return media_read_video(path, max_frames, target_rate, max_seconds)
    except MediaError as error:
        raise InputError(str(error)) from None
