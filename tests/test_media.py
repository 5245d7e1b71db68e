"""One media layer (emoxformer.media): training's readers (manifests, FER2013 folders, RAVDESS, the audio store) and
prediction (Predictor, processor) decode the same files into the same model inputs; 16-bit, float and transparent
images keep their values, photos are upright, streaming-header and 8-bit stereo WAVs load, two-channel arrays work."""
from __future__ import annotations

import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from emoxformer.data import registry
from emoxformer.data.datasets import RecordDataset
from emoxformer.data.fer2013 import read_fer_folders
from emoxformer.data.manifest import read_manifest
from emoxformer.data.modalities.audio import AudioStore
from emoxformer.data.ravdess import read_ravdess_files
from emoxformer.errors import DataError, InputError
from emoxformer.inference import Predictor
from emoxformer.inference.media import read_audio, read_image
from emoxformer.media import ALPHA_BACKGROUND, decode_image, load_audio
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor

ORIENTATION = 0x0112  # EXIF tag; 6: rotate 90 degrees clockwise to display


# ----------------------------------------------------------------------------- media files
def exif_rotated_jpeg(path: Path) -> np.ndarray:
    """A colour JPEG stored sideways (40 x 60) with EXIF orientation 6; returns its stored pixels as decoded."""
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:12, :, 0] = 250  # a red band along the top of the stored pixels
    stored[20:, :30, 2] = 200
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(stored).save(path, quality=95, exif=exif)
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))  # the decoded JPEG, as stored (no EXIF turn)


def png_16_bit(path: Path) -> np.ndarray:
    """A 16-bit grey PNG of a ramp over the whole 16-bit range; returns its uint16 values."""
    values = (np.arange(48 * 48, dtype=np.float64).reshape(48, 48) / (48 * 48 - 1) * 65535).round().astype(np.uint16)
    Image.fromarray(values).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I;16")
    return values


def rgba_png(path: Path) -> np.ndarray:
    """An RGBA PNG: an opaque red square on a transparent (RGB 0, alpha 0) field and a half-transparent band."""
    pixels = np.zeros((40, 40, 4), np.uint8)
    pixels[10:30, 10:30] = (200, 30, 30, 255)
    pixels[35:, :] = (0, 0, 200, 128)
    Image.fromarray(pixels, "RGBA").save(path)
    return pixels


def voice(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def streaming_wav(path: Path, riff_size: int = 0xFFFFFFFF, data_size: int = 0xFFFFFFFF) -> np.ndarray:
    """A 16-bit WAV whose header holds streaming sizes (what a recorder or ffmpeg writing into a pipe leaves);
    returns the samples of the same WAV with a finished header."""
    sf.write(path, voice(0.5, 16_000), 16_000, subtype="PCM_16")
    expected, _ = sf.read(path, dtype="float32")
    data = bytearray(path.read_bytes())
    assert data[36:40] == b"data"
    data[4:8] = struct.pack("<I", riff_size)
    data[40:44] = struct.pack("<I", data_size)
    path.write_bytes(bytes(data))
    return expected


def stereo_8_bit_wav(path: Path) -> np.ndarray:
    """A stereo unsigned 8-bit WAV at 22.05 kHz; returns its samples [n, 2]."""
    tone = voice(0.5, 22_050)
    sf.write(path, np.stack([tone, 0.5 * tone], axis=1), 22_050, subtype="PCM_U8")
    samples, _ = sf.read(path, dtype="float32", always_2d=True)
    return samples


def manifest_entry(path: Path, modality: str, rows: list[tuple[str, str]]) -> SimpleNamespace:
    """A `data.extra` entry of a CSV manifest listing (file, label) rows, all in the test split."""
    path.write_text("path,label,split\n" + "".join(f"{name},{label},test\n" for name, label in rows))
    return SimpleNamespace(name=f"m_{modality}", modality=modality, manifest=str(path), root=None, label_map={},
                           drop_unmapped=False, val_fraction=0.0)


DATA_CONFIG = SimpleNamespace(skip_bad=False, split_seed=42)


def colour_predictor() -> Predictor:
    """A tiny built-in model that reads colour faces (so a colour difference reaches the model input) and speech."""
    config = EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1, image_size=32,
                              image_channels=3, image_colour="colour", image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return Predictor(EmoXFormer(config), Preprocessor(config), device="cpu", detect_faces=False)


def training_batch(records: list, modality: str, preprocessor: Preprocessor, collate) -> dict:
    """What a training or evaluation loader gives the model for these records (no augmentation)."""
    state = registry.modality(modality).setup(records, DATA_CONFIG, preprocessor, False)
    dataset = RecordDataset(records, 0, preprocessor, None, state)
    return collate([dataset[i] for i in range(len(dataset))])[modality]


# ----------------------------------------------------------------------------- training and prediction agree
def test_a_manifest_and_the_predictor_give_the_model_the_same_inputs_for_the_same_files(tmp_path):
    exif_rotated_jpeg(tmp_path / "phone.jpg")
    png_16_bit(tmp_path / "deep.png")
    rgba_png(tmp_path / "cutout.png")
    streaming_wav(tmp_path / "piped.wav")
    stereo_8_bit_wav(tmp_path / "old.wav")
    images = ["phone.jpg", "deep.png", "cutout.png"]
    clips = ["piped.wav", "old.wav"]
    predictor = colour_predictor()
    preprocessor = predictor.preprocessor

    faces = read_manifest(manifest_entry(tmp_path / "faces.csv", "vision", [(n, "happy") for n in images]), DATA_CONFIG)
    trained = training_batch(faces.test, "vision", preprocessor, predictor.processor.collate)["pixel_values"]
    predicted = predictor.processor.collate([predictor.prepare(image=tmp_path / n) for n in images])["vision"]["pixel_values"]
    assert trained.shape == (3, 3, 32, 32)
    assert torch.equal(trained, predicted)

    speech = read_manifest(manifest_entry(tmp_path / "speech.csv", "audio", [(n, "sad") for n in clips]), DATA_CONFIG)
    trained = training_batch(speech.test, "audio", preprocessor, predictor.processor.collate)
    predicted = predictor.processor.collate([predictor.prepare(audio=tmp_path / n) for n in clips])["audio"]
    assert trained["lengths"].tolist() == [8_000, 8_000]
    assert torch.equal(trained["lengths"], predicted["lengths"]) and torch.equal(trained["waveform"], predicted["waveform"])


# ----------------------------------------------------------------------------- item 3: 16-bit, float, alpha
def test_16_bit_png_keeps_its_values_in_training_and_prediction(tmp_path):
    values = png_16_bit(tmp_path / "deep.png")
    expected = np.rint(values / 257.0).astype(np.uint8)
    records = read_manifest(manifest_entry(tmp_path / "m.csv", "vision", [("deep.png", "sad")]), DATA_CONFIG)
    np.testing.assert_array_equal(records.test[0].pixels, expected)  # was 99.6 % white (values clipped at 255)
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png", 10_000), expected)


def test_uint16_and_float_arrays_and_float_images_are_scaled_by_their_range():
    ramp = np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48)
    expected = np.rint(ramp * 255).astype(np.uint8)
    np.testing.assert_array_equal(read_image((ramp * 65535).round().astype(np.uint16), 10_000), expected)  # was white
    np.testing.assert_array_equal(read_image(Image.fromarray(ramp), 10_000), expected)  # PIL mode F: was black
    np.testing.assert_array_equal(read_image(ramp, 10_000), expected)
    np.testing.assert_array_equal(read_image(ramp * 255, 10_000), expected)
    assert read_image(np.full((4, 4), 200, np.int64), 10_000).tolist() == [[200] * 4] * 4  # plain ints: 8-bit


