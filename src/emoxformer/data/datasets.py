"""Torch datasets that turn records into prepared samples for the collator."""
from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, get_worker_info
from tqdm.auto import tqdm

from ..model.preprocessing import Preprocessor
from .audio_io import load_audio
from .augment import augment_image, augment_waveform, word_dropout
from .records import AudioRecord, ImageRecord, TextRecord


class AudioStore:
    """Every clip decoded once, mixed to mono and resampled to 16 kHz, kept in memory by record id."""

    def __init__(self, records: list[AudioRecord], sample_rate: int, progress: bool = True):
        self.waves: dict[str, np.ndarray] = {}
        unique = {r.id: r for r in records}
        for record in tqdm(unique.values(), desc="decoding RAVDESS audio", disable=not progress or len(unique) < 50, leave=False):
            self.waves[record.id] = load_audio(record.path, sample_rate)

    def __getitem__(self, record_id: str) -> np.ndarray:
        return self.waves[record_id]


class RecordDataset(Dataset):
    """Prepared samples of one dataset split; `augment` (an AugmentConfig) only for training splits."""

    def __init__(self, records: list, dataset_index: int, preprocessor: Preprocessor, augment=None,
                 audio_store: AudioStore | None = None, seed: int = 0):
        self.records = records
        self.dataset_index = dataset_index
        self.preprocessor = preprocessor
        self.augment = augment if augment is not None and augment.enabled else None
        self.audio_store = audio_store
        self.seed = seed
        self._rng = None

    def __len__(self) -> int:
        return len(self.records)

    def _random(self) -> np.random.Generator:
        # One stream per process: the main process keeps its stream across epochs; a worker's seed comes from
        # the DataLoader (new each epoch, fixed by the run's seed), so CPU runs repeat exactly.
        if self._rng is None:
            info = get_worker_info()
            self._rng = np.random.default_rng([self.seed, self.dataset_index, info.seed if info else 0])
        return self._rng

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        sample = {"id": record.id, "label": record.label, "dataset": self.dataset_index}
        pre, aug = self.preprocessor, self.augment
        if isinstance(record, TextRecord):
            text = word_dropout(record.text, aug.word_dropout, self._random()) if aug else record.text
            sample["text"] = pre.tokenize(text)
        elif isinstance(record, AudioRecord):
            wave = self.audio_store[record.id]
            if aug:
                wave = augment_waveform(wave, (aug.gain_min, aug.gain_max), aug.max_shift, self._random())
            sample["audio"] = pre.prepare_audio(wave)
        elif isinstance(record, ImageRecord):
            pixels = record.pixels
            if aug:
                pixels = augment_image(pixels, aug.crop_scale_min, aug.hflip, aug.brightness, aug.contrast, self._random())
            sample["vision"] = pre.prepare_image(pixels)
        else:
            raise TypeError(f"unknown record type {type(record).__name__}")
        return sample
