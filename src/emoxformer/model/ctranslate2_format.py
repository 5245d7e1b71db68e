"""Reading CTranslate2 `model.bin` files (faster-whisper's checkpoints) without the CTranslate2 runtime.

The file (binary version 6; 3 to 5 read alike) is little-endian:
  uint32 binary version; string spec name (v2+); uint32 spec revision (v2+); uint32 variable count; then each
  variable: string name, uint8 rank, rank x uint32 dims, uint8 dtype (v4+; 0 float32, 1 int8, 2 int16, 3 int32,
  4 float16, 5 bfloat16), uint32 byte count, the raw bytes; then (v3+) uint32 alias count and (alias, name) string
  pairs: a variable equal to an earlier one is stored once and named again by an alias.
A string is a uint16 length (the NUL included), its UTF-8 bytes and a NUL.
Only the variables asked for are read; the others are skipped.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelLoadError

DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, "bfloat16")
MIN_VERSION, MAX_VERSION = 3, 6


class _Reader:
    def __init__(self, file, path: Path):
        self.file, self.path = file, path

    def take(self, size: int) -> bytes:
        data = self.file.read(size)
        if len(data) != size:
            raise ModelLoadError(f"{self.path}: truncated CTranslate2 model file")
        return data

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (length,) = self.unpack("H")
        return self.take(length).rstrip(b"\0").decode("utf-8")


def read_header(path: str | Path) -> tuple[int, str, int]:
    """(binary version, spec name, revision); ModelLoadError if not a CTranslate2 model file."""
    path = Path(path)
    with path.open("rb") as file:
        reader = _Reader(file, path)
        (version,) = reader.unpack("I")
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise ModelLoadError(f"{path}: not a CTranslate2 model file of a supported version "
                                 f"({MIN_VERSION}-{MAX_VERSION}; binary version field reads {version})")
        return version, reader.string(), reader.unpack("I")[0]


def read_variables(path: str | Path, wanted: Callable[[str], bool] = lambda name: True) -> dict[str, torch.Tensor]:
    """The variables of a CTranslate2 model file whose name `wanted` accepts (aliases resolved), as tensors of
    their stored dtype (float16 stays float16, bfloat16 is read as bfloat16)."""
    path = Path(path)
    version, _, _ = read_header(path)
    stored: dict[str, torch.Tensor] = {}
    skipped: set[str] = set()
    with path.open("rb") as file:
        reader = _Reader(file, path)
        reader.unpack("I")
        reader.string()
        reader.unpack("I")
        (count,) = reader.unpack("I")
        for _ in range(count):
            name = reader.string()
            (rank,) = reader.unpack("B")
            shape = reader.unpack(f"{rank}I") if rank else ()
            (dtype_id,) = reader.unpack("B") if version >= 4 else (0,)
            (size,) = reader.unpack("I")
            if not wanted(name):
                file.seek(size, 1)
                skipped.add(name)
                continue
            if dtype_id >= len(DTYPES):
                raise ModelLoadError(f"{path}: variable {name} has an unknown dtype id {dtype_id}")
            stored[name] = _tensor(reader.take(size), DTYPES[dtype_id], shape, name, path)
        if version >= 3:
            aliases = _aliases(reader, file)
            for alias, target in aliases.items():
                if wanted(alias) and target in stored:
                    stored[alias] = stored[target]
                elif wanted(alias) and target in skipped:  # aliased to a variable outside the selection
                    stored[alias] = read_variables(path, lambda name: name == target)[target]
    return stored


def _aliases(reader: _Reader, file) -> dict[str, str]:
    header = file.read(4)
    if len(header) < 4:  # files written without the alias table
        return {}
    (count,) = struct.unpack("<I", header)
    return dict((reader.string(), reader.string()) for _ in range(count))


def _tensor(data: bytes, dtype, shape: tuple, name: str, path: Path) -> torch.Tensor:
    width = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    if len(data) != width * int(np.prod(shape, dtype=np.int64)):
        raise ModelLoadError(f"{path}: variable {name} holds {len(data)} bytes, not a {list(shape)} array")
    if dtype == "bfloat16":
        return torch.from_numpy(np.frombuffer(data, dtype=np.int16).copy()).view(torch.bfloat16).reshape(shape)
    return torch.from_numpy(np.frombuffer(data, dtype=dtype).copy()).reshape(shape)

