"""The one media layer: every image and audio file the package reads (dataset readers, the feature cache's clips,
the Predictor, the processor, the demo) is decoded here, so training and prediction see the same pixels and samples.

Images -> uint8 arrays: [H, W] for grey pictures, [H, W, 3] for colour ones (what the readers' records and the
preprocessor take).
- Upright as the EXIF orientation says (cameras store photos sideways and tag how to turn them).
- Values scaled by their range, never clipped: 8-bit as they are; 16-bit (PNG/TIFF files, uint16 arrays) divided
  by 257; float arrays (PIL mode "F") in 0..1 times 255, in 0..255 as they are (anything else is refused); other
  integer arrays taken as 8-bit when they fit 0..255, as 16-bit when they fit 0..65535 (else refused).
- Alpha composited over ALPHA_BACKGROUND (white, what image viewers and browsers show behind a transparent
  picture), not dropped (PIL's convert) and not black (premultiplied pixels).
- Arrays: [H, W] or [H, W, C] with C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
- `grey=True` gives [H, W] with PIL's convert("L") weights (ITU-R 601-2), as FER2013's faces are.

Audio -> mono float32 at the model's rate: any rate and channel count (channels averaged, resampled with soxr).
WAV headers are checked: a WAV shorter than its header declares is refused (libsndfile would silently read the
part that is there), and a streaming header (RIFF or data size 0 or 0xFFFFFFFF, as written by a recorder or by
ffmpeg into a pipe) is read up to the end of the file.

Problems raise MediaError, a DataError naming the file ("PATH: problem"); the Predictor reports them as InputError.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
DEFAULT_VIDEO_FRAMES = 8  # frames spread over a video whose faces are classified
ALPHA_BACKGROUND = 255  # white: a transparent pixel becomes white, a half-transparent one half way to white
TARGET_SAMPLE_RATE = 16_000
_AUDIO_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError)
_IMAGE_ERRORS = (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError, SyntaxError)
_STREAMING_SIZES = (0, 0xFFFFFFFF)


class MediaError(DataError):
    """A media file (or array) is missing, unreadable or unusable; `path` names it."""


# ============================================================================= images
def decode_image(source, max_pixels: int | None = None, grey: bool = False, name: str | None = None) -> np.ndarray:
    """A path, PIL image or array -> uint8 [H, W] (grey) or [H, W, 3] (colour); `grey`: always [H, W].
    `max_pixels`: larger images are refused before their pixels are decoded."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise MediaError(path, "image file not found")
        try:
            with Image.open(path) as opened:  # the header gives the size before any pixel is decoded
                _check_size(path, opened.width, opened.height, max_pixels)
                array = _pil_to_array(ImageOps.exif_transpose(opened), path)
        except _IMAGE_ERRORS as exc:
            raise MediaError(path, f"unreadable image ({exc.__class__.__name__})") from None
    elif isinstance(source, Image.Image):
        name = name or "image"
        _check_size(name, source.width, source.height, max_pixels)
        try:
            array = _pil_to_array(ImageOps.exif_transpose(source), name)
        except _IMAGE_ERRORS as exc:
            raise MediaError(name, f"unreadable image ({exc.__class__.__name__})") from None
    else:
        name = name or "image array"
        array = np.asarray(source)
        if array.ndim not in (2, 3) or 0 in array.shape or (array.ndim == 3 and array.shape[2] > 4):
            raise MediaError(name, f"expected an image array [H, W] or [H, W, C] (C: 1 grey, 2 grey + alpha, 3 RGB or "
                                   f"4 RGBA, channels last), got shape {array.shape}")
        _check_size(name, array.shape[1], array.shape[0], max_pixels)
        array = _array_to_uint8(array, name)
    return to_grey(array) if grey else array


def to_grey(array: np.ndarray) -> np.ndarray:
    """uint8 [H, W] or [H, W, 3] -> uint8 [H, W] with PIL's convert("L") integer formula (ITU-R 601-2)."""
    if array.ndim == 2:
        return array
    weights = np.array([19595, 38470, 7471], dtype=np.uint32)
    return ((array.astype(np.uint32) @ weights + 0x8000) >> 16).astype(np.uint8)


