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
