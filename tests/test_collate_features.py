"""Collator.pad_features: cached float16 encoder outputs padded into one float32 batch, each in its own row."""
import numpy as np
import torch

from emoxformer.data.collate import Collator


def test_cached_features_land_in_their_rows_in_float32():
    rng = np.random.default_rng(0)
    features = [rng.standard_normal((tokens, 6)).astype(np.float16) for tokens in (3, 1, 5)]
    rows = [0, 2, 3]  # row 1 is a sample of another modality
    batch = Collator.pad_features(features, rows, size=5)
    assert batch["features"].dtype == torch.float32 and batch["features"].shape == (5, 5, 6)
    for row, feature in zip(rows, features):
        torch.testing.assert_close(batch["features"][row, : len(feature)], torch.from_numpy(feature.astype(np.float32)),
                                   atol=0, rtol=0)
        assert batch["valid"][row].tolist() == [True] * len(feature) + [False] * (5 - len(feature))
        assert not batch["features"][row, len(feature):].any()
    assert not batch["valid"][[1, 4]].any() and not batch["features"][[1, 4]].any()
