"""Turning raw text, waveforms and images into the inputs a model's encoders expect.

The preprocessing belongs to the model (its tokenizer, sample rate, image size and normalisation),
so training, evaluation and inference share this one implementation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
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
        """Grey when the model was trained on grey faces, resize to the model's square size, match its channel
        count, normalise -> float [C, S, S]."""
        array = to_uint8_image(image)
        size, channels = self.config.image_size, self.config.image_channels
        pil = Image.fromarray(array)
        if self.config.image_colour == "grey":
            pil = pil.convert("L")  # a 3-channel backbone trained on grey-replicated faces never saw colour
        pil = pil.convert("L" if channels == 1 else "RGB")
        if pil.size != (size, size):
            pil = pil.resize((size, size), Image.BILINEAR)
        values = np.asarray(pil, dtype=np.float32) / 255.0
        values = values[None] if values.ndim == 2 else values.transpose(2, 0, 1)
        mean = np.asarray(self.config.image_mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.config.image_std, dtype=np.float32)[:, None, None]
        return torch.from_numpy((values - mean) / std)
