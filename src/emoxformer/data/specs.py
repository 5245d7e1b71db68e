"""What describes a modality and a dataset in the registry (data/registry.py)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    image_colour: str = "colour"  # "grey": its images are grey, so a model trained on it sees colour photos as grey
    # (data config) -> where the dataset is, for one that does not live in ROOT/<name> (a manifest corpus)
    locate: Callable[[Any], Path] | None = None
    # The `data.extra` entry a manifest corpus was registered from (None for other datasets): such a dataset belongs
    # to the configs that declare it, each with its own entry (registry.dataset(name, data_config)).
    entry: Any = None
    # A multimodal corpus (modality "multi"): the model modalities its rows hold; other datasets: (modality,).
    modalities: tuple[str, ...] = ()

    @property
    def input_modalities(self) -> tuple[str, ...]:
        return self.modalities or (self.modality,)
