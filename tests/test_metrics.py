"""Per-dataset classification metrics against their textbook definitions."""
import numpy as np
import pytest
import torch

from emoxformer.metrics import classification_metrics


def _metrics(truth, predicted):
    return classification_metrics(torch.tensor(predicted), torch.tensor(truth))


def _recall_and_f1(truth, predicted):
    """Per class: recall (over the classes in the truth) and F1 (over the classes in the truth or the predictions)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    recall, f1, support = {}, {}, {}
    for c in sorted(set(truth) | set(predicted)):
        tp = np.sum((truth == c) & (predicted == c))
        fp, fn = np.sum((truth != c) & (predicted == c)), np.sum((truth == c) & (predicted != c))
        if tp + fn:
            recall[c] = tp / (tp + fn)
        f1[c], support[c] = 2 * tp / (2 * tp + fp + fn), np.sum(truth == c)
    return recall, f1, support


def test_uar_averages_recall_over_the_emotions_the_test_set_holds():
    # A corpus without "surprise" (class 5, as CREMA-D): one clip wrongly called surprise costs that clip only.
    truth = [0, 1, 2, 3, 4, 6] * 10
    predicted = list(truth)
    predicted[0] = 5
    assert _metrics(truth, predicted)["uar"] == pytest.approx((9 / 10 + 5) / 6)


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_their_definitions_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    truth, predicted = rng.integers(0, 7, 200).tolist(), rng.integers(0, 6, 200).tolist()
    metrics = _metrics(truth, predicted)
    recall, f1, support = _recall_and_f1(truth, predicted)
    assert metrics["accuracy"] == pytest.approx(np.mean(np.equal(truth, predicted)))
    assert metrics["uar"] == pytest.approx(np.mean(list(recall.values())))
    assert metrics["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert metrics["weighted_f1"] == pytest.approx(sum(f1[c] * support[c] for c in f1) / len(truth))
