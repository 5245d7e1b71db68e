"""Torch datasets that turn records into prepared samples for the collator."""
from __future__ import annotations

import bisect

import numpy as np
from torch.utils.data import ConcatDataset, Dataset
from tqdm.auto import tqdm

from ..model.config import MODALITIES
from ..model.preprocessing import Preprocessor
from .audio_io import load_audio
from .cache import fingerprint, load_arrays, save_arrays
from .augment import augment_image, augment_waveform, word_dropout
from .records import AudioRecord, ImageRecord, TextRecord


class AudioStore:
    """Every clip decoded once, mixed to mono and resampled to 16 kHz, kept in memory by record id."""

    def __init__(self, records: list[AudioRecord], sample_rate: int, progress: bool = True):
        unique = sorted({r.id: r for r in records}.values(), key=lambda r: r.id)
        key = fingerprint([r.path for r in unique], rate=sample_rate, version=1)
        cached = load_arrays("ravdess", key)
        if cached is None:
            waves = [load_audio(r.path, sample_rate) for r in
                     tqdm(unique, desc="decoding RAVDESS audio", disable=not progress or len(unique) < 50, leave=False)]
            lengths = np.array([len(w) for w in waves], dtype=np.int64)
            cached = {"samples": np.concatenate(waves) if waves else np.zeros(0, np.float32), "lengths": lengths}
            save_arrays("ravdess", key, **cached)
        ends = np.cumsum(cached["lengths"])
        self.waves: dict[str, np.ndarray] = {
            r.id: cached["samples"][end - length: end] for r, end, length in zip(unique, ends, cached["lengths"])
        }

    def __getitem__(self, record_id: str) -> np.ndarray:
        return self.waves[record_id]


class RecordDataset(Dataset):
    """Prepared samples of one dataset split; `augment` (an AugmentConfig) only for training splits.

    An index may come with a draw seed, `(index, seed)`, as the training sampler gives them: the augmentation of
    a draw is then a function of that seed alone, so runs repeat exactly across worker counts, ranks and resumes.
    """

    def __init__(self, records: list, dataset_index: int, preprocessor: Preprocessor, augment=None,
                 audio_store: AudioStore | None = None, texts: dict[str, str] | None = None):
        self.records = records
        self.texts = texts  # per record id, e.g. with dialogue context; default: the record's own text
        self.dataset_index = dataset_index
        self.preprocessor = preprocessor
        self.augment = augment if augment is not None and augment.enabled else None
        self.audio_store = audio_store

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key) -> dict:
        index, draw_seed = key if isinstance(key, tuple) else (key, None)
        record = self.records[index]
        sample = {"id": record.id, "label": record.label, "dataset": self.dataset_index}
        pre = self.preprocessor
        aug = self.augment if draw_seed is not None else None
        rng = np.random.default_rng(draw_seed) if aug else None
        if isinstance(record, TextRecord):
            text = self.texts[record.id] if self.texts is not None else record.text
            text = word_dropout(text, aug.word_dropout, rng) if aug else text
            sample["text"] = pre.tokenize(text, keep_end=self.texts is not None)
        elif isinstance(record, AudioRecord):
            wave = self.audio_store[record.id]
            if aug:
                wave = augment_waveform(wave, aug.max_shift, aug.noise_snr_db, rng)
            sample["audio"] = pre.prepare_audio(wave)
        elif isinstance(record, ImageRecord):
            pixels = record.pixels
            if aug:
                pixels = augment_image(pixels, aug.crop_scale_min, aug.hflip, aug.brightness, aug.contrast, rng)
            sample["vision"] = pre.prepare_image(pixels)
        else:
            raise TypeError(f"unknown record type {type(record).__name__}")
        return sample


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
        for modality in MODALITIES:
            if modality in sample:
                merged[modality] = sample[modality]
        if "encoder_outputs" in sample:
            merged.setdefault("encoder_outputs", {}).update(sample["encoder_outputs"])
    present = [m for m in MODALITIES if m in merged or m in merged.get("encoder_outputs", ())]
    if modality_dropout > 0 and len(present) > 1:
        dropped = [m for m in present if rng.random() < modality_dropout]
        if len(dropped) == len(present):  # never all: keep one at random
            dropped.remove(dropped[int(rng.integers(len(dropped)))])
        for modality in dropped:
            merged.pop(modality, None)
            merged.get("encoder_outputs", {}).pop(modality, None)
    return merged


MODALITY_OF = {TextRecord: "text", AudioRecord: "audio", ImageRecord: "vision"}
