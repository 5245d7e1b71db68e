"""Stage-1 feature cache: with frozen backbones, each sample's encoder output is computed once.

Each (dataset, split) gets a memory-mapped float16 token array plus offsets, under a key made from the
encoder's weights, the model's preprocessing settings, the augmentation of cached views and the records'
content, so a changed setting or changed data never reads a stale cache. A layer-weighted encoder
(`model.text_layers` / `model.audio_layers` = weighted) has every layer's states cached, one row of
layers x width per token (13x the last layer's size for MPNet, 7x for Whisper-base), and its layer weights,
which train in stage 1, are applied to them before the projection (model/layers.py).

Augmentation changes backbone inputs, so a cache cannot hold "the" augmented sample. `train.feature_cache_views`
says what it holds: 1 (default) = the un-augmented input (stage 1 then trains without backbone-side
augmentation; stage 2 augments as usual); K > 1 = view 0 un-augmented plus K-1 augmented draws per training
sample, one picked per epoch draw. Validation and test use the un-augmented view.

A replicated training set (RAVDESS x7, `data.ravdess_replicate`) is encoded once per distinct record; each
replicated index reads its record's row. A one-view table also lists its records' digests (id and content), and a
new one-view table copies the rows that tables of the same encoder and settings (its pool) already hold: only
records no table has are encoded, so EmoBox's six folds of RAVDESS encode each clip once. Tables go under $EMOXFORMER_CACHE/features; with the cache off, into a
scratch folder that is removed after the stage (`feature_folder`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.cache import cache_root
from ..data.encoder_outputs import FeatureTable
from ..data import registry
from ..data.datamodule import single_modality_parts
from ..data.multimodal import MULTI
from ..model.config import INPUT_SETTINGS
from ..model.encoders import exact_padding
from ..model.layers import WEIGHTS_NAME as LAYER_WEIGHTS, cache_outputs, route_cached_layers
from ..model.modeling import EmoXFormer

POOL = ""  # cache_key's records digest for a pool: every one-view table of one encoder and its input settings
RECORDS_FILE = "records.json"  # a one-view table's record digests, row by row: other tables of its pool copy rows


def distinct_records(records: list) -> tuple[list[int], np.ndarray]:
    """The first index of each distinct record (a replicated list repeats the same objects) and, per index, the
    row of its record among them."""
    row_of: dict[int, int] = {}
    first_indices: list[int] = []
    rows = np.empty(len(records), dtype=np.int64)
    for index, record in enumerate(records):
        row = row_of.setdefault(id(record), len(first_indices))
        if row == len(first_indices):
            first_indices.append(index)
        rows[index] = row
    return first_indices, rows


def _records_digest(records: list) -> str:
    return _records_digests(records)[0]


def _records_digests(records: list) -> tuple[str, list[str]]:
    """The digest of the records in order (part of a table's key) and each record's own (id and content), read once."""
    digest, each = hashlib.sha256(), []
    for record in records:
        content = registry.modality_of_record(record).content(record)
        digest.update(record.id.encode())
        digest.update(content)
        each.append(hashlib.sha256(record.id.encode() + b"\0" + content).hexdigest()[:32])
    return digest.hexdigest(), each


def _encoder_digest(encoder: torch.nn.Module) -> str:
    """The encoder's weights, less its layer weights (model/layers.py): a layer-weighted encoder's table holds every
    layer's states, which they do not change."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        if name.startswith(LAYER_WEIGHTS + "."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_key(model: EmoXFormer, modality: str, records: list | str, views: int, augment, state_digest: str = "",
              seed: int | None = None, encoder_digest: str | None = None) -> str:
    """The table's key. The model config's input settings of `modality` (model/config.py INPUT_SETTINGS) count;
    augmented views are drawn from `seed`, so it counts only when views > 1. `records`: the records, or their
    digest (`_records_digests`; POOL: the key every table of this encoder and these settings shares).
    `encoder_digest`: the encoder's, when already computed."""
    settings = {field: getattr(model.config, field) for field in INPUT_SETTINGS[modality]}
    augmented = views > 1
    encoder_digest = encoder_digest or _encoder_digest(model.encoders[modality])
    payload = {"settings": settings, "views": views, "augment": vars(augment) if augmented and augment else None,
               "seed": seed if augmented else None, "encoder": encoder_digest,
               "records": records if isinstance(records, str) else _records_digest(records),
               "state": state_digest, "version": 5}  # 5: the input settings, image colour among them
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


