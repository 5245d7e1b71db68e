"""Collate prepared samples into a model batch: full-batch tensors per modality plus presence masks.

A prepared sample is a dict with `id`, `label`, `dataset` (index into the run's datasets, -1 for none) and
any of `text` (token ids), `audio` (a prepared 16 kHz waveform) and `vision` (a prepared [C, H, W] tensor, or a
PendingImage prepared with the rest of its batch), each collated by its modality (data/modalities/), or, in place of
a modality's input, `encoder_outputs = {modality: [tokens, width] array}` (the stage-1 feature cache), collated into
`batch["encoder_outputs"]` for the model's `encoder_outputs=` argument.
Rows of samples that lack a modality hold zeros and are never read by the model.
"""
from __future__ import annotations

import numpy as np
import torch

from ..model.config import MODALITIES
from . import registry


class Collator:
    def __init__(self, text_pad_id: int = 0):
        self.text_pad_id = text_pad_id

    def __call__(self, samples: list[dict]) -> dict:
        size = len(samples)
        present = torch.tensor([[s.get(m) is not None or m in s.get("encoder_outputs", ()) for m in MODALITIES]
                                for s in samples], dtype=torch.bool)
        batch = {
            "present": present,
            "labels": torch.tensor([s.get("label", -1) for s in samples], dtype=torch.long),
            "dataset": torch.tensor([s.get("dataset", -1) for s in samples], dtype=torch.long),
            "ids": [s.get("id", "") for s in samples],
        }
        rows = {m: [i for i, s in enumerate(samples) if s.get(m) is not None] for m in MODALITIES}
        encoded = {m: [i for i, s in enumerate(samples) if m in s.get("encoder_outputs", ())] for m in MODALITIES}
        if any(encoded.values()):
            batch["encoder_outputs"] = {m: self.pad_features([samples[i]["encoder_outputs"][m] for i in encoded[m]], encoded[m], size)
                                        for m in MODALITIES if encoded[m]}
        for name in MODALITIES:
            if rows[name]:
                batch[name] = registry.modality(name).collate([samples[i][name] for i in rows[name]], rows[name], size, self)
        return batch

    @staticmethod
    def pad_features(features: list, rows: list[int], size: int) -> dict:
        """Encoder outputs ([tokens, width] each, e.g. from the feature cache) -> padded `hidden` and `valid` for the
        whole batch."""
        lengths = torch.tensor([len(f) for f in features])
        padded = torch.zeros((size, int(lengths.max()), features[0].shape[1]), dtype=torch.float32)
        valid = torch.zeros((size, int(lengths.max())), dtype=torch.bool)
        valid[rows] = torch.arange(valid.shape[1])[None] < lengths[:, None]
        # `rows` ascend, so the valid positions in row-major order are the features' tokens in order: one float16
        # concatenation and one float32 copy instead of a conversion per row.
        padded[valid] = torch.from_numpy(np.concatenate(features)).float()
        return {"hidden": padded, "valid": valid}
