"""The readers' bad-data policy: stop on the first bad row, or skip and count."""
from __future__ import annotations

from ..errors import DataError


# A bad row is named as the manifest reader numbers it: the header is row 1, the first data row 2.
FIRST_DATA_ROW = 2


class BadRowPolicy:
    """Raise a DataError (the default) or, with ``skip_bad``, record it and go on."""

    def __init__(self, skip_bad: bool = False):
        self.skip_bad = skip_bad
        self.skipped: list[str] = []

    def bad(self, path, problem: str, row: int | None = None) -> None:
        error = DataError(path, problem, row)
        if not self.skip_bad:
            raise error
        self.skipped.append(str(error))
