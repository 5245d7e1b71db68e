"""Reading user media for prediction: audio (file or array), images (file, array or PIL), video (PyAV)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.audio_io import resample, to_mono
from ..errors import InputError
from ..model.preprocessing import to_uint8_image

MIN_AUDIO_SECONDS = 0.1
SILENCE_RMS = 1e-4


def read_audio(audio, sample_rate: int | None, target_rate: int, max_seconds: float) -> np.ndarray:
    """A path, or an array with its sample rate (mono [n] or [n, channels]) -> mono float32 at `target_rate`."""
    name = str(audio) if isinstance(audio, (str, Path)) else "audio array"
    if isinstance(audio, (str, Path)):
        path = Path(audio)
        if not path.is_file():
            raise InputError(f"{path}: audio file not found")
        try:
            info = sf.info(str(path))
            if info.frames > max_seconds * info.samplerate:
                raise InputError(f"{path}: audio lasts {info.frames / info.samplerate:.0f} s, more than the limit of {max_seconds:.0f} s")
            samples, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise InputError(f"{path}: unreadable audio ({str(exc).splitlines()[0]})") from None
    else:
        if sample_rate is None:
            raise InputError("an audio array needs its sample rate (sample_rate=...)")
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 2 and samples.shape[0] < samples.shape[1] and samples.shape[0] <= 8:
            samples = samples.T  # [channels, n] -> [n, channels]
        if samples.shape[0] > max_seconds * sample_rate:
            raise InputError(f"audio array lasts {samples.shape[0] / sample_rate:.0f} s, more than the limit of {max_seconds:.0f} s")
    return check_audio(resample(to_mono(samples), int(sample_rate), target_rate), target_rate, name)


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
    """A path, PIL image or array -> uint8 array [H, W] (grey) or [H, W, 3] (colour), upright as its EXIF
    orientation says (cameras store photos sideways and tag how to turn them)."""
    name = str(image) if isinstance(image, (str, Path)) else "image"
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise InputError(f"{path}: image file not found")
        try:
            with Image.open(path) as opened:  # the header gives the size before any pixel is decoded
                if opened.width * opened.height > max_pixels:
                    raise InputError(f"{path}: image has {opened.width}x{opened.height} pixels, more than the limit of {max_pixels:,}")
                return to_uint8_image(ImageOps.exif_transpose(opened))
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"{path}: unreadable image ({exc.__class__.__name__})") from None
    if isinstance(image, Image.Image):
        width, height = image.size
    else:
        shape = np.shape(image)
        if len(shape) not in (2, 3) or 0 in shape:
            raise InputError(f"{name}: expected an image array [H, W] or [H, W, C], got shape {shape}")
        height, width = shape[:2]
    if width * height > max_pixels:  # before any conversion allocates a copy
        raise InputError(f"{name}: image has {width}x{height} pixels, more than the limit of {max_pixels:,}")
    return to_uint8_image(ImageOps.exif_transpose(image) if isinstance(image, Image.Image) else image)


def read_video(path, max_frames: int, target_rate: int, max_seconds: float) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Up to `max_frames` RGB frames spread over the video, and its audio track (mono, target rate) if any."""
    try:
        import av
    except ImportError:
        raise InputError("video input needs PyAV: pip install av") from None
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: video file not found")
    frames, chunks, stride, seen = [], [], 1, 0
    try:
        with av.open(str(path)) as container:
            duration = float(container.duration / 1e6) if container.duration else None
            if duration is not None and duration > max_seconds:
                raise InputError(f"{path}: video lasts {duration:.0f} s, more than the limit of {max_seconds:.0f} s")
            video = container.streams.video[0] if container.streams.video else None
            sound = container.streams.audio[0] if container.streams.audio else None
            # One pass over the file; frames are kept at a doubling stride so at most 2 * max_frames + 1 are
            # held in memory whatever the video's length.
            for frame in container.decode(*[s for s in (video, sound) if s is not None]):
                if isinstance(frame, av.AudioFrame):
                    chunks.append(_planar_to_frames(_to_float(frame.to_ndarray()), sound.channels))
                    continue
                if seen % stride == 0:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if len(frames) > 2 * max_frames:
                        frames, stride = frames[::2], stride * 2
                seen += 1
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: unreadable video ({exc.__class__.__name__})") from None
    audio = resample(to_mono(np.concatenate(chunks)), sound.rate, target_rate) if chunks else None
    if not frames:
        raise InputError(f"{path}: video holds no frames")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    return [frames[i] for i in picks], audio


def _to_float(chunk: np.ndarray) -> np.ndarray:
    if np.issubdtype(chunk.dtype, np.integer):
        return chunk.astype(np.float32) / float(np.iinfo(chunk.dtype).max + 1)
    return chunk.astype(np.float32)


def _planar_to_frames(chunk: np.ndarray, channels: int) -> np.ndarray:
    """PyAV gives planar audio as [channels, n] and packed audio as [1, n * channels]; return [n, channels]."""
    if chunk.shape[0] == channels and channels > 1:
        return chunk.T
    return chunk.reshape(-1, channels)
