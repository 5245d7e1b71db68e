"""A saved model's folder: its file names, and reading its config.json while refusing pickle-based files."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import ModelLoadError
from .config import EmoXFormerConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def load_model_config(directory: Path) -> EmoXFormerConfig:
    """Check that a folder is an EmoXFormer model and read its config; refuse pickle files."""
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: model folder not found")
    unsafe = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in UNSAFE_SUFFIXES)
    if unsafe:
        raise ModelLoadError(f"{directory}: refusing to load a model folder holding pickle-based files ({', '.join(unsafe)}); only safetensors weights are read")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise ModelLoadError(f"{directory}: not an EmoXFormer model folder ({name} missing)")
    try:
        return EmoXFormerConfig.load(directory / CONFIG_NAME)
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{directory / CONFIG_NAME}: not an EmoXFormer config ({exc})") from None
