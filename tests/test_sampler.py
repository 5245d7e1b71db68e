"""Length-bucketed batches under DDP: every rank gets the same number of non-empty batches."""
import numpy as np
import pytest

from emoxformer.data.sampler import BalancedSampler, LengthBucketBatches


def _bucketed_ranks(sizes, num_samples, batch_size, replicas, balanced=True, epoch=0):
    """Per rank: (its batches, its len(), the plain sampler's draws for that rank)."""
    lengths = np.random.default_rng(0).integers(1, 500, sum(sizes))
    ranks = []
    for rank in range(replicas):
        sampler = BalancedSampler(sizes, num_samples, seed=3, balanced=balanced, num_replicas=replicas, rank=rank)
        batches = LengthBucketBatches(sampler, lengths, batch_size)
        batches.set_epoch(epoch)
        ranks.append((list(batches), len(batches), sampler.epoch_draws()))
    return ranks


def _assert_equal_steps_and_no_empty_batch(ranks):
    counts = {len(batches) for batches, _, _ in ranks} | {length for _, length, _ in ranks}
    assert len(counts) == 1, f"ranks disagree on the number of steps: {counts}"
    for step in zip(*(batches for batches, _, _ in ranks)):
        assert all(step), "a rank got an empty batch"
        assert len({len(batch) for batch in step}) == 1  # each step: the same batch size on every rank


def _assert_same_draws_as_the_plain_sampler(ranks):
    bucketed = sorted(d for batches, _, _ in ranks for batch in batches for d in batch)
    assert bucketed == sorted(d for _, _, draws in ranks for d in draws)


def test_641_samples_batch_16_on_2_ranks_leave_no_rank_an_empty_last_batch():
    ranks = _bucketed_ranks([300, 200, 141], 641, 16, 2)
    _assert_equal_steps_and_no_empty_batch(ranks)
    _assert_same_draws_as_the_plain_sampler(ranks)
    assert len(ranks[0][0]) == 20 and sum(len(b) for b in ranks[0][0]) == 320 == len(ranks[0][2])


@pytest.mark.parametrize("sizes, num_samples, batch_size, replicas, balanced", [
    ([7, 5, 3], 41, 1, 2, True),  # batch 1: more global batches than draws of each dataset per window
    ([7, 5, 3], 41, 1, 3, True),
    ([50, 40, 30], 97, 4, 3, False),
    ([50, 40, 30], 1283, 8, 4, True),  # several windows, a short last one
    ([9], 5, 2, 4, True),
    ([300, 200, 141], 641, 16, 1, True),
])
def test_bucketed_ranks_always_take_equal_non_empty_steps(sizes, num_samples, batch_size, replicas, balanced):
    for epoch in (0, 1):
        ranks = _bucketed_ranks(sizes, num_samples, batch_size, replicas, balanced, epoch)
        _assert_equal_steps_and_no_empty_batch(ranks)
        _assert_same_draws_as_the_plain_sampler(ranks)


def test_buckets_group_similar_lengths_and_mix_datasets():
    sizes = [400, 300, 200]
    lengths = np.concatenate([np.arange(400), np.arange(300) * 2, np.arange(200) * 3])
    sampler = BalancedSampler(sizes, 900, seed=0)
    batches = list(LengthBucketBatches(sampler, lengths, 30))
    part_of = np.searchsorted(sampler.offsets, np.arange(900), side="right") - 1
    spreads = []
    for batch in batches:
        indices = np.array([i for i, _ in batch])
        assert set(part_of[indices].tolist()) == {0, 1, 2}
        spreads += [np.ptp(lengths[indices[part_of[indices] == part]]) for part in range(3)]
    assert np.mean(spreads) < 0.1 * np.mean([np.ptp(lengths[part_of == part]) for part in range(3)])
