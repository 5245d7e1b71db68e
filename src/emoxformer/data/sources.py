"""Where each dataset lives (a data root laid out as in the reference code, or per-dataset paths) and loading it."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from ..labels import DATASET_NAMES
from ..model.config import MODALITIES
from .fer2013 import read_fer2013
from .meld import read_meld
from .ravdess import emobox_fold_actors, read_ravdess
from .records import SplitRecords

DATASET_MODALITY = {"meld": "text", "ravdess": "audio", "fer2013": "vision"}


def dataset_modalities(datasets: list[str]) -> list[str]:
    """The modalities that training on `datasets` uses, in the order text, audio, vision."""
    unknown = sorted(set(datasets) - set(DATASET_MODALITY))
    if unknown or not datasets:
        raise ConfigError(f"datasets must be a non-empty subset of {', '.join(DATASET_NAMES)}, got {list(datasets)}")
    used = {DATASET_MODALITY[name] for name in datasets}
    return [m for m in MODALITIES if m in used]


def dataset_path(data_config, name: str) -> Path:
    """The per-dataset override if set, else ROOT/<name>."""
    override = getattr(data_config, name)
    if override:
        return Path(override)
    if not data_config.root:
        raise DataError(f"<{name}>", "no data root and no path for this dataset; pass --data ROOT")
    return Path(data_config.root) / name


def ravdess_actors(data_config) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(validation, test) actors: EmoBox fold `data.ravdess_fold` when set, else `data.ravdess_val_actors` and
    `data.ravdess_test_actors`."""
    if data_config.ravdess_fold is not None:
        return emobox_fold_actors(data_config.ravdess_fold)
    return tuple(data_config.ravdess_val_actors), tuple(data_config.ravdess_test_actors)


def load_dataset(data_config, name: str) -> SplitRecords:
    """Read one dataset with the splits and bad-data policy of `data_config`."""
    path = dataset_path(data_config, name)
    if name == "meld":
        return read_meld(path, skip_bad=data_config.skip_bad)
    if name == "ravdess":
        val_actors, test_actors = ravdess_actors(data_config)
        return read_ravdess(
            path, split=data_config.ravdess_split, val_actors=val_actors,
            test_actors=test_actors, seed=data_config.split_seed,
            include_song=data_config.ravdess_include_song, skip_bad=data_config.skip_bad,
        )
    if name == "fer2013":
        return read_fer2013(path, val_fraction=data_config.fer_val_fraction, seed=data_config.split_seed, skip_bad=data_config.skip_bad)
    raise ConfigError(f"unknown dataset {name!r}: choose from {', '.join(DATASET_NAMES)}")
