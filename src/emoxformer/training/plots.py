"""The run's figures: confusion matrices and training curves (matplotlib, drawn without a display)."""
from __future__ import annotations

from pathlib import Path

from ..labels import EMOTIONS, NUM_CLASSES


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
