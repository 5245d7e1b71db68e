"""Training-only augmentation (the seed's recipe). Validation and test data never pass through here."""
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


def augment_waveform(wave: np.ndarray, gain: tuple[float, float], max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Random gain and a circular time shift of at most `max_shift` samples."""
    wave = wave * np.float32(rng.uniform(*gain))
    if max_shift > 0:
        wave = np.roll(wave, int(rng.integers(-max_shift, max_shift + 1)))
    return wave


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
