"""Repairs the encoding quirks found in MELD's CSVs."""
from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
_C1_CONTROLS = re.compile("[\u0080-\u009f]")
_MOJIBAKE_MARKERS = ("\u00e2\u20ac", "\u00c3", "\u00c2")


def _c1_to_cp1252(match: re.Match) -> str:
    # MELD contains bytes such as 0x92 decoded as latin-1 control characters; they were cp1252 punctuation.
    try:
        return match.group(0).encode("latin-1").decode("cp1252")
    except UnicodeDecodeError:
        return " "


def clean_utterance(text: str) -> str:
    """Fix cp1252/UTF-8 mojibake and C1 control characters, and collapse whitespace (newlines included)."""
    if any(marker in text for marker in _MOJIBAKE_MARKERS):
        try:
            text = text.encode("cp1252").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    text = _C1_CONTROLS.sub(_c1_to_cp1252, text)
    return _WHITESPACE.sub(" ", text).strip()


def decode_csv_bytes(data: bytes) -> str:
    """Decode a CSV that is UTF-8 in most copies of MELD and cp1252 in some."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