def test_float_tiff_file_is_scaled_not_black(tmp_path):
    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    Image.fromarray(ramp).save(tmp_path / "float.tif")
    records = read_manifest(manifest_entry(tmp_path / "m.csv", "vision", [("float.tif", "sad")]), DATA_CONFIG)
    np.testing.assert_array_equal(records.test[0].pixels, np.rint(ramp * 255).astype(np.uint8))


def test_transparent_pixels_are_composited_over_the_background_not_black(tmp_path):
    pixels = rgba_png(tmp_path / "cutout.png")
    records = read_manifest(manifest_entry(tmp_path / "m.csv", "vision", [("cutout.png", "sad")]), DATA_CONFIG)
    decoded = records.test[0].pixels
    np.testing.assert_array_equal(decoded, read_image(tmp_path / "cutout.png", 10_000))
    assert decoded.shape == (40, 40, 3)
    assert (decoded[:5, :5] == ALPHA_BACKGROUND).all()  # fully transparent: the background (was black)
    assert (decoded[10:30, 10:30] == (200, 30, 30)).all()  # opaque: as stored
    half = 128 / 255
    expected_band = np.rint(np.array([0, 0, 200]) * half + ALPHA_BACKGROUND * (1 - half))
    assert (decoded[36] == expected_band).all()
    np.testing.assert_array_equal(read_image(pixels, 10_000), decoded)  # an RGBA array: the same


# ----------------------------------------------------------------------------- item 4: EXIF orientation
def test_manifest_and_fer_folder_faces_are_turned_upright_as_the_predictor_turns_them(tmp_path):
    stored = exif_rotated_jpeg(tmp_path / "phone.jpg")
    upright = np.rot90(stored, k=-1)
    records = read_manifest(manifest_entry(tmp_path / "m.csv", "vision", [("phone.jpg", "happy")]), DATA_CONFIG)
    np.testing.assert_array_equal(records.test[0].pixels, upright)  # was the stored, sideways pixels
    np.testing.assert_array_equal(read_image(tmp_path / "phone.jpg", 10_000), upright)
    for split in ("train", "test"):
        (tmp_path / "fer" / split / "happy").mkdir(parents=True)
        (tmp_path / "fer" / split / "happy" / "Training_1.jpg").write_bytes((tmp_path / "phone.jpg").read_bytes())
    fer = read_fer_folders(tmp_path / "fer", val_fraction=0.0)
    grey = np.asarray(Image.fromarray(np.ascontiguousarray(upright)).convert("L"))
    np.testing.assert_array_equal(fer.test[0].pixels, grey)


