"""Where each dataset lives (a data root laid out as in the reference code, or per-dataset paths) and loading it
through its registry entry."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from ..model.config import MODALITIES
from . import registry
from .records import SplitRecords


def run_datasets(datasets: list[str]) -> list[str]:
    """`datasets` in registry order; ConfigError unless a non-empty subset of the registered datasets."""
    known = registry.dataset_names()
    unknown = sorted(set(datasets) - set(known))
    if unknown or not datasets:
        raise ConfigError(f"datasets must be a non-empty subset of {', '.join(known)}, got {list(datasets)}")
    return [name for name in known if name in datasets]


def dataset_modalities(datasets: list[str]) -> list[str]:
    """The modalities that training on `datasets` uses, in the order text, audio, vision."""
    used = {m for name in run_datasets(datasets) for m in registry.dataset_modalities(name)}
    return [m for m in MODALITIES if m in used]


def dataset_path(data_config, name: str) -> Path:
    """The per-dataset override (`data.<name>`) if set, else where the dataset's registry entry says it is (a
    manifest), else ROOT/<name>."""
    override = getattr(data_config, name, None)
    if override:
        return Path(override)
    locate = registry.dataset(name, data_config).locate
    if locate is not None:
        return locate(data_config)
    if not data_config.root:
        raise DataError(f"<{name}>", "no data root and no path for this dataset (give the data root: --data ROOT, or ROOT after `data summary`)")
    return Path(data_config.root) / name


def load_dataset(data_config, name: str) -> SplitRecords:
    """Read one dataset with the splits and bad-data policy of `data_config`."""
    return registry.dataset(name, data_config).read(dataset_path(data_config, name), data_config)
