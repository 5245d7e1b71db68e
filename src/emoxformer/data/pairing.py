"""Label-matched pseudo-pairing: multimodal examples assembled from disjoint datasets.

An example holds one sample of each modality with the same emotion, so the fusion layers see real text,
audio and faces together during training. Datasets of the same modality (RAVDESS and CREMA-D, say) form one
pool: an example has one audio sample, drawn from either. Within an epoch, the largest pool's samples of a label
each appear exactly once; smaller pools' samples of that label are cycled (reshuffled per pass), so every
training sample is seen at least once per epoch.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from ..labels import NUM_CLASSES
from .sampler import _cycled_permutations


def label_matched_examples(labels_per_part: list[np.ndarray], rng: np.random.Generator, cycle: bool = True,
                           modality_per_part: list[str] | None = None) -> list[tuple[int, ...]]:
    """Tuples of global indices (parts concatenated in order), one index per modality pool that has the label.
    `modality_per_part` groups the parts into pools (parts of one modality share a pool); without it each part
    is a pool of its own.

    With `cycle`, each label yields as many examples as its largest pool has samples; without, as many as its
    smallest pool (no sample is repeated: the evaluation setting).
    """
    offsets = np.concatenate(([0], np.cumsum([len(labels) for labels in labels_per_part])[:-1])).astype(np.int64)
    groups = modality_per_part if modality_per_part is not None else list(range(len(labels_per_part)))
    if len(groups) != len(labels_per_part):
        raise ValueError(f"{len(groups)} modalities for {len(labels_per_part)} parts")
    order = list(dict.fromkeys(groups))
    examples: list[tuple[int, ...]] = []
    for label in range(NUM_CLASSES):
        pools = [np.concatenate([offset + np.flatnonzero(labels == label)
                                 for labels, offset, group in zip(labels_per_part, offsets, groups) if group == wanted])
                 for wanted in order]
        pools = [pool for pool in pools if len(pool)]
        if not pools:
            continue
        count = max(len(p) for p in pools) if cycle else min(len(p) for p in pools)
        columns = [pool[_cycled_permutations(rng, len(pool), count)] for pool in pools]
        examples.extend(zip(*(column.tolist() for column in columns)))
    return [examples[i] for i in rng.permutation(len(examples))]


class PairedSampler(Sampler):
    """Keys `("pair", ((index, seed), ...), example seed)` for a TrainingSet; DDP-aware like BalancedSampler."""

    def __init__(self, labels_per_part: list[np.ndarray], seed: int = 0, num_replicas: int = 1, rank: int = 0,
                 modality_per_part: list[str] | None = None):
        self.labels = [np.asarray(labels) for labels in labels_per_part]
        self.modalities = modality_per_part
        self.seed, self.num_replicas, self.rank = seed, num_replicas, rank
        self.epoch = 0
        self._length = len(self._examples(np.random.default_rng(0)))

    def _examples(self, rng: np.random.Generator) -> list[tuple[int, ...]]:
        return label_matched_examples(self.labels, rng, modality_per_part=self.modalities)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_draws(self) -> list:
        rng = np.random.default_rng([self.seed, self.epoch])
        examples = self._examples(rng)
        # One draw seed per sample of an example (as many as it has pools), then the example's own seed last.
        width = max((len(example) for example in examples), default=0) + 1
        seeds = np.random.default_rng([self.seed, self.epoch, 1]).integers(0, 2**62, size=(len(examples), width)).tolist()
        keys = [("pair", tuple(zip(example, s[:len(example)])), s[-1]) for example, s in zip(examples, seeds)]
        return keys[self.rank::self.num_replicas][: len(self)]

    def __iter__(self) -> Iterator:
        return iter(self.epoch_draws())

    def __len__(self) -> int:
        return self._length // self.num_replicas
