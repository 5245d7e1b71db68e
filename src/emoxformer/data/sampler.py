"""Balanced sampling: each epoch draws an equal share of its samples from each dataset."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class BalancedSampler(Sampler[int]):
    """Indices into a ConcatDataset of k datasets, `num_samples // k` (±1) drawn from each per epoch.

    Within a dataset, draws walk a fresh permutation (cycled when a dataset is smaller than its share),
    so every sample is seen before any repeats. Deterministic for (seed, epoch); call `set_epoch`.
    """

    def __init__(self, dataset_sizes: list[int], num_samples: int, seed: int = 0):
        if not dataset_sizes or min(dataset_sizes) <= 0:
            raise ValueError(f"balanced sampling needs non-empty datasets, got sizes {dataset_sizes}")
        self.sizes = list(dataset_sizes)
        self.offsets = np.concatenate(([0], np.cumsum(self.sizes)[:-1]))
        self.num_samples = int(num_samples)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def quotas(self, rng: np.random.Generator) -> list[int]:
        k = len(self.sizes)
        quotas = [self.num_samples // k] * k
        for extra in rng.permutation(k)[: self.num_samples % k]:
            quotas[extra] += 1
        return quotas

    def epoch_indices(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        draws = []
        for size, offset, quota in zip(self.sizes, self.offsets, self.quotas(rng)):
            repeats = -(-quota // size)
            order = np.concatenate([rng.permutation(size) for _ in range(repeats)])[:quota]
            draws.append(order + offset)
        return rng.permutation(np.concatenate(draws))

    def __iter__(self) -> Iterator[int]:
        return iter(self.epoch_indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
