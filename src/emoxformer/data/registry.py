"""The registry of modalities and datasets: one description each, looked up by name.

A **modality** (`Modality`, one module per modality in `data/modalities/`) says how a record of its type becomes a
prepared sample (with training-only augmentation), how prepared samples are collated into the model's inputs, what
per-dataset state preparation needs (decoded audio, dialogue context), and how long a sample is (for bucketing).
The model side of a modality, its encoder, is built by `model/encoders.py` from the model's config alone, since a
saved model is loaded without any data code.

A **dataset** (`DatasetSpec`) names its modality and a reader from a folder to `SplitRecords`. The built-in three are
registered below; `register_dataset` adds another (see the README's developer section).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model.config import MODALITIES
from .records import SplitRecords


@dataclass(frozen=True)
class Modality:
    name: str
    record_type: type
    # (records of all splits, data config, preprocessor, progress) -> what `prepare` needs besides the record
    setup: Callable[[list, Any, Any, bool], Any]
    # (record, state, preprocessor, augment config or None, rng or None) -> the prepared sample's value
    prepare: Callable[[Any, Any, Any, Any, Any], Any]
    # (prepared values, their rows in the batch, batch size, collator) -> the model's inputs for this modality
    collate: Callable[[list, list[int], int, Any], dict]
    # (record, state) -> input length (characters, samples; 0 when lengths do not vary)
    length: Callable[[Any, Any], int]
    # (record) -> bytes that change whenever the record's content does (feature-cache keys)
    content: Callable[[Any], bytes]
    # (state) -> a string that changes whenever the state changes what `prepare` returns ("" when it cannot)
    state_digest: Callable[[Any], str] = lambda state: ""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    modality: str
    read: Callable[[Path, Any], SplitRecords]  # (folder, data config) -> records by split
    description: str = ""
    # (data config) -> how many times an unpaired epoch repeats the training split (a small set among large ones)
    replicate: Callable[[Any], int] = lambda data_config: 1


_MODALITIES: dict[str, Modality] = {}
_DATASETS: dict[str, DatasetSpec] = {}


def register_modality(modality: Modality) -> Modality:
    if modality.name not in MODALITIES:
        raise ConfigError(f"modality {modality.name!r}: the model knows {', '.join(MODALITIES)}")
    _MODALITIES[modality.name] = modality
    return modality


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset (or replace one of the same name)."""
    _load_builtins()
    if spec.modality not in _MODALITIES:
        raise ConfigError(f"dataset {spec.name!r}: unknown modality {spec.modality!r} (known: {', '.join(_MODALITIES)})")
    _DATASETS[spec.name] = spec
    return spec


def unregister_dataset(name: str) -> None:
    _DATASETS.pop(name, None)


def modality(name: str) -> Modality:
    _load_builtins()
    return _MODALITIES[name]


def modality_of_record(record) -> Modality:
    _load_builtins()
    for entry in _MODALITIES.values():
        if isinstance(record, entry.record_type):
            return entry
    raise TypeError(f"no modality reads records of type {type(record).__name__}")


def dataset(name: str) -> DatasetSpec:
    _load_builtins()
    try:
        return _DATASETS[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}: choose from {', '.join(_DATASETS)}") from None


def dataset_names() -> tuple[str, ...]:
    """Every registered dataset, the built-in three first."""
    _load_builtins()
    return tuple(_DATASETS)


def dataset_modality(name: str) -> str:
    return dataset(name).modality


_builtins_loaded = False


def _load_builtins() -> None:
    """Register the three modalities and the three datasets, once, on first use (not at import: the modules that
    describe them import this one)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    from .fer2013 import read_fer2013_for
    from .meld import read_meld_for
    from .modalities import audio, text, vision  # noqa: F401  (each registers itself)
    from .ravdess import read_ravdess_for

    for spec in (
        DatasetSpec("meld", "text", read_meld_for, "MELD utterances (the *_sent_emo.csv files)"),
        DatasetSpec("ravdess", "audio", read_ravdess_for, "RAVDESS speech (Actor_XX/*.wav)",
                    replicate=lambda data_config: data_config.ravdess_replicate),
        DatasetSpec("fer2013", "vision", read_fer2013_for, "FER2013 faces (fer2013.csv or image folders)"),
    ):
        _DATASETS.setdefault(spec.name, spec)
