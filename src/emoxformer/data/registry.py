"""The registry of modalities and datasets: one description each, looked up by name.

A **modality** (`Modality` in `data/specs.py`, one module per modality in `data/modalities/`) says how a record of
its type becomes a prepared sample (with training-only augmentation), how prepared samples are collated into the
model's inputs, what per-dataset state preparation needs (decoded audio, dialogue context), and how long a sample
is (for bucketing).
The model side of a modality, its encoder, is built by `model/encoders.py` from the model's config alone, since a
saved model is loaded without any data code.

A **dataset** (`DatasetSpec`) names its modality and a reader from a folder to `SplitRecords`. The built-in three are
registered below; `register_dataset` adds another (see docs/adding-a-dataset.md).
"""
from __future__ import annotations

from ..errors import ConfigError
from ..model.config import MODALITIES
from .fer2013 import read_fer2013_for
from .meld import read_meld_for
from .modalities.audio import AUDIO
from .modalities.text import TEXT
from .modalities.vision import VISION
from .ravdess import read_ravdess_for
from .specs import DatasetSpec, Modality

_MODALITIES: dict[str, Modality] = {}
_DATASETS: dict[str, DatasetSpec] = {}


def register_modality(modality: Modality) -> Modality:
    if modality.name not in MODALITIES:
        raise ConfigError(f"modality {modality.name!r}: the model knows {', '.join(MODALITIES)}")
    _MODALITIES[modality.name] = modality
    return modality


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset (or replace one of the same name)."""
    if any(m not in _MODALITIES for m in spec.input_modalities):
        raise ConfigError(f"dataset {spec.name!r}: unknown modality {spec.modality!r} (known: {', '.join(_MODALITIES)})")
    _DATASETS[spec.name] = spec
    return spec


def register_manifest_dataset(entry) -> DatasetSpec:
    """Register `entry` (a `data.extra` item) as a dataset, for look-ups by name alone (the config validated last
    wins; `dataset(name, data_config)` gives each config its own entry)."""
    return register_dataset(_manifest_spec(entry))


def unregister_dataset(name: str) -> None:
    _DATASETS.pop(name, None)


def modality(name: str) -> Modality:
    return _MODALITIES[name]


def modality_of_record(record) -> Modality:
    for entry in _MODALITIES.values():
        if isinstance(record, entry.record_type):
            return entry
    raise TypeError(f"no modality reads records of type {type(record).__name__}")


def dataset(name: str, data_config=None) -> DatasetSpec:
    """The dataset `name`; with `data_config`, as that config sees it: a manifest corpus its `data.extra` declares
    is that entry's (another config may have registered the name since, with another manifest or modality), and one
    it does not declare is refused rather than read from the entry some other config registered."""
    entry = _declared_entry(name, data_config)
    if entry is not None:
        return _manifest_spec(entry)
    try:
        spec = _DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}: choose from {', '.join(_DATASETS)}") from None
    if data_config is not None and spec.entry is not None:
        raise ConfigError(f"dataset {name!r} is a manifest corpus that this config's data.extra does not declare "
                          f"(another config registered it): add it to data.extra")
    return spec


def _manifest_spec(entry) -> DatasetSpec:
    """The dataset of a `data.extra` entry: rows of one modality (data/manifest.py) or of several (data/multimodal.py)."""
    if entry.modality == "multi":
        from .multimodal import multimodal_spec

        return multimodal_spec(entry)
    from .manifest import manifest_spec

    return manifest_spec(entry)


def _declared_entry(name: str, data_config):
    return next((e for e in getattr(data_config, "extra", None) or () if e.name == name), None)


def known_to(data_config) -> tuple[str, ...]:
    """The datasets `data_config` can name: every registered one but the manifest corpora of other configs."""
    return tuple(name for name, spec in _DATASETS.items()
                 if spec.entry is None or _declared_entry(name, data_config) is not None)


def dataset_names() -> tuple[str, ...]:
    """Every registered dataset, the built-in three first."""
    return tuple(_DATASETS)


def dataset_modality(name: str, data_config=None) -> str:
    """The dataset's modality: text, audio, vision, or multi for a corpus whose rows hold several."""
    return dataset(name, data_config).modality


def dataset_modalities(name: str, data_config=None) -> tuple[str, ...]:
    """The model modalities the dataset's samples hold (one, or a multimodal corpus's several)."""
    return dataset(name, data_config).input_modalities


for _modality in (TEXT, AUDIO, VISION):
    register_modality(_modality)
for _spec in (
    DatasetSpec("meld", "text", read_meld_for, "MELD utterances (the *_sent_emo.csv files)"),
    DatasetSpec("ravdess", "audio", read_ravdess_for, "RAVDESS speech (Actor_XX/*.wav)",
                replicate=lambda data_config: data_config.ravdess_replicate),
    DatasetSpec("fer2013", "vision", read_fer2013_for, "FER2013 faces (fer2013.csv or image folders)", image_colour="grey"),
):
    register_dataset(_spec)
