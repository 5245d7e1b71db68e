"""Callbacks of the two-stage schedule."""
from __future__ import annotations

from pathlib import Path

import lightning as L


class ExportBestModel(L.Callback):
    """Save the model with `save_pretrained` (safetensors + JSON) whenever the monitored metric improves."""

    def __init__(self, directory: str | Path, monitor: str, tokenizer=None, mode: str = "max"):
        self.directory = Path(directory)
        self.monitor, self.mode, self.tokenizer = monitor, mode, tokenizer
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

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")
