"""Faces: uint8 images held by their records, prepared to the model's image size and normalisation."""
from __future__ import annotations

import numpy as np
import torch

from ...model.preprocessing import PendingImage
from ..augment import augment_image
from ..records import ImageRecord
from ..specs import Modality


def setup(records: list, data_config, preprocessor, progress: bool) -> None:
    return None


def prepare(record: ImageRecord, state, preprocessor, augment, rng) -> torch.Tensor:
    pixels = record.pixels
    if augment:
        pixels = augment_image(pixels, augment.crop_scale_min, augment.hflip, augment.brightness, augment.contrast, rng)
    return preprocessor.pending_image(pixels)  # resized and normalised per batch, by the collator


def collate(images: list, rows: list[int], size: int, collator) -> dict:
    return {"pixel_values": collate_images(images, rows, size)}


def collate_images(images: list, rows: list[int], size: int) -> torch.Tensor:
    """Pixel values [size, C, S, S]: PendingImages prepared in one `image_batch` call of their preprocessor,
    prepared tensors as they are, zeros in the rows without an image."""
    pending = [j for j, image in enumerate(images) if isinstance(image, PendingImage)]
    if pending:
        prepared = images[pending[0]].preprocessor.image_batch([images[j].pixels for j in pending])
        if len(pending) == size:  # an image in every row: the prepared batch is the batch
            return prepared
        images = list(images)
        for j, tensor in zip(pending, prepared):
            images[j] = tensor
    pixels = torch.zeros((size,) + tuple(images[0].shape), dtype=images[0].dtype)
    for row, image in zip(rows, images):
        pixels[row] = image
    return pixels


def length(record: ImageRecord, state) -> int:
    return 0


def content(record: ImageRecord) -> bytes:
    return np.ascontiguousarray(record.pixels).tobytes()


VISION = Modality("vision", ImageRecord, setup, prepare, collate, length, content)
