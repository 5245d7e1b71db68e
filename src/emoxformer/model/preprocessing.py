"""Turning raw text, waveforms and images into the inputs a model's encoders expect.

The preprocessing belongs to the model (its tokenizer, sample rate, image size and normalisation),
so training, evaluation and inference share this one implementation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import EmoXFormerConfig
from .encoders import TEXT_BYTE_OFFSET, TEXT_CLS_ID, TEXT_PAD_ID, is_builtin, resolve_backbone
from .modeling import TOKENIZER_DIR

MIN_AUDIO_SAMPLES = 400  # one 25 ms analysis window at 16 kHz


GREY_MODES = ("L", "LA", "I", "I;16", "F", "1")


def to_uint8_image(image) -> np.ndarray:
    """Any PIL image or array (grey or colour, any size, uint8 or float) -> uint8 [H, W] or [H, W, 3]."""
    if isinstance(image, Image.Image):
        image = image.convert("L" if image.mode in GREY_MODES else "RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8:
        scale = 255.0 if array.max() <= 1.0 else 1.0
        array = np.clip(array.astype(np.float32) * scale, 0, 255).astype(np.uint8)
    if array.ndim == 3:
        array = array[:, :, 0] if array.shape[2] == 1 else array[:, :, :3]
    return array


class Preprocessor:
    def __init__(self, config: EmoXFormerConfig, tokenizer=None):
        self.config = config
        self.tokenizer = tokenizer
        self.pad_id = TEXT_PAD_ID if tokenizer is None else (tokenizer.pad_token_id or 0)

    @classmethod
    def for_model(cls, config: EmoXFormerConfig, model_dir: str | Path | None = None) -> "Preprocessor":
        """The tokenizer comes from a saved model folder if it has one, else from the text backbone (none for a
        model without text)."""
        if "text" not in config.modalities or is_builtin(config.text_backbone):
            return cls(config)
        from transformers import AutoTokenizer

        saved = Path(model_dir) / TOKENIZER_DIR if model_dir is not None else None
        source = str(saved) if saved is not None and saved.is_dir() else resolve_backbone(config.text_backbone)
        return cls(config, AutoTokenizer.from_pretrained(source))

    # ------------------------------------------------------------------ text
    @property
    def context_separator(self) -> str:
        """What separates dialogue turns: the one recorded at training, else the tokenizer's separator token, or
        ' | ' for the byte encoder."""
        if self.config.text_separator:
            return self.config.text_separator
        return self.tokenizer.sep_token if self.tokenizer is not None and self.tokenizer.sep_token else "|"

    def tokenize(self, text: str, keep_end: bool = False) -> list[int]:
        """Token ids, truncated to `max_text_tokens`; `keep_end` drops the start instead (dialogue context,
        where the classified utterance comes last)."""
        limit = self.config.max_text_tokens
        if self.tokenizer is None:
            data = text.encode("utf-8")
            data = data[-(limit - 1):] if keep_end else data[: limit - 1]
            return [TEXT_CLS_ID] + [b + TEXT_BYTE_OFFSET for b in data]
        ids = self.tokenizer(text)["input_ids"]
        if len(ids) <= limit:
            return ids
        # Keep the special tokens at both ends and cut inside.
        return ids[:1] + ids[len(ids) - limit + 1:] if keep_end else ids[: limit - 1] + ids[-1:]

    # ------------------------------------------------------------------ audio
    def prepare_audio(self, waveform: np.ndarray) -> np.ndarray:
        """Mono 16 kHz float32 -> first `max_audio_seconds`, zero mean and unit variance (as Wav2Vec2 expects),
        at least one analysis window long."""
        waveform = np.asarray(waveform, dtype=np.float32)[: int(self.config.max_audio_seconds * self.config.sample_rate)]
        if waveform.size < MIN_AUDIO_SAMPLES:
            waveform = np.pad(waveform, (0, MIN_AUDIO_SAMPLES - waveform.size))
        return (waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)

    # ------------------------------------------------------------------ images
    def prepare_image(self, image) -> torch.Tensor:
        """One image -> float [C, S, S], exactly as `image_batch` prepares it among others."""
        return self.image_batch([image])[0]

    def pending_image(self, image) -> "PendingImage":
        """An image left as uint8 pixels at its own size, for the collator to prepare with the rest of its batch."""
        return PendingImage(to_uint8_image(image), self)

    def image_batch(self, images) -> torch.Tensor:
        """Images (any sizes, grey or colour) -> float [n, C, S, S]: grey when the model was trained on grey
        faces, the model's channel count, normalised, resized to its square size (bilinear, antialiased when
        shrinking, as PIL's). Images of one shape are prepared together, so a batch costs a few tensor operations
        instead of a pass per image; an image comes out the same alone or in any batch."""
        arrays = [to_uint8_image(image) for image in images]
        by_shape: dict[tuple, list[int]] = {}
        for index, array in enumerate(arrays):
            by_shape.setdefault(array.shape, []).append(index)
        if len(by_shape) == 1:
            return self._same_shape_batch(arrays)
        size = self.config.image_size
        prepared = torch.empty((len(arrays), self.config.image_channels, size, size))
        for indices in by_shape.values():
            prepared[indices] = self._same_shape_batch([arrays[i] for i in indices])
        return prepared

    def _same_shape_batch(self, arrays: list[np.ndarray]) -> torch.Tensor:
        pixels = torch.from_numpy(np.stack(arrays))
        pixels = pixels[:, None] if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)  # [n, 1 or 3, H, W]
        channels = self.config.image_channels
        if pixels.shape[1] == 3 and (channels == 1 or self.config.image_colour == "grey"):
            # A 3-channel backbone trained on grey-replicated faces never saw colour.
            pixels = grey_like_pil(pixels)
        values = pixels.float() / 255.0
        mean = torch.tensor(self.config.image_mean, dtype=torch.float32)[:, None, None]
        std = torch.tensor(self.config.image_std, dtype=torch.float32)[:, None, None]
        # Normalising before resizing touches H x W values instead of S x S (bilinear weights sum to 1, so the order
        # changes only float rounding); a grey face that every channel normalises alike is normalised once.
        same_planes = values.shape[1] == 1 and len(set(self.config.image_mean)) == 1 and len(set(self.config.image_std)) == 1
        planes = (values - mean[:1]) / std[:1] if same_planes else (values.expand(-1, channels, -1, -1) - mean) / std
        return self._resized(planes, channels)

    def _resized(self, planes: torch.Tensor, channels: int) -> torch.Tensor:
        """[n, 1 or C, H, W] -> [n, C, S, S], bilinear with half-pixel centres like PIL's, antialiased along an axis
        that shrinks (as PIL's BILINEAR; when enlarging, that filter is plain bilinear interpolation).

        Two one-axis passes, as PIL makes: widths first; then heights, on a channels-last view that holds the width
        as channels, which torch interpolates several times faster than a plain [n, 1, S, S] tensor (same values).
        A single plane is copied to the C channels between the passes, where it is smaller than the output."""
        n, _, height, width = planes.shape
        size = self.config.image_size
        if width != size:
            planes = F.interpolate(planes.reshape(-1, 1, height, width), size=(height, size), mode="bilinear",
                                   align_corners=False, antialias=width > size).view(n, -1, height, size)
        rows = planes.expand(-1, channels, -1, -1).reshape(n * channels, 1, height, size).contiguous()
        if height == size:
            return rows.view(n, channels, size, size)
        columns = rows.as_strided((n * channels, size, height, 1), (height * size, 1, size, size))
        resized = F.interpolate(columns, size=(size, 1), mode="bilinear", align_corners=False, antialias=height > size)
        return resized.permute(0, 3, 2, 1).reshape(n, channels, size, size)


def grey_like_pil(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [n, 3, H, W] -> uint8 grey [n, 1, H, W] with PIL's convert("L") integer formula (ITU-R 601-2)."""
    weights = torch.tensor([19595, 38470, 7471], dtype=torch.int32)[:, None, None]
    return ((pixels.int() * weights).sum(1, keepdim=True) + 0x8000).bitwise_right_shift(16).to(torch.uint8)


class PendingImage:
    """uint8 pixels ([H, W] or [H, W, 3], any size) awaiting `preprocessor.image_batch` in the collator, which
    prepares a batch of them at once (augmentation, per sample, stays on the small uint8 image)."""

    __slots__ = ("pixels", "preprocessor")

    def __init__(self, pixels: np.ndarray, preprocessor: Preprocessor):
        self.pixels, self.preprocessor = pixels, preprocessor

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """np.asarray(pending) is its pixels."""
        return np.array(self.pixels, dtype=dtype, copy=copy)