# ----------------------------------------------------------------------------- item 12: streaming WAV headers
@pytest.mark.parametrize("riff_size, data_size", [(0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 16_000), (0, 0), (0, 0xFFFFFFFF)],
                         ids=["ffmpeg pipe", "riff unknown", "zero sizes", "riff zero, data unknown"])
def test_streaming_header_wav_loads_alike_in_training_and_prediction(tmp_path, riff_size, data_size):
    actor = tmp_path / "ravdess" / "Actor_01"
    actor.mkdir(parents=True)
    path = actor / "03-01-03-01-01-01-01.wav"
    expected = streaming_wav(path, riff_size, data_size)
    records, skipped = read_ravdess_files(tmp_path / "ravdess")  # was: "truncated WAV file" for 0xFFFFFFFF
    assert len(records) == 1 and skipped == []
    wave = AudioStore(records, 16_000, progress=False)[records[0].id]
    np.testing.assert_array_equal(wave, expected)
    np.testing.assert_array_equal(read_audio(path, None, 16_000, 60.0), expected)
    manifest = read_manifest(manifest_entry(tmp_path / "m.csv", "audio", [(str(path), "happy")]), DATA_CONFIG)
    assert [r.path for r in manifest.test] == [path]


def test_a_truncated_wav_is_still_refused_with_or_without_a_streaming_riff_size(tmp_path):
    for name, riff_size in (("plain.wav", None), ("streaming.wav", 0xFFFFFFFF)):
        path = tmp_path / name
        sf.write(path, voice(0.5, 16_000), 16_000, subtype="PCM_16")
        data = bytearray(path.read_bytes()[:5_000])  # the data chunk still declares 16,000 bytes
        if riff_size is not None:
            data[4:8] = struct.pack("<I", riff_size)
        path.write_bytes(bytes(data))
        with pytest.raises(DataError, match="truncated WAV file") as info:
            load_audio(path)
        assert str(path) in str(info.value)
        with pytest.raises(InputError, match=f"{name}: truncated WAV file"):
            read_audio(path, None, 16_000, 60.0)


def test_stereo_8_bit_wav_is_mixed_down_and_resampled(tmp_path):
    samples = stereo_8_bit_wav(tmp_path / "old.wav")
    wave = load_audio(tmp_path / "old.wav")
    assert wave.dtype == np.float32 and wave.ndim == 1 and abs(len(wave) - 8_000) <= 1
    assert np.corrcoef(wave[100:-100], load_audio_from(samples.mean(axis=1), 22_050)[100:-100])[0, 1] > 0.999
    np.testing.assert_array_equal(read_audio(tmp_path / "old.wav", None, 16_000, 60.0), wave)


def load_audio_from(mono: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(mono, rate, 16_000, quality="HQ")


# ----------------------------------------------------------------------------- item 14: two-channel arrays
def test_a_grey_and_alpha_array_is_prepared_as_its_composited_grey_image():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    alpha = np.full((40, 40), 255, np.uint8)
    alpha[:, :10] = 0  # a transparent strip: the background shows
    composited = grey.copy()
    composited[:, :10] = ALPHA_BACKGROUND
    two_channels = np.stack([grey, alpha], axis=2)
    np.testing.assert_array_equal(read_image(two_channels, 10_000), composited)
    predictor = colour_predictor()
    batch = predictor.processor(images=[two_channels, composited])  # was a crash in the image batching
    assert batch["vision"]["pixel_values"].shape == (2, 3, 32, 32)
    assert torch.equal(batch["vision"]["pixel_values"][0], batch["vision"]["pixel_values"][1])
    prediction = predictor.predict(image=two_channels)
    assert prediction.probabilities == predictor.predict(image=composited).probabilities
    la = Image.fromarray(two_channels, "LA")
    np.testing.assert_array_equal(read_image(la, 10_000), composited)


@pytest.mark.parametrize("array, message", [
    (np.zeros((8, 8, 5), np.uint8), "expected an image array"),
    (np.zeros((8, 8, 0), np.uint8), "expected an image array"),
    (np.full((8, 8), -2.0, np.float32), "float image values span -2..-2"),
    (np.full((8, 8), np.nan, np.float32), "NaN"),
    (np.full((8, 8), 70_000, np.int32), "integer image values span 70000..70000"),
])
def test_unusable_image_arrays_are_one_clear_input_error(array, message):
    with pytest.raises(InputError, match=message) as info:
        colour_predictor().predict(image=array)
    assert len(str(info.value).splitlines()) == 1 and str(info.value).startswith("image array: ")


def test_an_unreadable_manifest_image_names_the_manifest_row_and_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"m.csv, row 2: unreadable image \(UnidentifiedImageError\)") as info:
        read_manifest(manifest_entry(tmp_path / "m.csv", "vision", [("broken.png", "sad")]), DATA_CONFIG)
    assert str(tmp_path / "broken.png") in str(info.value)


def test_grey_output_uses_pils_weights():
    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(rgb, grey=True), np.asarray(Image.fromarray(rgb).convert("L")))
