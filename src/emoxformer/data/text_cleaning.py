"""Repairs the encoding quirks found in MELD's CSVs."""
from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
_C1_CONTROLS = re.compile("[\u0080-\u009f]")
_MOJIBAKE_MARKERS = ("\u00e2\u20ac", "\u00c3", "\u00c2")
# Lone UTF-16 surrogates: a JSON "\ud800" escape, or bytes that are not UTF-8 on a command line (Python's
# surrogateescape). No text encoding writes them, so tokenizing or saving such a string would fail.
_SURROGATES = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, the replacement character."""
    return _SURROGATES.sub("\ufffd", text)


def _c1_to_cp1252(match: re.Match) -> str:
    # MELD contains bytes such as 0x92 decoded as latin-1 control characters; they were cp1252 punctuation.
    try:
        return match.group(0).encode("latin-1").decode("cp1252")
    except UnicodeDecodeError:
        return " "


def clean_utterance(text: str) -> str:
    """Fix cp1252/UTF-8 mojibake and C1 control characters, replace lone surrogates by U+FFFD, and collapse
    whitespace (newlines included)."""
    text = replace_surrogates(text)
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
