"""Reading user media for prediction: audio (file or array) and images (file, array or PIL) through the package's one
media layer (emoxformer.media, which the dataset readers use too), its problems reported as InputError; video
(PyAV)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..media import (MediaError, audio_from_array, decode_image, float_samples, load_audio, planar_to_frames)
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


class VideoStream:
    """A video decoded in one pass, in the file's order, without holding it: iterate for ("video", seconds, frame)
    (a PyAV frame; `frame.to_ndarray(format="rgb24")` converts it) and ("audio", seconds, samples) (float32
    [n, channels] at `audio_rate`). `has_audio`, `audio_rate` and `duration` (seconds, None when the file does not
    say) are known once it is open; problems are InputError."""

    def __init__(self, path):
        try:
            import av
        except ImportError:
            raise InputError("video input needs PyAV: pip install av") from None
        self._av = av
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: video file not found")
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.path}: unreadable video ({exc.__class__.__name__})") from None
        container = self._container
        self._video = container.streams.video[0] if container.streams.video else None
        self._sound = container.streams.audio[0] if container.streams.audio else None
        if self._video is None:
            container.close()
            raise InputError(f"{self.path}: the file holds no video stream")
        self.has_audio = self._sound is not None
        self.audio_rate = int(self._sound.rate) if self._sound is not None else None
        self.duration = float(container.duration / 1e6) if container.duration else None
        rate = self._video.average_rate
        self.frame_seconds = float(1 / rate) if rate else 0.0
        self._audio_samples = 0

    def __iter__(self):
        av = self._av
        streams = [s for s in (self._video, self._sound) if s is not None]
        frames = 0
        try:
            for frame in self._container.decode(*streams):
                if isinstance(frame, av.AudioFrame):
                    chunk = planar_to_frames(float_samples(frame.to_ndarray()), self._sound.channels)
                    # Sound is timed by its samples from the track's first one: a gap-free track's own clock.
                    if self._audio_samples == 0:
                        self._audio_samples = max(0, round((frame.time or 0.0) * self.audio_rate))
                    start = self._audio_samples / self.audio_rate
                    self._audio_samples += len(chunk)
                    yield "audio", start, chunk
                else:
                    time = frame.time if frame.time is not None else frames * self.frame_seconds
                    frames += 1
                    yield "video", float(time), frame
        except av.error.FFmpegError as exc:
            raise InputError(f"{self.path}: unreadable video ({exc.__class__.__name__})") from None
        finally:
            self.close()
        if frames == 0:
            raise InputError(f"{self.path}: video holds no frames")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