@torch.no_grad()
def build_table(model: EmoXFormer, dataset, modality: str, views: int, collate, device: torch.device,
                batch_size: int, seed: int, progress: bool, indices: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the frozen encoder over the records at `indices` (default: all) of a RecordDataset, `views` each;
    row r of the table holds indices[r]."""
    encoder = model.encoders[modality].to(device).eval()
    indices = range(len(dataset)) if indices is None else indices
    keys = [(i, None if v == 0 else int(np.random.default_rng([seed, row, v]).integers(2**62)))
            for row, i in enumerate(indices) for v in range(views)]
    chunks, lengths = [], []
    # disable=None: no bar when stderr is not a terminal (a log file would collect every redraw).
    for start in tqdm(range(0, len(keys), batch_size), desc=f"caching {modality} features",
                      disable=None if progress else True, leave=False):
        samples = [dataset[key] if key[1] is not None else dataset[key[0]] for key in keys[start:start + batch_size]]
        batch = collate(samples)
        inputs = {k: v.to(device) for k, v in batch[modality].items()}
        with exact_padding(encoder):  # cached features must not depend on which records share a batch
            hidden, valid = cache_outputs(encoder, inputs)  # a layer-weighted encoder: every layer's states
        for row in range(hidden.shape[0]):
            tokens = hidden[row][valid[row]].float().cpu().numpy().astype(np.float16)
            chunks.append(tokens)
            lengths.append(len(tokens))
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    return np.concatenate(chunks), offsets


def cached_tables(model: EmoXFormer, datamodule, splits: tuple[str, ...], views: int, device: torch.device,
                  is_main: bool = True, progress: bool = True, root: Path | None = None) -> dict[tuple[str, str], FeatureTable]:
    """Feature tables for every chosen dataset and split, built by rank 0 and read (memory-mapped) by all.

    `root`: the folder of tables; default $EMOXFORMER_CACHE/features (with the cache off, pass one)."""
    root = root if root is not None else persistent_root()
    if root is None:
        raise ValueError("the feature cache is off (EMOXFORMER_CACHE=off): pass a folder for the tables")
    route_cached_layers(model)  # a layer-weighted encoder's cached layers are weighted before their projection
    tables = {}
    encoder_digests: dict[str, str] = {}
    for name in datamodule.names:
        for split in splits:
            for modality, dataset in single_modality_parts(datamodule.splits[name][split]).items():
                part = f"{name}-{split}" if registry.dataset_modality(name, datamodule.data_config) != MULTI else f"{name}-{split}-{modality}"
                split_views = views if split == "train" else 1
                first_indices, rows = distinct_records(dataset.records)
                records = [dataset.records[i] for i in first_indices]
                state_digest = registry.modality(modality).state_digest(dataset.state)
                records_digest, record_digests = _records_digests(records)
                if modality not in encoder_digests:  # hashing every weight of a base-size encoder takes seconds
                    encoder_digests[modality] = _encoder_digest(model.encoders[modality])
                encoder_digest = encoder_digests[modality]
                keys = [cache_key(model, modality, digest, split_views, datamodule.data_config.augment, state_digest,
                                  seed=datamodule.seed, encoder_digest=encoder_digest) for digest in (records_digest, POOL)]
                folder, pool = root / f"{part}-{keys[0]}", keys[1] if split_views == 1 else None
                if not (folder / "meta.json").is_file():
                    if is_main:
                        def encode(indices):
                            return build_table(model, dataset, modality, split_views, datamodule.collate, device,
                                               datamodule.eval_batch_size, datamodule.seed, progress, indices)
                        if pool is None:
                            tokens, offsets = encode(first_indices)
                        else:  # one view each: rows other tables of the pool hold are copied, the rest encoded
                            tokens, offsets = _assemble(root, pool, record_digests, first_indices, encode)
                        _write_table(folder, tokens, offsets, split_views, pool, record_digests if pool else None)
                    else:
                        _wait_for(folder / "meta.json")
                tables[(name, split, modality)] = FeatureTable.load(folder, rows)
    return tables


@contextmanager
def cached_datamodule(model: EmoXFormer, datamodule, splits: tuple[str, ...], views: int, device: torch.device,
                      scratch: Path, is_main: bool = True, progress: bool = True):
    """A copy of `datamodule` whose `splits` serve the frozen encoders' outputs from the feature cache (with the
    cache off: from tables in `scratch`, removed on leaving). Freezes the model's backbones."""
    with feature_folder(scratch, is_main) as folder:
        model.freeze_backbones(True)
        tables = cached_tables(model, datamodule, splits, views, device, is_main, progress, folder)
        yield datamodule.with_encoder_outputs(tables)


