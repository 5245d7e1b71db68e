"""Serving encoder outputs computed earlier (the stage-1 feature cache) in place of a dataset's inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset


class FeatureTable:
    """Encoder outputs of one dataset split: `views` per distinct record, each a [tokens, width] float16 array.

    `rows` maps a dataset index to its record's row (replicated records share one); None: index = row."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, views: int, rows: np.ndarray | None = None):
        self.tokens, self.offsets, self.views, self.rows = tokens, offsets, views, rows

    def get(self, index: int, view: int = 0) -> np.ndarray:
        row = index if self.rows is None else int(self.rows[index])
        slot = row * self.views + view
        return self.tokens[self.offsets[slot]: self.offsets[slot + 1]]

    @classmethod
    def load(cls, folder: Path, rows: np.ndarray | None = None) -> "FeatureTable":
        meta = json.loads((folder / "meta.json").read_text())
        return cls(np.load(folder / "tokens.npy", mmap_mode="r"), np.load(folder / "offsets.npy"), meta["views"], rows)


class EncoderOutputDataset(Dataset):
    """A RecordDataset whose samples carry `encoder_outputs = {modality: tokens}` from a FeatureTable instead of
    the modality's input. Indexed like the dataset it wraps, `(index, draw seed)` included: the seed picks one of
    the table's views, as it would pick an augmentation."""

    def __init__(self, base, table: FeatureTable, modality: str):
        self.base, self.table, self.modality = base, table, modality

    # What the samplers and the datamodule read from a dataset split.
    records = property(lambda self: self.base.records)
    dataset_index = property(lambda self: self.base.dataset_index)
    state = property(lambda self: self.base.state)

    def lengths(self) -> list[int]:
        return self.base.lengths()

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key) -> dict:
        index, draw_seed = key if isinstance(key, tuple) else (key, None)
        record = self.base.records[index]
        view = 0 if draw_seed is None or self.table.views == 1 else draw_seed % self.table.views
        return {"id": record.id, "label": record.label, "dataset": self.base.dataset_index,
                "encoder_outputs": {self.modality: self.table.get(index, view)}}
