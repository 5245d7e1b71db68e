"""Reading speech files: any rate and channel count in, mono float32 at the model's rate out."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import DataError

TARGET_SAMPLE_RATE = 16_000


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels (RAVDESS holds five stereo files among 1,440 mono ones)."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, rate: int, target_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    if rate == target_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def check_wav_complete(path: Path) -> None:
    """libsndfile silently reads a truncated WAV as a shorter one; compare the RIFF size with the file size."""
    if path.suffix.lower() != ".wav":
        return
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(12)
    if len(header) == 12 and header[:4] == b"RIFF" and header[8:12] == b"WAVE":
        declared = int.from_bytes(header[4:8], "little") + 8
        if declared > size:
            raise DataError(path, f"truncated WAV file (header declares {declared} bytes, the file has {size})")


def load_audio(path: str | Path, target_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Read an audio file, mix down to mono and resample; a DataError names the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "audio file not found")
    check_wav_complete(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise DataError(path, f"unreadable audio ({str(exc).splitlines()[0]})") from None
    if samples.shape[0] == 0:
        raise DataError(path, "audio file holds no samples")
    if not np.isfinite(samples).all():
        raise DataError(path, "audio holds NaN or infinite samples")
    return resample(to_mono(samples), rate, target_rate)