def persistent_root() -> Path | None:
    """$EMOXFORMER_CACHE/features, or None when the cache is off."""
    root = cache_root()
    return root / "features" if root is not None else None


@contextmanager
def feature_folder(scratch: Path, is_main: bool = True):
    """The folder for a stage's tables: the persistent cache, or with the cache off `scratch`, removed (by rank 0)
    when the stage ends. Never the current directory."""
    root = persistent_root()
    if root is not None:
        yield root
        return
    try:
        yield scratch
    finally:
        if is_main:
            shutil.rmtree(scratch, ignore_errors=True)


def _pool_rows(root: Path, pool: str) -> dict[str, tuple[Path, int]]:
    """Each record digest a table of `pool` holds: (its folder, its row)."""
    found: dict[str, tuple[Path, int]] = {}
    for meta_file in root.glob("*/meta.json"):
        if meta_file.parent.name.startswith("."):  # a table being written (renamed when complete)
            continue
        try:
            meta = json.loads(meta_file.read_text())
            if meta.get("pool") != pool:
                continue
            digests = json.loads((meta_file.parent / RECORDS_FILE).read_text())
        except (OSError, ValueError):  # a damaged table: not a source
            continue
        if len(digests) != meta.get("rows"):
            continue
        for row, digest in enumerate(digests):
            found.setdefault(digest, (meta_file.parent, row))
    return found


def _assemble(root: Path, pool: str, record_digests: list[str], first_indices: list[int], encode) -> tuple[np.ndarray, np.ndarray]:
    """A one-view table of these records: rows of the pool's tables copied (the same encoder, settings and record
    content give the same features), the records none holds encoded by `encode(indices)`. Another split of the same
    records (EmoBox's folds, a joint run after single-dataset runs) then costs a copy, not an encoder pass."""
    known = _pool_rows(root, pool)
    missing = [row for row, digest in enumerate(record_digests) if digest not in known]
    if len(missing) == len(record_digests):
        return encode(first_indices)
    new_tokens, new_offsets = encode([first_indices[row] for row in missing]) if missing else (None, None)
    new_row = {row: position for position, row in enumerate(missing)}
    sources: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
    chunks = []
    try:
        for row, digest in enumerate(record_digests):
            if row in new_row:
                position = new_row[row]
                chunks.append(new_tokens[new_offsets[position]:new_offsets[position + 1]])
                continue
            folder, source_row = known[digest]
            if folder not in sources:
                sources[folder] = (np.load(folder / "tokens.npy", mmap_mode="r"), np.load(folder / "offsets.npy"))
            tokens, offsets = sources[folder]
            chunks.append(np.asarray(tokens[offsets[source_row]:offsets[source_row + 1]]))
    except (OSError, ValueError, IndexError):  # a source table removed or damaged meanwhile: encode everything
        return encode(first_indices)
    offsets = np.concatenate(([0], np.cumsum([len(c) for c in chunks]))).astype(np.int64)
    return np.concatenate(chunks), offsets


def _write_table(folder: Path, tokens: np.ndarray, offsets: np.ndarray, views: int, pool: str | None = None,
                 record_digests: list[str] | None = None) -> None:
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    np.save(tmp / "tokens.npy", tokens)
    np.save(tmp / "offsets.npy", offsets)
    if record_digests is not None:
        (tmp / RECORDS_FILE).write_text(json.dumps(record_digests))
    meta = {"views": views, "rows": int(len(offsets) - 1), "width": int(tokens.shape[1])}
    if pool is not None:
        meta["pool"] = pool
    (tmp / "meta.json").write_text(json.dumps(meta))
    try:
        tmp.rename(folder)  # atomic: a reader sees a complete table or none
    except OSError:  # another process finished the same table first
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_for(path: Path, timeout_s: float = 7200) -> None:
    deadline = time.time() + timeout_s
    while not path.is_file():
        if time.time() > deadline:
            raise TimeoutError(f"{path}: rank 0 did not finish the feature cache")
        time.sleep(1)
