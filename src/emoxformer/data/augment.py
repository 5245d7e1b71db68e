"""Training-only augmentation (the reference code's recipe). Validation and test data never pass through here."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance


def word_dropout(text: str, p: float, rng: np.random.Generator) -> str:
    """Drop each word with probability p, keeping at least one word."""
    words = text.split()
    if p <= 0 or len(words) < 2:
        return text
    kept = [w for w in words if rng.random() >= p]
    return " ".join(kept) if kept else words[int(rng.integers(len(words)))]


def augment_waveform(wave: np.ndarray, max_shift: int, noise_snr_db: list[float] | None,
                     rng: np.random.Generator) -> np.ndarray:
    """A circular time shift of at most `max_shift` samples, then, with `noise_snr_db` = [low, high], white noise
    at an SNR drawn uniformly from that range (dB).

    No random gain: the model's input is normalised to unit variance, which undoes any gain (the reference
    code's 0.9-1.1 gain changed the input by 3e-6); the built-in encoder's log-mel standardisation and Wav2Vec2's
    group-norm feature extractor would undo it again. Noise changes the waveform's shape, so it survives them.
    """
    if max_shift > 0:
        wave = np.roll(wave, int(rng.integers(-max_shift, max_shift + 1)))
    if noise_snr_db is not None:
        wave = add_noise(wave, float(rng.uniform(*noise_snr_db)), rng)
    return wave


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`wave` plus white Gaussian noise whose power is the wave's (about its mean) over 10^(snr_db / 10)."""
    noise_std = np.sqrt(np.var(wave, dtype=np.float64) / 10 ** (snr_db / 10))
    return (wave + rng.standard_normal(wave.shape) * noise_std).astype(np.float32)


def augment_image(pixels: np.ndarray, crop_scale_min: float, hflip: bool, brightness: float, contrast: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Random resized crop (area scale in [crop_scale_min, 1], aspect 3/4..4/3), flip, brightness/contrast jitter."""
    image = Image.fromarray(pixels)
    width, height = image.size
    area = width * height * rng.uniform(crop_scale_min, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    crop_w = int(round(min(width, np.sqrt(area * aspect))))
    crop_h = int(round(min(height, np.sqrt(area / aspect))))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    image = image.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.BILINEAR)
    if hflip and rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    if brightness > 0:
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(1 - brightness, 1 + brightness))
    if contrast > 0:
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(1 - contrast, 1 + contrast))
    return np.asarray(image)
