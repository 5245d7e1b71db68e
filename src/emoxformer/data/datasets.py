"""Torch datasets that turn records into prepared samples for the collator."""
from __future__ import annotations

import bisect

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from ..model.config import MODALITIES
from ..model.preprocessing import Preprocessor
from . import registry


class RecordDataset(Dataset):
    """Prepared samples of one dataset split, all of one modality; `augment` (an AugmentConfig) only for training
    splits; `state`: what the modality's preparation needs besides a record (its `setup`, e.g. the AudioStore).

    An index may come with a draw seed, `(index, seed)`, as the training sampler gives them: the augmentation of
    a draw is then a function of that seed alone, so runs repeat exactly across worker counts, ranks and resumes.
    """

    def __init__(self, records: list, dataset_index: int, preprocessor: Preprocessor, augment=None, state=None):
        self.records = records
        self.modality = registry.modality_of_record(records[0]) if records else None
        self.state = state
        self.dataset_index = dataset_index
        self.preprocessor = preprocessor
        self.augment = augment if augment is not None and augment.enabled else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key) -> dict:
        index, draw_seed = key if isinstance(key, tuple) else (key, None)
        record = self.records[index]
        augment = self.augment if draw_seed is not None else None
        rng = np.random.default_rng(draw_seed) if augment else None
        value = self.modality.prepare(record, self.state, self.preprocessor, augment, rng)
        return {"id": record.id, "label": record.label, "dataset": self.dataset_index, self.modality.name: value}

    def lengths(self) -> list[int]:
        """Input length of every sample (for length bucketing)."""
        return [self.modality.length(record, self.state) for record in self.records]


class TrainingSet(ConcatDataset):
    """The training splits of several datasets, indexed by `(global index, draw seed)` pairs, or by
    `("pair", ((index, seed), ...), example seed)` for a label-matched multimodal example."""

    def __init__(self, datasets, modality_dropout: float = 0.0):
        super().__init__(datasets)
        self.modality_dropout = modality_dropout

    def __getitem__(self, key) -> dict:
        if isinstance(key, tuple) and key[0] == "pair":
            return self.paired_example(key[1], key[2])
        index, draw_seed = key if isinstance(key, tuple) else (key, None)
        part = bisect.bisect_right(self.cumulative_sizes, index)
        local = index - (self.cumulative_sizes[part - 1] if part else 0)
        return self.datasets[part][(local, draw_seed)]

    def paired_example(self, parts, example_seed: int) -> dict:
        samples = [self[(index, seed)] for index, seed in parts]
        labels = {s["label"] for s in samples}
        if len(labels) != 1:
            raise ValueError(f"paired samples disagree on the label: {sorted(labels)}")
        return merge_samples(samples, self.modality_dropout, np.random.default_rng(example_seed))


def merge_samples(samples: list[dict], modality_dropout: float = 0.0, rng: np.random.Generator | None = None) -> dict:
    """One multimodal example from single-modality samples of one label; `dataset` = -1 (paired)."""
    merged = {"id": "+".join(s["id"] for s in samples), "label": samples[0]["label"], "dataset": -1}
    for sample in samples:
        for modality in [m for m in MODALITIES if m in sample or m in sample.get("encoder_outputs", ())]:
            if modality in merged or modality in merged.get("encoder_outputs", ()):
                # One example holds one input per modality: a second would silently replace the first.
                raise ValueError(f"cannot merge two {modality} samples into one example ({merged['id']})")
            if modality in sample:
                merged[modality] = sample[modality]
            else:
                merged.setdefault("encoder_outputs", {})[modality] = sample["encoder_outputs"][modality]
    present = [m for m in MODALITIES if m in merged or m in merged.get("encoder_outputs", ())]
    if modality_dropout > 0 and len(present) > 1:
        dropped = [m for m in present if rng.random() < modality_dropout]
        if len(dropped) == len(present):  # never all: keep one at random
            dropped.remove(dropped[int(rng.integers(len(dropped)))])
        for modality in dropped:
            merged.pop(modality, None)
            merged.get("encoder_outputs", {}).pop(modality, None)
    return merged
