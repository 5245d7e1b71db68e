"""The Lightning DataModule: readers, splits, preprocessing, training-only augmentation, balanced sampling."""
from __future__ import annotations

import copy as _copy
import dataclasses
import os
import sys

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from ..errors import ConfigError, DataError
from ..model.preprocessing import Preprocessor
from .collate import Collator
from . import registry
from .datasets import RecordDataset, TrainingSet
from .encoder_outputs import EncoderOutputDataset
from .records import SPLITS, SplitRecords
from .multimodal import MULTI
from .pairing import PairedSampler
from .recordings import RecordingSet, recording_splits
from .sampler import BalancedSampler, LengthBucketBatches
from .sources import load_dataset, run_datasets
from .summary import split_summary


class EmoDataModule(L.LightningDataModule):
    def __init__(self, data_config, preprocessor: Preprocessor, batch_size: int = 32, eval_batch_size: int = 64,
                 num_workers: int | None = 0, seed: int = 0, progress: bool = True):
        super().__init__()
        self.data_config = data_config
        self.preprocessor = preprocessor
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers = min(4, max(0, (os.cpu_count() or 1) - 1)) if num_workers is None else num_workers
        self.seed = seed
        self.progress = progress
        self.collate = Collator(preprocessor.pad_id)
        data_config.validate()  # a config built in code, not loaded, is checked here too
        self.names = run_datasets(data_config.datasets)
        self.records: dict[str, SplitRecords] = {}
        self.splits: dict[str, dict[str, RecordDataset]] = {}

    @property
    def dataset_indices(self) -> dict[str, int]:
        """A sample's `dataset` index per dataset name: its position among this run's datasets."""
        return {name: index for index, name in enumerate(self.names)}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        for name in self.names:
            self.records[name] = load_dataset(self.data_config, name)
        for index, (name, records) in enumerate(self.records.items()):
            spec = registry.dataset(name, self.data_config)  # this config's own, whatever was registered since
            # Replication balances a small training set (RAVDESS) in unpaired epochs; pairing cycles it anyway.
            replicate = spec.replicate(self.data_config) if self.data_config.pairing == "none" else 1
            if spec.modality == MULTI:
                self.splits[name], notes = recording_splits(records, index, self.preprocessor, self.data_config,
                                                            spec.entry.modality_dropout, replicate, self.progress)
                records.notes.extend(notes)
                for note in notes:
                    print(f"note: {name}: {note}", file=sys.stderr)
                continue
            modality = registry.modality(spec.modality)
            state = modality.setup([r for split in SPLITS for r in records[split]], self.data_config, self.preprocessor,
                                   self.progress)
            self.splits[name] = {
                "train": RecordDataset(records.train * replicate, index, self.preprocessor, self.data_config.augment, state),
                "val": RecordDataset(records.val, index, self.preprocessor, None, state),
                "test": RecordDataset(records.test, index, self.preprocessor, None, state),
            }
        for name in self.names:
            for split in SPLITS:
                if len(self.splits[name][split]) == 0:
                    raise ConfigError(f"{name}: the {split} split is empty; check the data and the split settings")

    def with_sampling(self, balanced: bool) -> "EmoDataModule":
        """A copy of this datamodule whose training epochs draw balanced (1/k from each of k datasets) or not; this
        one is left as it is."""
        copy = _copy.copy(self)
        copy.data_config = dataclasses.replace(self.data_config, balanced=balanced)
        return copy

    def with_encoder_outputs(self, tables: dict) -> "EmoDataModule":
        """A copy of this (set-up) datamodule whose splits in `tables` ({(dataset, split, modality): FeatureTable})
        serve those encoder outputs instead of inputs (a multimodal corpus: each of its modalities' parts); this one
        is left as it is."""
        copy = _copy.copy(self)
        copy.splits = {name: {split: _with_tables(dataset, tables, name, split) for split, dataset in splits.items()}
                       for name, splits in self.splits.items()}
        return copy

    def summary(self) -> dict:
        return {name: split_summary(records) for name, records in self.records.items()}

    def _loader(self, dataset, batch_size: int, sampler=None) -> DataLoader:
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, shuffle=False, collate_fn=self.collate,
            num_workers=self.num_workers, pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        parts = [self.splits[name]["train"] for name in self.names]
        dataset = TrainingSet(parts, self.data_config.modality_dropout)
        trainer = getattr(self, "trainer", None)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        if self.data_config.pairing == "label":
            labels = [np.array([r.label for r in part.records]) for part in parts]
            sampler = PairedSampler(labels, seed=self.seed, num_replicas=world, rank=rank,
                                    modality_per_part=[registry.dataset_modality(name, self.data_config) for name in self.names])
        else:
            num_samples = self.data_config.samples_per_epoch or len(dataset)
            sampler = BalancedSampler([len(p) for p in parts], num_samples, seed=self.seed, balanced=self.data_config.balanced,
                                      num_replicas=world, rank=rank)
            if self.data_config.bucket_by_length:
                batches = LengthBucketBatches(sampler, self.training_lengths(parts), self.batch_size)
                return DataLoader(dataset, batch_sampler=batches, collate_fn=self.collate, num_workers=self.num_workers,
                                  pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0)
        return self._loader(dataset, self.batch_size, sampler)

    @staticmethod
    def training_lengths(parts: list) -> np.ndarray:
        """Input length of every training sample (characters of text, samples of audio, 0 for images)."""
        return np.concatenate([np.asarray(part.lengths(), dtype=np.int64) for part in parts])

    def eval_dataset(self, split: str) -> ConcatDataset:
        return ConcatDataset([self.splits[name][split] for name in self.names])

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.eval_dataset("val"), self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.eval_dataset("test"), self.eval_batch_size)


def single_modality_parts(dataset) -> dict:
    """{modality: RecordDataset} of a dataset split: itself, or a multimodal corpus's parts."""
    if isinstance(dataset, RecordingSet):
        return dict(dataset.parts)
    return {dataset.modality.name: dataset} if dataset.modality is not None else {}


def _with_tables(dataset, tables: dict, name: str, split: str):
    if isinstance(dataset, RecordingSet):
        return dataset.with_parts({m: EncoderOutputDataset(part, tables[(name, split, m)], m)
                                   for m, part in dataset.parts.items() if (name, split, m) in tables})
    modality = dataset.modality.name if dataset.modality is not None else None
    if (name, split, modality) not in tables:
        return dataset
    return EncoderOutputDataset(dataset, tables[(name, split, modality)], modality)


def evaluation_datamodule(data_config, preprocessor, batch_size: int, progress: bool = False):
    """A datamodule whose test split is every row of the one manifest corpus in `data_config.extra` (its train and
    val splits stay empty, which `EmoDataModule.setup` refuses for training, so its splits are set here)."""
    from .manifest import _describe, read_manifest

    entry = data_config.extra[0]
    records = read_manifest(entry, data_config, every_row=True)
    if not records.test:
        raise DataError(_describe(entry.manifest), "no rows to evaluate")
    datamodule = EmoDataModule(data_config, preprocessor, eval_batch_size=batch_size, progress=progress)
    state = registry.modality(entry.modality).setup(records.test, data_config, preprocessor, progress)
    datamodule.records[entry.name] = records
    datamodule.splits[entry.name] = {split: RecordDataset(records[split], 0, preprocessor, None, state) for split in SPLITS}
    return datamodule
