"""Callbacks of the two-stage schedule."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from ..io_utils import atomic_write

BEST_SCORE = "best_score.json"  # beside a stage's best/: its monitored value, for choosing the final model
LAST_CHECKPOINT = "last.ckpt"  # in a stage's checkpoints/: where `train --resume` continues the stage from


class ExportBestModel(L.Callback):
    """Save the model with `save_pretrained` (safetensors + JSON) whenever the monitored metric improves, and its
    monitored value to `score_file` (when given), so a resumed run knows each stage's best without retraining."""

    def __init__(self, directory: str | Path, monitor: str, tokenizer=None, mode: str = "max",
                 score_file: str | Path | None = None):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.directory = Path(directory)
        self.monitor, self.mode, self.tokenizer = monitor, mode, tokenizer
        self.score_file = Path(score_file) if score_file is not None else None
        self.best: float | None = None

    def _improved(self, value: float) -> bool:
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if self._improved(value):
            self.best = value
            if trainer.is_global_zero:
                pl_module.model.save_pretrained(self.directory, tokenizer=self.tokenizer)
                if self.score_file is not None:  # after the model: a kill in between redoes this epoch on resume
                    write_best_score(self.score_file, self.monitor, self.mode, value, trainer.current_epoch + 1)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")


def write_best_score(path: Path, monitor: str, mode: str, value: float, epoch: int, **extra) -> None:
    """`extra`: further fields, such as the value training logged when `value` was scored again (run.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"monitor": monitor, "mode": mode, "value": value, "epoch": epoch, **extra}, indent=2))


def read_best_score(path: Path) -> dict | None:
    """What `ExportBestModel` wrote, or None for a stage trained before scores were kept."""
    return json.loads(path.read_text()) if path.is_file() else None


class SaveLastCheckpoint(Checkpoint):
    """Write the full training state to `path` at the end of every training epoch (after its validation), the
    state `train --resume` continues from.

    Lightning's ModelCheckpoint(save_last=True, save_top_k=0) no longer does this: since Lightning 2.6 it writes
    `last.ckpt` only in a step that also saved a top-k checkpoint, so with none kept a stage killed in any epoch
    restarted from its beginning. As a Checkpoint subclass this runs where ModelCheckpoint did: after EarlyStopping
    (the saved state includes its patience count and decision) and before Lightning logs the epoch's training
    metrics. The state is written to a hidden file and renamed to `path` only once those metrics are in the log
    (as the next epoch or the stage's end begins): a resumed stage skips its checkpoint's epoch end, so a file
    visible earlier could leave that epoch's row out of the log, and a kill while writing keeps the previous
    epoch's file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._pending = self.path.with_name(f".{self.path.name}.tmp")
        self._stopped = False

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Lightning does not keep `should_stop`: a stage that early stopping had ended would train on when resumed.
        checkpoint["emoxformer_should_stop"] = bool(trainer.should_stop)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._stopped = bool(checkpoint.get("emoxformer_should_stop", False))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._stopped:
            trainer.should_stop = True
        if trainer.is_global_zero:  # left by a sitting killed before it published (or while writing) it: stale
            self._pending.unlink(missing_ok=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The full state (optimiser, schedulers, callbacks), as resuming needs; said explicitly, Lightning stays
        # quiet (otherwise it logs that it defaulted to it, once an epoch).
        trainer.save_checkpoint(self._pending, weights_only=False)  # every rank takes part; rank 0 writes

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._publish(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._publish(trainer)

    def _publish(self, trainer: L.Trainer) -> None:
        if trainer.is_global_zero and self._pending.is_file():
            self._pending.replace(self.path)


class EpochLines(L.Callback):
    """One line per epoch (stage, epoch, train and validation loss, the monitored score, seconds): what a log that
    is not a terminal gets instead of progress bars, whose redraws would pile up into one huge line per epoch."""

    def __init__(self, stage_name: str, score: str = "val/score"):
        self.stage_name, self.score = stage_name, score
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation has run by now (Lightning validates before ending the training epoch).
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        values = [("train loss", "train/loss_epoch"), ("val loss", "val/loss")]
        if self.score != "val/loss":
            values.append((self.score.replace("/", " "), self.score))
        fields = ", ".join(f"{label} {_number(metrics.get(key))}" for label, key in values)
        print(f"{self.stage_name} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {fields}, "
              f"{time.perf_counter() - self.started:.1f} s", flush=True)


def _number(value) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


class RNGState(L.Callback):
    """Keep the Python, NumPy and torch random states in checkpoints, so a resumed run repeats the original.

    Stored as plain lists and tensors, so checkpoints load with `torch.load(weights_only=True)`.
    """

    def state_dict(self) -> dict:
        import random

        import numpy as np
        import torch

        kind, keys, position, has_gauss, gauss = np.random.get_state()
        state = {
            "python": _to_lists(random.getstate()),
            "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(gauss)],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        import random

        import numpy as np
        import torch

        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, position, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def _to_lists(value):
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


class _ContinuingWriter:
    """Mixed into Lightning's CSV experiment writer: an existing metrics.csv is continued, not deleted (Lightning
    removes it when a non-empty version folder is opened again, so a resumed stage lost its earlier epochs)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = sorted(next(csv.reader(file), []))  # new rows are written under the old header

    def keep_before(self, epoch: int, step: int) -> None:
        """Drop the logged rows of epoch `epoch` on (and, for rows without an epoch, such as the learning rate
        logged as an epoch starts, those from step `step` on): what a resumed stage logs again."""
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            header, rows = reader.fieldnames or [], list(reader)

        def earlier(row: dict) -> bool:
            if row.get("epoch") not in (None, ""):
                return float(row["epoch"]) < epoch
            return row.get("step") not in (None, "") and int(float(row["step"])) < step

        kept = [row for row in rows if earlier(row)]
        if len(kept) == len(rows):
            return
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(kept)


class ContinuingCSVLogger(CSVLogger):
    """Lightning's CSVLogger writing RUN_DIR/logs/<stage>/metrics.csv, continued across a resumed stage: the epochs
    logged before the checkpoint are kept and those after it (logged again when the stage resumes) dropped as
    training starts (ContinueLog)."""

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingExperimentWriter(log_dir=self.log_dir)
        return self._experiment


class _ContinuingExperimentWriter(_ContinuingWriter, ExperimentWriter):
    pass


class ContinueLog(L.Callback):
    """As training starts (after a checkpoint, if any, is restored), keep the CSV log's rows from before the epoch
    it starts at: none for a fresh stage (a stage killed before its first checkpoint starts over)."""

    def __init__(self, logger: ContinuingCSVLogger):
        self.logger = logger

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.logger.experiment.keep_before(trainer.current_epoch, trainer.fit_loop.epoch_loop._batches_that_stepped)
