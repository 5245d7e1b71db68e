"""On-disk caches of decoded data, keyed by the source files' identity so a changed source is never read stale.

Location: $EMOXFORMER_CACHE, else ~/.cache/emoxformer. Writes go to a temporary file and are renamed, so an
interrupted write leaves no half-written cache. Set EMOXFORMER_CACHE=off to disable.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..io_utils import atomic_write


def cache_root() -> Path | None:
    value = os.environ.get("EMOXFORMER_CACHE", "")
    if value.lower() in ("off", "0", "none", "false"):
        return None
    return Path(value) if value else Path.home() / ".cache" / "emoxformer"


def fingerprint(paths: list[Path], **settings) -> str:
    """A key from each file's absolute path, size and modification time, plus any settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def load_arrays(kind: str, key: str) -> dict[str, np.ndarray] | None:
    root = cache_root()
    path = root / kind / f"{key}.npz" if root else None
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError):
        return None  # unreadable cache: recompute


def save_arrays(kind: str, key: str, **arrays: np.ndarray) -> None:
    root = cache_root()
    if root is None:
        return
    folder = root / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"{key}.npz", lambda tmp: _save_npz(tmp, arrays))
    except OSError:
        pass  # a read-only or full disk only costs speed


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with path.open("wb") as file:  # a file object: np.savez would add ".npz" to a path's name
        np.savez(file, **arrays)
