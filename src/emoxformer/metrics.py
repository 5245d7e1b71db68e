"""Classification metrics (torchmetrics) per dataset, and their table text."""
from __future__ import annotations

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy, multiclass_confusion_matrix, multiclass_f1_score, multiclass_precision, multiclass_recall,
)

from .labels import EMOTIONS, NUM_CLASSES


def classification_metrics(preds: torch.Tensor, target: torch.Tensor) -> dict:
    """Accuracy, weighted-F1 (the MELD convention), macro-F1, UAR, per-class P/R/F1 and the confusion matrix."""
    kwargs = {"num_classes": NUM_CLASSES}
    per_class = {
        "precision": multiclass_precision(preds, target, average=None, **kwargs),
        "recall": multiclass_recall(preds, target, average=None, **kwargs),
        "f1": multiclass_f1_score(preds, target, average=None, **kwargs),
    }
    support = torch.bincount(target, minlength=NUM_CLASSES)
    # UAR is the mean recall over the emotions the test set holds (sklearn's balanced accuracy). torchmetrics'
    # macro recall also averages an emotion that is only predicted, at recall 0: a corpus without "surprise"
    # (CREMA-D) would lose a seventh of its UAR for one wrong guess.
    held = support > 0
    uar = float(per_class["recall"][held].mean()) if held.any() else 0.0
    return {
        "n": int(target.numel()),
        "accuracy": float(multiclass_accuracy(preds, target, average="micro", **kwargs)),
        "weighted_f1": float(multiclass_f1_score(preds, target, average="weighted", **kwargs)),
        "macro_f1": float(multiclass_f1_score(preds, target, average="macro", **kwargs)),
        "uar": uar,
        "per_class": {
            name: {"precision": float(per_class["precision"][i]), "recall": float(per_class["recall"][i]),
                   "f1": float(per_class["f1"][i]), "support": int(support[i])}
            for i, name in enumerate(EMOTIONS)
        },
        "confusion_matrix": multiclass_confusion_matrix(preds, target, **kwargs).tolist(),
    }


def metrics_by_dataset(preds: torch.Tensor, target: torch.Tensor, dataset: torch.Tensor, names: dict[str, int]) -> dict:
    """Metrics for each dataset's samples separately (never pooled across datasets)."""
    return {name: classification_metrics(preds[dataset == index], target[dataset == index])
            for name, index in names.items() if (dataset == index).any()}


def format_metrics_table(metrics: dict, title: str = "") -> str:
    header = f"{'dataset':<10}{'n':>6}{'acc':>8}{'w-F1':>8}{'m-F1':>8}{'UAR':>8}"
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    for name, m in metrics.items():
        lines.append(f"{name:<10}{m['n']:>6}{m['accuracy']:>8.3f}{m['weighted_f1']:>8.3f}{m['macro_f1']:>8.3f}{m['uar']:>8.3f}")
    return "\n".join(lines)
