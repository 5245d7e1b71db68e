"""Balanced sampling: each epoch draws an equal share of its samples from each dataset."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class BalancedSampler(Sampler[tuple[int, int]]):
    """`(index, draw seed)` pairs into a TrainingSet of k datasets, `num_samples // k` (±1) from each per epoch.

    Within a dataset, draws walk a fresh permutation (cycled when a dataset is smaller than its share),
    so every sample is seen before any repeats. With `balanced=False`, draws walk permutations of the
    concatenation instead (datasets in proportion to their sizes). Deterministic for (seed, epoch): call
    `set_epoch`. The draw seed fixes each draw's augmentation.
    """

    def __init__(self, dataset_sizes: list[int], num_samples: int, seed: int = 0, balanced: bool = True,
                 num_replicas: int = 1, rank: int = 0):
        if not dataset_sizes or min(dataset_sizes) <= 0:
            raise ValueError(f"balanced sampling needs non-empty datasets, got sizes {dataset_sizes}")
        self.sizes = list(dataset_sizes)
        self.offsets = np.concatenate(([0], np.cumsum(self.sizes)[:-1]))
        self.num_samples = int(num_samples)
        self.seed = seed
        self.balanced = balanced
        self.num_replicas, self.rank = num_replicas, rank
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
        if not self.balanced:
            return _cycled_permutations(rng, sum(self.sizes), self.num_samples)
        draws = []
        for size, offset, quota in zip(self.sizes, self.offsets, self.quotas(rng)):
            draws.append(_cycled_permutations(rng, size, quota) + offset)
        return rng.permutation(np.concatenate(draws))

    def global_draws(self) -> list[tuple[int, int]]:
        """The epoch's draws of all ranks together, in order."""
        indices = self.epoch_indices()
        seeds = np.random.default_rng([self.seed, self.epoch, 1]).integers(0, 2**62, size=len(indices))
        return list(zip(indices.tolist(), seeds.tolist()))

    def epoch_draws(self) -> list[tuple[int, int]]:
        """This rank's draws: every rank computes the same epoch and keeps every `num_replicas`-th draw, so
        ranks never overlap and together draw exactly what one process would (in the same global batches)."""
        return self.global_draws()[self.rank::self.num_replicas][: len(self)]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.epoch_draws())

    def __len__(self) -> int:
        return self.num_samples // self.num_replicas  # equal on every rank (DDP needs equal step counts)


class LengthBucketBatches(Sampler[list]):
    """Batches of a BalancedSampler's epoch in which each modality's samples have similar lengths.

    Padding is per modality (text rows pad among text rows, audio among audio), so within each window of
    `window` global batches the draws of each dataset are sorted by length and the datasets interleaved evenly
    before the window is cut into global batches: every batch still holds about 1/k of each dataset, now of
    similar lengths. The order of the global batches is then shuffled. With DDP, each global batch is split
    across ranks like the sampler's draws; the epoch keeps the draws the sampler's ranks would (a multiple of
    the rank count), so every batch gives each rank the same number of draws, never none.
    """

    def __init__(self, sampler: BalancedSampler, lengths: np.ndarray, batch_size: int, window: int = 20):
        self.sampler, self.lengths = sampler, np.asarray(lengths)
        self.batch_size, self.window = batch_size, window
        self.part_of = np.searchsorted(sampler.offsets, np.arange(sum(sampler.sizes)), side="right") - 1

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    @property
    def epoch_size(self) -> int:
        """Draws per epoch over all ranks: what the sampler's ranks draw together."""
        return len(self.sampler) * self.sampler.num_replicas

    def global_batches(self) -> list[list[tuple[int, int]]]:
        draws = self.sampler.global_draws()[: self.epoch_size]
        global_size = self.batch_size * self.sampler.num_replicas
        batches = []
        for start in range(0, len(draws), global_size * self.window):
            window = self._by_length(draws[start:start + global_size * self.window])
            batches += [window[i:i + global_size] for i in range(0, len(window), global_size)]
        order = np.random.default_rng([self.sampler.seed, self.sampler.epoch, 2]).permutation(len(batches))
        return [batches[j] for j in order]

    def _by_length(self, window: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Each dataset's draws sorted by length, the datasets interleaved by relative position in their order."""
        placed = []
        for part in range(len(self.sampler.sizes)):
            mine = sorted((d for d in window if self.part_of[d[0]] == part), key=lambda d: self.lengths[d[0]])
            placed += [((position + 0.5) / len(mine), part, draw) for position, draw in enumerate(mine)]
        placed.sort(key=lambda item: item[:2])
        return [draw for _, _, draw in placed]

    def __iter__(self):
        replicas, rank = self.sampler.num_replicas, self.sampler.rank
        for batch in self.global_batches():
            yield batch[rank::replicas]

    def __len__(self) -> int:
        global_size = self.batch_size * self.sampler.num_replicas
        return -(-self.epoch_size // global_size)


def _cycled_permutations(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    repeats = -(-count // size)
    return np.concatenate([rng.permutation(size) for _ in range(repeats)])[:count]
