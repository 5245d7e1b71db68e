"""Errors meant for users: each carries a one-line message naming the file (and row)."""
from __future__ import annotations

from pathlib import Path


class EmoXFormerError(Exception):
    """Base class of every error the command line reports as one line with exit code 2."""


class DataError(EmoXFormerError):
    """A dataset file is missing, unreadable or malformed."""

    def __init__(self, path: str | Path, problem: str, row: int | None = None):
        self.path = str(path)
        self.row = row
        self.problem = problem
        where = f"{self.path}, row {row}" if row is not None else self.path
        super().__init__(f"{where}: {problem}")


class ConfigError(EmoXFormerError):
    """A configuration file or override is invalid."""


class ModelLoadError(EmoXFormerError):
    """A model directory is missing, incomplete or not an EmoXFormer model."""


class HubError(EmoXFormerError):
    """A model could not be pushed to the Hugging Face Hub (no token, no network, no rights, not a model folder)."""


class InputError(EmoXFormerError):
    """A user input to prediction (text, audio, image or video) is missing, unreadable or unusable."""


class DownloadError(EmoXFormerError):
    """A dataset could not be fetched, verified or unpacked; the message starts with the dataset's name."""

    def __init__(self, dataset: str, problem: str):
        self.dataset = dataset
        self.problem = problem
        super().__init__(f"{dataset}: {problem}")


def no_cuda_gpu(asked: str, instead: str) -> str:
    """The one line for a CUDA GPU asked for (`asked`: what asked) on a machine whose torch sees none."""
    import torch

    return f"{asked}: this machine has no CUDA GPU that torch {torch.__version__} can use (pass {instead})"
