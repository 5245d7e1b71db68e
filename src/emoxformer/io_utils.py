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


def check_output_file(path: str | Path, option: str, overwrite: bool, makes_folder: bool = False) -> Path:
    """`path` as a file a command may write once its work is done, checked before the work starts (a result
    computed for nothing, or a file replaced unasked, is lost work): InputError for a folder, a missing folder
    (unless the command `makes_folder`), or an existing file without `overwrite` (`option`: the command-line option
    that named it)."""
    from .errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; {option} takes a file name")
    if not makes_folder and not path.parent.is_dir():
        raise InputError(f"{path}: its folder does not exist")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: exists; pass --overwrite to replace it, or {option} another file")
    return path
