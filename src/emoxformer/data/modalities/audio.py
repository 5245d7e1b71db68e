"""Speech: clips decoded once into memory (AudioStore), prepared as normalised 16 kHz waveforms."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ...media import load_audio
from ..augment import augment_waveform
from ..cache import fingerprint, load_arrays, save_arrays
from ..records import AudioRecord
from ..specs import Modality


class AudioStore:
    """Every clip decoded once, mixed to mono and resampled to 16 kHz, kept in memory by record id."""

    def __init__(self, records: list[AudioRecord], sample_rate: int, progress: bool = True):
        unique = sorted({r.id: r for r in records}.values(), key=lambda r: r.id)
        key = fingerprint([r.path for r in unique], rate=sample_rate, version=1)
        cached = load_arrays("audio", key)
        if cached is None:
            waves = [load_audio(r.path, sample_rate) for r in
                     tqdm(unique, desc="decoding audio", disable=not progress or len(unique) < 50, leave=False)]
            lengths = np.array([len(w) for w in waves], dtype=np.int64)
            cached = {"samples": np.concatenate(waves) if waves else np.zeros(0, np.float32), "lengths": lengths}
            save_arrays("audio", key, **cached)
        ends = np.cumsum(cached["lengths"])
        self.waves: dict[str, np.ndarray] = {
            r.id: cached["samples"][end - length: end] for r, end, length in zip(unique, ends, cached["lengths"])
        }

    def __getitem__(self, record_id: str) -> np.ndarray:
        return self.waves[record_id]


def setup(records: list, data_config, preprocessor, progress: bool) -> AudioStore:
    return AudioStore(records, preprocessor.config.sample_rate, progress)


def prepare(record: AudioRecord, store, preprocessor, augment, rng) -> np.ndarray:
    wave = store[record.id]
    if augment:
        wave = augment_waveform(wave, augment.max_shift, augment.noise_snr_db, rng)
    return preprocessor.prepare_audio(wave)


def collate(waves: list[np.ndarray], rows: list[int], size: int, collator) -> dict:
    waveform = torch.zeros((size, max(len(wave) for wave in waves)), dtype=torch.float32)
    lengths = torch.zeros(size, dtype=torch.long)
    for row, wave in zip(rows, waves):
        waveform[row, : len(wave)] = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        lengths[row] = len(wave)
    return {"waveform": waveform, "lengths": lengths}


def length(record: AudioRecord, store) -> int:
    return len(store[record.id])


def content(record: AudioRecord) -> bytes:
    stat = record.path.stat()
    return f"{record.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()


AUDIO = Modality("audio", AudioRecord, setup, prepare, collate, length, content)
