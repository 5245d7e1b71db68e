"""Per-dataset metrics (torchmetrics), readable tables and plots."""
from __future__ import annotations

from pathlib import Path

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
    return {
        "n": int(target.numel()),
        "accuracy": float(multiclass_accuracy(preds, target, average="micro", **kwargs)),
        "weighted_f1": float(multiclass_f1_score(preds, target, average="weighted", **kwargs)),
        "macro_f1": float(multiclass_f1_score(preds, target, average="macro", **kwargs)),
        "uar": float(multiclass_recall(preds, target, average="macro", **kwargs)),
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


def plot_confusion_matrix(matrix: list[list[int]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import numpy as np

    data = np.asarray(matrix, dtype=np.float64)
    normalised = data / np.maximum(data.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(NUM_CLASSES), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(NUM_CLASSES), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(NUM_CLASSES):
        for j in range(NUM_CLASSES):
            if data[i, j] > 0:
                ax.text(j, i, int(data[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if normalised[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training_curves(csv_paths: dict[str, Path], path: Path) -> None:
    """Loss and validation score per epoch from Lightning's CSV logs, one line per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 4))
    offset = 0
    for stage, csv in csv_paths.items():
        if not csv.is_file():
            continue
        frame = pd.read_csv(csv)
        per_epoch = frame.groupby("epoch").mean(numeric_only=True)
        epochs = per_epoch.index + offset
        for column, ax, style in (("train/loss_epoch", ax_loss, "-"), ("val/loss", ax_loss, "--"), ("val/score", ax_score, "-")):
            if column in per_epoch:
                ax.plot(epochs, per_epoch[column], style, marker="o", label=f"{stage} {column}")
        offset = int(epochs.max()) + 1 if len(epochs) else offset
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_score.set_xlabel("epoch")
    ax_score.set_ylabel("validation score (mean weighted-F1)")
    for ax in (ax_loss, ax_score):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
