"""Writing a file so that an interruption never leaves a half-written one."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, content: str | Callable[[Path], object]) -> None:
    """Write `content` (text, or a function that writes the file it is given) to a temporary file beside `path`,
    then rename it to `path`: a reader, or a run interrupted while writing, sees the previous file or the new one.
    The temporary name (.NAME.PID.tmp) is hidden and per process, so processes writing the same file never mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(content, str):
        tmp.write_text(content)
    else:
        content(tmp)
    tmp.replace(path)
