"""Stage-1 feature cache: with frozen backbones, each sample's encoder output is computed once.

Each (dataset, split) gets a memory-mapped float16 token array plus offsets, under a key made from the
encoder's weights, the model's preprocessing settings, the augmentation of cached views and the records'
content, so a changed setting or changed data never reads a stale cache.

Augmentation changes backbone inputs, so a cache cannot hold "the" augmented sample. `train.feature_cache_views`
says what it holds: 1 (default) = the un-augmented input (stage 1 then trains without backbone-side
augmentation; stage 2 augments as usual); K > 1 = view 0 un-augmented plus K-1 augmented draws per training
sample, one picked per epoch draw. Validation and test use the un-augmented view.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.cache import cache_root
from ..data.records import AudioRecord, ImageRecord, TextRecord
from ..data.sources import DATASET_MODALITY
from ..model.modeling import EmoXFormer

PREPROCESSING_FIELDS = ("text_backbone", "audio_backbone", "vision_backbone", "max_text_tokens", "sample_rate",
                        "max_audio_seconds", "image_size", "image_channels", "image_mean", "image_std", "vision_tokens",
                        "builtin_width", "builtin_text_layers", "builtin_audio_mels", "vision_stem_stride",
                        "audio_pool_frames")


class FeatureTable:
    """Encoder outputs of one dataset split: `views` per record, each a [tokens, width] float16 array."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, views: int):
        self.tokens, self.offsets, self.views = tokens, offsets, views

    def get(self, index: int, view: int = 0) -> np.ndarray:
        slot = index * self.views + view
        return self.tokens[self.offsets[slot]: self.offsets[slot + 1]]

    @classmethod
    def load(cls, folder: Path) -> "FeatureTable":
        meta = json.loads((folder / "meta.json").read_text())
        return cls(np.load(folder / "tokens.npy", mmap_mode="r"), np.load(folder / "offsets.npy"), meta["views"])


def _records_digest(records: list) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(record.id.encode())
        if isinstance(record, TextRecord):
            digest.update(record.text.encode())
        elif isinstance(record, ImageRecord):
            digest.update(np.ascontiguousarray(record.pixels).tobytes())
        elif isinstance(record, AudioRecord):
            stat = record.path.stat()
            digest.update(f"{record.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _encoder_digest(encoder: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_key(model: EmoXFormer, modality: str, records: list, views: int, augment, texts_digest: str = "") -> str:
    settings = {field: getattr(model.config, field) for field in PREPROCESSING_FIELDS}
    payload = {"settings": settings, "views": views, "augment": vars(augment) if views > 1 and augment else None,
               "encoder": _encoder_digest(model.encoders[modality]), "records": _records_digest(records),
               "texts": texts_digest, "version": 1}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


@torch.no_grad()
def build_table(model: EmoXFormer, dataset, modality: str, views: int, collate, device: torch.device,
                batch_size: int, seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Run the frozen encoder over every record (and view) of a RecordDataset."""
    encoder = model.encoders[modality].to(device).eval()
    keys = [(i, None if v == 0 else int(np.random.default_rng([seed, i, v]).integers(2**62)))
            for i in range(len(dataset)) for v in range(views)]
    chunks, lengths = [], []
    for start in tqdm(range(0, len(keys), batch_size), desc=f"caching {modality} features", disable=not progress, leave=False):
        samples = [dataset[key] if key[1] is not None else dataset[key[0]] for key in keys[start:start + batch_size]]
        batch = collate(samples)
        inputs = {k: v.to(device) for k, v in batch[modality].items()}
        hidden, valid = encoder(**inputs)
        for row in range(hidden.shape[0]):
            tokens = hidden[row][valid[row]].float().cpu().numpy().astype(np.float16)
            chunks.append(tokens)
            lengths.append(len(tokens))
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    return np.concatenate(chunks), offsets


def cached_tables(model: EmoXFormer, datamodule, splits: tuple[str, ...], views: int, device: torch.device,
                  is_main: bool = True, progress: bool = True) -> dict[tuple[str, str], FeatureTable]:
    """Feature tables for every chosen dataset and split, built by rank 0 and read (memory-mapped) by all."""
    root = cache_root() or Path(datamodule.cache_fallback)
    tables = {}
    for name in datamodule.names:
        modality = DATASET_MODALITY[name]
        for split in splits:
            dataset = datamodule.splits[name][split]
            split_views = views if split == "train" else 1
            texts_digest = hashlib.sha256(json.dumps(dataset.texts, sort_keys=True).encode()).hexdigest() if dataset.texts else ""
            key = cache_key(model, modality, dataset.records, split_views, datamodule.data_config.augment, texts_digest)
            folder = root / "features" / f"{name}-{split}-{key}"
            if not (folder / "meta.json").is_file():
                if is_main:
                    tokens, offsets = build_table(model, dataset, modality, split_views, datamodule.collate, device,
                                                  datamodule.eval_batch_size, datamodule.seed, progress)
                    _write_table(folder, tokens, offsets, split_views)
                else:
                    _wait_for(folder / "meta.json")
            tables[(name, split)] = FeatureTable.load(folder)
    return tables


def _write_table(folder: Path, tokens: np.ndarray, offsets: np.ndarray, views: int) -> None:
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "tokens.npy", tokens)
    np.save(tmp / "offsets.npy", offsets)
    (tmp / "meta.json").write_text(json.dumps({"views": views, "rows": int(len(offsets) - 1), "width": int(tokens.shape[1])}))
    try:
        tmp.rename(folder)  # atomic: a reader sees a complete table or none
    except OSError:  # another process finished the same table first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _wait_for(path: Path, timeout_s: float = 7200) -> None:
    deadline = time.time() + timeout_s
    while not path.is_file():
        if time.time() > deadline:
            raise TimeoutError(f"{path}: rank 0 did not finish the feature cache")
        time.sleep(1)
