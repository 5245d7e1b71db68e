"""Label-matched pseudo-pairing: multimodal examples assembled from disjoint datasets.

An example holds one sample of each dataset with the same emotion, so the fusion layers see real text,
audio and faces together during training. Within an epoch, the largest dataset's samples of a label each
appear exactly once; smaller datasets' samples of that label are cycled (reshuffled per pass), so every
training sample is seen at least once per epoch.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from ..labels import NUM_CLASSES
from .sampler import _cycled_permutations


def label_matched_examples(labels_per_part: list[np.ndarray], rng: np.random.Generator, cycle: bool = True) -> list[tuple[int, ...]]:
    """Tuples of global indices (parts concatenated in order), one index per part that has the label.

    With `cycle`, each label yields as many examples as its largest part has samples; without, as many as its
    smallest part (no sample is repeated: the evaluation setting).
    """
    offsets = np.concatenate(([0], np.cumsum([len(labels) for labels in labels_per_part])[:-1]))
    examples: list[tuple[int, ...]] = []
    for label in range(NUM_CLASSES):
        pools = [offset + np.flatnonzero(labels == label) for labels, offset in zip(labels_per_part, offsets)]
        pools = [pool for pool in pools if len(pool)]
        if not pools:
            continue
        count = max(len(p) for p in pools) if cycle else min(len(p) for p in pools)
        columns = [pool[_cycled_permutations(rng, len(pool), count)] for pool in pools]
        examples.extend(zip(*(column.tolist() for column in columns)))
    return [examples[i] for i in rng.permutation(len(examples))]


class PairedSampler(Sampler):
    """Keys `("pair", ((index, seed), ...), example seed)` for a TrainingSet; DDP-aware like BalancedSampler."""

    def __init__(self, labels_per_part: list[np.ndarray], seed: int = 0, num_replicas: int = 1, rank: int = 0):
        self.labels = [np.asarray(labels) for labels in labels_per_part]
        self.seed, self.num_replicas, self.rank = seed, num_replicas, rank
        self.epoch = 0
        self._length = len(label_matched_examples(self.labels, np.random.default_rng(0)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_draws(self) -> list:
        rng = np.random.default_rng([self.seed, self.epoch])
        examples = label_matched_examples(self.labels, rng)
        seeds = np.random.default_rng([self.seed, self.epoch, 1]).integers(0, 2**62, size=(len(examples), 4)).tolist()
        keys = [("pair", tuple(zip(example, s[:3])), s[3]) for example, s in zip(examples, seeds)]
        return keys[self.rank::self.num_replicas][: len(self)]

    def __iter__(self) -> Iterator:
        return iter(self.epoch_draws())

    def __len__(self) -> int:
        return self._length // self.num_replicas
