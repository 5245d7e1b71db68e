"""Collator.pad_features: cached float16 encoder outputs padded into one float32 batch, each in its own row."""
import numpy as np
import torch

from emoxformer.data.collate import Collator


def test_cached_features_land_in_their_rows_in_float32():
    rng = np.random.default_rng(0)
    features = [rng.standard_normal((tokens, 6)).astype(np.float16) for tokens in (3, 1, 5)]
    rows = [0, 2, 3]  # row 1 is a sample of another modality
    batch = Collator.pad_features(features, rows, size=5)
    assert batch["hidden"].dtype == torch.float32 and batch["hidden"].shape == (5, 5, 6)
    for row, feature in zip(rows, features):
        torch.testing.assert_close(batch["hidden"][row, : len(feature)], torch.from_numpy(feature.astype(np.float32)),
                                   atol=0, rtol=0)
        assert batch["valid"][row].tolist() == [True] * len(feature) + [False] * (5 - len(feature))
        assert not batch["hidden"][row, len(feature):].any()
    assert not batch["valid"][[1, 4]].any() and not batch["hidden"][[1, 4]].any()


def test_encoder_outputs_and_inputs_are_collated_side_by_side():
    """A sample with `encoder_outputs` counts as present for that modality and goes to batch["encoder_outputs"]; the
    inputs of other samples stay where they are."""
    tokens = np.ones((2, 4), np.float16)
    batch = Collator()([{"encoder_outputs": {"audio": tokens}, "label": 1}, {"text": [1, 5, 6], "label": 2}])
    assert batch["present"].tolist() == [[False, True, False], [True, False, False]]
    assert "audio" not in batch and set(batch["encoder_outputs"]) == {"audio"}
    assert batch["encoder_outputs"]["audio"]["valid"].tolist() == [[True, True], [False, False]]
    assert batch["text"]["input_ids"][1].tolist() == [1, 5, 6]
