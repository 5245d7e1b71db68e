"""Faces are prepared a batch at once (Preprocessor.image_batch, used by the collator and by prepare_image) and agree
with the per-sample path they replace: PIL convert and bilinear resize, NumPy normalisation."""
import numpy as np
import pytest
import torch
from PIL import Image

from emoxformer.config import AugmentConfig
from emoxformer.data.collate import Collator
from emoxformer.data.datasets import RecordDataset
from emoxformer.data.records import ImageRecord
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.preprocessing import PendingImage, Preprocessor, grey_like_pil, to_uint8_image

GREY_48 = EmoXFormerConfig()  # the built-in face encoder: 1 x 48 x 48
VIT_224 = EmoXFormerConfig(image_size=224, image_channels=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)
IMAGENET_COLOUR = EmoXFormerConfig(image_size=224, image_channels=3, image_mean=[0.485, 0.456, 0.406],
                                   image_std=[0.229, 0.224, 0.225], image_colour="colour")


def pil_prepare(config: EmoXFormerConfig, image) -> torch.Tensor:
    """The per-sample path before batching: PIL grey/RGB conversion and BILINEAR resize, NumPy normalisation."""
    pil = Image.fromarray(to_uint8_image(image))
    if config.image_colour == "grey":
        pil = pil.convert("L")
    pil = pil.convert("L" if config.image_channels == 1 else "RGB")
    if pil.size != (config.image_size,) * 2:
        pil = pil.resize((config.image_size,) * 2, Image.BILINEAR)
    values = np.asarray(pil, dtype=np.float32) / 255.0
    values = values[None] if values.ndim == 2 else values.transpose(2, 0, 1)
    mean = np.asarray(config.image_mean, dtype=np.float32)[:, None, None]
    std = np.asarray(config.image_std, dtype=np.float32)[:, None, None]
    return torch.from_numpy((values - mean) / std)


def grey_levels(config: EmoXFormerConfig, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| in 0..255 grey levels, per value (undoing each channel's normalisation)."""
    return (a - b).abs() * torch.tensor(config.image_std)[:, None, None] * 255


def faces(count: int, seed: int = 0) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8))


def test_48px_grey_faces_come_out_exactly_as_per_sample():
    images = faces(5) + [np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)]
    batch = Preprocessor(GREY_48).image_batch(images)
    assert batch.shape == (6, 1, 48, 48) and batch.dtype == torch.float32
    for row, image in zip(batch, images):
        assert torch.equal(row, pil_prepare(GREY_48, image))


def test_48_to_224_grey_to_rgb_within_one_grey_level_of_pil():
    """PIL rounds to whole grey levels twice (after its horizontal and its vertical pass); torch's bilinear
    interpolation does not round, so a value differs by at most one level and by about 0.3 on average."""
    images = faces(8)
    batch = Preprocessor(VIT_224).image_batch(images)
    assert batch.shape == (8, 3, 224, 224)
    assert torch.equal(batch[:, 0], batch[:, 1]) and torch.equal(batch[:, 0], batch[:, 2])
    levels = torch.stack([grey_levels(VIT_224, row, pil_prepare(VIT_224, image)) for row, image in zip(batch, images)])
    assert levels.max() <= 1.001 and levels.mean() < 0.35


@pytest.mark.parametrize("config", [GREY_48, VIT_224, IMAGENET_COLOUR], ids=["grey48", "vit224", "colour224"])
def test_user_photos_of_different_sizes_in_one_batch(config):
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (48, 48), dtype=np.uint8),
              rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),   # shrinks: antialiased, as PIL's BILINEAR
              Image.fromarray(rng.integers(0, 256, (200, 300), dtype=np.uint8)),  # enlarges one axis, shrinks the other
              rng.integers(0, 256, (48, 48), dtype=np.uint8),
              rng.random((30, 40, 3))]  # float 0..1
    pre = Preprocessor(config)
    batch = pre.image_batch(images)
    assert batch.shape == (5, config.image_channels, config.image_size, config.image_size)
    for row, image in zip(batch, images):
        assert torch.equal(row, pre.prepare_image(image))  # alone or in a batch: the same values
        assert grey_levels(config, row, pil_prepare(config, image)).max() <= 1.001


def test_colour_becomes_grey_with_pils_formula():
    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    colour[0, :4] = [[255, 255, 255], [0, 0, 0], [255, 0, 0], [1, 2, 3]]
    ours = grey_like_pil(torch.from_numpy(colour).permute(2, 0, 1)[None])[0, 0].numpy()
    assert np.array_equal(ours, np.asarray(Image.fromarray(colour).convert("L")))


def _records(count: int) -> list[ImageRecord]:
    return [ImageRecord(id=f"fer2013/Training/{i}", label=i % 7, usage="Training", pixels=face)
            for i, face in enumerate(faces(count, seed=4))]


def test_dataset_serves_uint8_faces_and_the_collator_prepares_the_batch():
    records = _records(6)
    pre = Preprocessor(VIT_224)
    dataset = RecordDataset(records, 2, pre, AugmentConfig())
    plain = dataset[0]["vision"]
    assert isinstance(plain, PendingImage) and plain.pixels.dtype == np.uint8 and plain.pixels.shape == (48, 48)
    assert np.array_equal(plain.pixels, records[0].pixels)
    drawn = dataset[(1, 7)]["vision"].pixels  # a training draw: augmented per sample, still uint8 at 48 x 48
    assert drawn.dtype == np.uint8 and drawn.shape == (48, 48) and not np.array_equal(drawn, records[1].pixels)
    samples = [dataset[(i, 7)] for i in range(6)]
    batch = Collator()(samples)["vision"]["pixel_values"]
    assert batch.shape == (6, 3, 224, 224)
    for row, sample in zip(batch, samples):
        assert torch.equal(row, pre.prepare_image(sample["vision"].pixels))  # as inference prepares it


def test_faces_beside_other_modalities_land_in_their_rows():
    pre = Preprocessor(GREY_48)
    images = faces(2)
    batch = Collator()([{"text": [1, 5]}, {"vision": pre.pending_image(images[0])},
                        {"vision": pre.prepare_image(images[1])}, {"text": [2]}])
    pixels = batch["vision"]["pixel_values"]
    assert pixels.shape == (4, 1, 48, 48) and batch["present"][:, 2].tolist() == [False, True, True, False]
    assert torch.equal(pixels[1], pil_prepare(GREY_48, images[0])) and torch.equal(pixels[2], pil_prepare(GREY_48, images[1]))
    assert not pixels[[0, 3]].any()
