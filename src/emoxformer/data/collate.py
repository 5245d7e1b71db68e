"""Collate prepared samples into a model batch: full-batch tensors per modality plus presence masks.

A prepared sample is a dict with `id`, `label`, `dataset` (index into DATASET_NAMES, -1 for none) and
any of `text` (token ids), `audio` (a prepared 16 kHz waveform) and `vision` (a [C, H, W] tensor), or, in place of
a modality's input, `encoder_outputs = {modality: [tokens, width] array}` (the stage-1 feature cache), collated into
`batch["encoder_outputs"]` for the model's `encoder_outputs=` argument.
Rows of samples that lack a modality hold zeros and are never read by the model.
"""
from __future__ import annotations

import numpy as np
import torch

from ..model.config import MODALITIES


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
        if rows["text"]:
            length = max(len(samples[i]["text"]) for i in rows["text"])
            ids = torch.full((size, length), self.text_pad_id, dtype=torch.long)
            mask = torch.zeros((size, length), dtype=torch.long)
            for i in rows["text"]:
                seq = samples[i]["text"]
                ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
                mask[i, : len(seq)] = 1
            batch["text"] = {"input_ids": ids, "attention_mask": mask}
        if rows["audio"]:
            waveform = torch.zeros((size, max(len(samples[i]["audio"]) for i in rows["audio"])), dtype=torch.float32)
            lengths = torch.zeros(size, dtype=torch.long)
            for i in rows["audio"]:
                wave = samples[i]["audio"]
                waveform[i, : len(wave)] = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
                lengths[i] = len(wave)
            batch["audio"] = {"waveform": waveform, "lengths": lengths}
        if rows["vision"]:
            first = samples[rows["vision"][0]]["vision"]
            pixels = torch.zeros((size,) + tuple(first.shape), dtype=first.dtype)
            for i in rows["vision"]:
                pixels[i] = samples[i]["vision"]
            batch["vision"] = {"pixel_values": pixels}
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