def _check_size(name, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise MediaError(name, f"image has {width}x{height} pixels, more than the limit of {max_pixels:,}")


def _pil_to_array(image: Image.Image, name) -> np.ndarray:
    """A PIL image in any mode -> uint8 [H, W] or [H, W, 3] through `_array_to_uint8`, keeping 16-bit and float
    values and the alpha channel for it."""
    mode = image.mode
    if mode.startswith("I;16"):
        return _array_to_uint8(np.asarray(image).astype(np.uint16), name)
    if mode in ("I", "F"):
        return _array_to_uint8(np.asarray(image), name)
    if mode in ("L", "RGB") and "transparency" in image.info:  # a tRNS colour key
        image = image.convert("LA" if mode == "L" else "RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode == "La":
        image = image.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):  # P, PA, RGBa, RGBX, CMYK, YCbCr, LAB, HSV, ...
        image = image.convert("RGBA" if mode in ("PA", "RGBa") or "transparency" in image.info else "RGB")
    return _array_to_uint8(np.asarray(image), name)


def _array_to_uint8(array: np.ndarray, name) -> np.ndarray:
    """[H, W] or [H, W, 1..4] of any real dtype -> uint8 [H, W] or [H, W, 3], alpha composited."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] in (2, 4):
        colour, alpha = array[:, :, :-1], array[:, :, -1]
        colour = colour[:, :, 0] if colour.shape[2] == 1 else colour
        values, opacity = _unit_scale(colour, name), _unit_scale(alpha, name)
        if opacity is None:  # uint8 alpha
            opacity = alpha.astype(np.float32) / 255.0
        if values is None:
            values = colour.astype(np.float32)
        else:
            values = values * 255.0
        if values.ndim == 3:
            opacity = opacity[:, :, None]
        composited = values * opacity + ALPHA_BACKGROUND * (1.0 - opacity)
        return np.clip(np.rint(composited), 0, 255).astype(np.uint8)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    values = _unit_scale(array, name)
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


def _unit_scale(array: np.ndarray, name) -> np.ndarray | None:
    """Values of any real dtype as float32 in 0..1 by their range (None for uint8, left to the caller)."""
    if array.dtype == np.uint8:
        return None
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255:
            return array.astype(np.float32) / 255.0
        if low >= 0 and high <= 65535:
            return array.astype(np.float32) / 65535.0
        raise MediaError(name, f"integer image values span {low}..{high}; expected 0..255 (8-bit) or 0..65535 (16-bit)")
    if np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise MediaError(name, "image holds NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        if low >= -1e-3 and high <= 1.0 + 1e-3:
            return np.clip(values, 0.0, 1.0)
        if low >= -1e-3 and high <= 255.0 + 1e-3:
            return np.clip(values, 0.0, 255.0) / 255.0
        raise MediaError(name, f"float image values span {low:g}..{high:g}; expected 0..1 (or 0..255)")
    raise MediaError(name, f"image values of type {array.dtype} are not pixel values")


# ============================================================================= audio
def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels ([n, channels] -> [n]; RAVDESS holds five stereo files among 1,440 mono ones)."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, rate: int, target_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    if rate == target_rate:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def check_wav_complete(path: str | Path) -> None:
    """MediaError for a WAV shorter than its header declares (libsndfile silently reads a truncated WAV as a shorter
    one). A streaming header (size 0 or 0xFFFFFFFF) declares no size, so it is no truncation."""
    _wav_source(Path(path))


def _wav_source(path: Path):
    """What libsndfile should read for `path`: the path itself, or for a WAV with a streaming header whose data size
    libsndfile cannot use, the file's bytes with the sizes that the file's length gives. MediaError when truncated."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return str(path)  # not a RIFF WAV (RF64, FLAC, ...): libsndfile checks it
        riff = int.from_bytes(header[4:8], "little")
        streaming = riff in _STREAMING_SIZES
        if not streaming and riff + 8 > size:
            raise MediaError(path, f"truncated WAV file (header declares {riff + 8} bytes, the file has {size})")
        offset = 12
        while offset + 8 <= size:  # walk the chunks up to `data`
            handle.seek(offset)
            chunk = handle.read(8)
            length = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                end = offset + 8 + length
                if length == 0xFFFFFFFF or (streaming and length == 0 and size > offset + 8):
                    return _with_sizes(path, offset, size)
                if end > size:
                    raise MediaError(path, f"truncated WAV file (header declares {end} bytes, the file has {size})")
                return str(path)
            offset += 8 + length + (length & 1)
    return str(path)  # no data chunk found: libsndfile says what is wrong


def _with_sizes(path: Path, data_offset: int, size: int) -> io.BytesIO:
    """The WAV's bytes with the RIFF size and the data size of a chunk that runs to the end of the file."""
    data = bytearray(path.read_bytes())
    data[4:8] = (size - 8).to_bytes(4, "little")
    data[data_offset + 4:data_offset + 8] = (size - data_offset - 8).to_bytes(4, "little")
    return io.BytesIO(bytes(data))


def image_info(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file from its header, checked as far as PIL can without decoding the pixels;
    MediaError when missing or not an image PIL reads."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "image file not found")
    try:
        with Image.open(path) as opened:
            opened.verify()
            return opened.width, opened.height
    except _IMAGE_ERRORS as exc:
        raise MediaError(path, f"unreadable image ({exc.__class__.__name__})") from None


def audio_info(path: str | Path):
    """The header of an audio file (soundfile's info: frames, samplerate, channels), after the checks `load_audio`
    makes; MediaError when missing, truncated, unreadable or empty."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "audio file not found")
    source = _wav_source(path)
    try:
        info = sf.info(source)
    except _AUDIO_ERRORS as exc:
        raise MediaError(path, f"unreadable audio ({_first_line(exc)})") from None
    if info.frames == 0:
        raise MediaError(path, "audio file holds no samples")
    return info


def read_audio_file(path: str | Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """(samples float32 [n, channels], sample rate) of an audio file; `max_seconds`: longer files are refused before
    they are decoded."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "audio file not found")
    source = _wav_source(path)
    try:
        if max_seconds is not None:
            info = sf.info(source)
            if info.frames > max_seconds * info.samplerate:
                raise MediaError(path, f"audio lasts {info.frames / info.samplerate:.1f} s, more than the limit of "
                                       f"{max_seconds:g} s")
            if isinstance(source, io.BytesIO):
                source.seek(0)
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
    except _AUDIO_ERRORS as exc:
        raise MediaError(path, f"unreadable audio ({_first_line(exc)})") from None
    if samples.shape[0] == 0:
        raise MediaError(path, "audio file holds no samples")
    if not np.isfinite(samples).all():
        raise MediaError(path, "audio holds NaN or infinite samples")
    return samples, int(rate)


def load_audio(path: str | Path, target_rate: int = TARGET_SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """An audio file (or a video file's audio track) -> mono float32 at `target_rate`; MediaError names the file on
    any problem."""
    if Path(path).suffix.lower() in VIDEO_SUFFIXES:
        _, track = read_video(path, 0, target_rate, float("inf"))
        if track is None:
            raise MediaError(path, "the video holds no audio track")
        return track[: int(max_seconds * target_rate)] if max_seconds else track
    samples, rate = read_audio_file(path, max_seconds)
    return resample(to_mono(samples), rate, target_rate)


def audio_from_array(samples, rate: int, target_rate: int = TARGET_SAMPLE_RATE, max_seconds: float | None = None,
                     name: str = "audio array") -> np.ndarray:
    """A waveform array at `rate` (mono [n], or [n, channels], or [channels, n] for up to 8 channels) -> mono
    float32 at `target_rate`."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim not in (1, 2):
        raise MediaError(name, f"expected a waveform [n] or [n, channels], got shape {samples.shape}")
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1] and samples.shape[0] <= 8:
        samples = samples.T  # [channels, n] -> [n, channels]
    if max_seconds is not None and samples.shape[0] > max_seconds * rate:
        raise MediaError(name, f"audio lasts {samples.shape[0] / rate:.1f} s, more than the limit of {max_seconds:g} s")
    if samples.shape[0] == 0:
        raise MediaError(name, "audio holds no samples")
    if not np.isfinite(samples).all():
        raise MediaError(name, "audio holds NaN or infinite samples")
    return resample(to_mono(samples), int(rate), target_rate)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [exc.__class__.__name__])[0]


# ============================================================================= video
def read_video(path, max_frames: int, target_rate: int, max_seconds: float,
               audio: bool = True) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Up to `max_frames` RGB frames spread over the video (none with max_frames 0), and its audio track (mono,
    target rate) if any and `audio`."""
    try:
        import av
    except ImportError:
        raise MediaError(path, "video input needs PyAV: pip install av") from None
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "video file not found")
    frames, chunks, stride, seen = [], [], 1, 0
    try:
        with av.open(str(path)) as container:
            duration = float(container.duration / 1e6) if container.duration else None
            if duration is not None and duration > max_seconds:
                raise MediaError(path, f"video lasts {duration:.1f} s, more than the limit of {max_seconds:g} s")
            video = container.streams.video[0] if container.streams.video and max_frames > 0 else None
            sound = container.streams.audio[0] if container.streams.audio and audio else None
            # One pass over the file; frames are kept at a doubling stride so at most 2 * max_frames + 1 are
            # held in memory whatever the video's length.
            for frame in container.decode(*[s for s in (video, sound) if s is not None]):
                if isinstance(frame, av.AudioFrame):
                    chunks.append(planar_to_frames(float_samples(frame.to_ndarray()), sound.channels))
                    continue
                if seen % stride == 0:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    if len(frames) > 2 * max_frames:
                        frames, stride = frames[::2], stride * 2
                seen += 1
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"unreadable video ({exc.__class__.__name__})") from None
    audio = resample(to_mono(np.concatenate(chunks)), sound.rate, target_rate) if chunks else None
    if not frames and max_frames > 0:
        raise MediaError(path, "video holds no frames")
    picks = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    return [frames[i] for i in picks], audio


def float_samples(chunk: np.ndarray) -> np.ndarray:
    if np.issubdtype(chunk.dtype, np.integer):
        return chunk.astype(np.float32) / float(np.iinfo(chunk.dtype).max + 1)
    return chunk.astype(np.float32)


def planar_to_frames(chunk: np.ndarray, channels: int) -> np.ndarray:
    """PyAV gives planar audio as [channels, n] and packed audio as [1, n * channels]; return [n, channels]."""
    if chunk.shape[0] == channels and channels > 1:
        return chunk.T
    return chunk.reshape(-1, channels)
