"""Audio augmentation must reach the model: its input is normalised to unit variance, so a gain could not."""
from pathlib import Path

import numpy as np
import pytest

from emoxformer.config import AugmentConfig, load_config
from emoxformer.data.datasets import RecordDataset
from emoxformer.data.records import AudioRecord
from emoxformer.errors import ConfigError
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.preprocessing import Preprocessor


def _audio_dataset(augment: AugmentConfig) -> RecordDataset:
    time = np.arange(32_000) / 16_000
    wave = (0.3 * np.sin(2 * np.pi * 220 * time) * np.sin(2 * np.pi * 3 * time) + 0.05).astype(np.float32)
    record = AudioRecord(id="clip", label=0, path=Path("clip.wav"), modality=3, vocal_channel=1, emotion_code=1,
                         intensity=1, statement=1, repetition=1, actor=1)
    return RecordDataset([record], 1, Preprocessor(EmoXFormerConfig()), augment, state={"clip": wave})


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.var(clean) / np.var(noisy - clean)))


def test_noise_augmentation_changes_the_model_input_at_the_drawn_snr():
    dataset = _audio_dataset(AugmentConfig(max_shift=0, noise_snr_db=[20.0, 20.0]))
    plain = dataset[0]["audio"]  # no draw seed: not augmented
    augmented = dataset[(0, 7)]["audio"]
    assert np.var(augmented - plain) > 1e-3  # the reference code's gain changed it by at most 3e-6
    assert 19.0 < _snr_db(plain, augmented) < 21.0  # normalisation kept the noise at its SNR
    assert np.array_equal(augmented, dataset[(0, 7)]["audio"])  # a function of the draw seed
    assert not np.array_equal(augmented, dataset[(0, 8)]["audio"])


def test_noise_snr_is_drawn_from_the_range():
    dataset = _audio_dataset(AugmentConfig(max_shift=0, noise_snr_db=[10.0, 30.0]))
    plain = dataset[0]["audio"]
    snrs = [_snr_db(plain, dataset[(0, seed)]["audio"]) for seed in range(40)]
    assert 9.5 < min(snrs) < 15 and 25 < max(snrs) < 30.5


def test_without_noise_the_audio_augmentation_is_only_the_time_shift():
    dataset = _audio_dataset(AugmentConfig(max_shift=0))
    assert np.array_equal(dataset[(0, 7)]["audio"], dataset[0]["audio"])


def test_noise_snr_config_and_the_removed_gain():
    config = load_config("quickstart", ["data.augment.noise_snr_db=15,30"])
    assert config.data.augment.noise_snr_db == [15.0, 30.0]
    assert load_config("paper").data.augment.noise_snr_db is None
    with pytest.raises(ConfigError, match="noise_snr_db must be"):
        load_config("quickstart", ["data.augment.noise_snr_db=30,15"])
    with pytest.raises(ConfigError, match="noise_snr_db must be"):
        load_config("quickstart", ["data.augment.noise_snr_db=[20]"])
    with pytest.raises(ConfigError, match="unknown config key.*data.augment.gain_min"):
        load_config("quickstart", ["data.augment.gain_min=0.9"])
