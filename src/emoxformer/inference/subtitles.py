"""Transcripts with times: SubRip (.srt) and WebVTT (.vtt) subtitle files read into cues.

A file that does not parse is one InputError naming the file and the line, never a partial transcript."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

# 01:02:03,456 (SRT) or 01:02:03.456 / 02:03.456 (WebVTT); the hours are optional, a comma or a point before the ms.
_TIME = r"(?:(\d+):)?([0-5]?\d):([0-5]\d)[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")  # WebVTT may add cue settings after the end time
_TAG = re.compile(r"<[^>]*>")  # <i>, <b>, <font ...>, WebVTT's <v Speaker>, <c.class>, <00:00:01.000>
_ASS_TAG = re.compile(r"\{\\[^}]*\}")  # {\an8} and the like, common in SRT files converted from ASS


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def read_subtitles(path: str | Path) -> list[Cue]:
    """The cues of an SRT or WebVTT file, in time order; InputError (one line) for a file that does not parse."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: transcript file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: unreadable transcript ({exc.__class__.__name__})") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        content = raw.decode("cp1252", errors="replace")  # older SRT files are often Windows-1252
    return parse_subtitles(content, str(path))


def parse_subtitles(content: str, name: str = "transcript") -> list[Cue]:
    """Cues from the text of an SRT or WebVTT file (the format is told by the WEBVTT header)."""
    lines = content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    webvtt = lines[0].strip().startswith("WEBVTT")
    if not webvtt and not any("-->" in line for line in lines):
        raise InputError(f"{name}: not a subtitle file (SRT or WebVTT): no cue times such as "
                         "00:00:01,000 --> 00:00:02,500 in it")
    cues, number = [], 1 if webvtt else 0
    while number < len(lines):
        if not lines[number].strip():
            number += 1
            continue
        block_start = number
        block = []
        while number < len(lines) and lines[number].strip():
            block.append(lines[number])
            number += 1
        if webvtt and block_start == 1 and not any("-->" in line for line in block):
            continue  # header metadata under WEBVTT (e.g. Kind: captions)
        if webvtt and block[0].split(maxsplit=1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        cues.append(_cue(block, block_start + 1, name))
    if not cues:
        raise InputError(f"{name}: the subtitle file holds no cues")
    return sorted(cues, key=lambda cue: (cue.start, cue.end))


def _cue(block: list[str], line_number: int, name: str) -> Cue:
    """One cue block: an optional identifier (SRT: its number), the timing line, the text lines."""
    timing = 1 if len(block) > 1 and "-->" not in block[0] else 0
    match = _TIMING.match(block[timing])
    if match is None:
        raise InputError(f"{name}, line {line_number + timing}: expected a cue time range such as "
                         f"00:00:01,000 --> 00:00:02,500, found {block[timing].strip()[:60]!r}")
    start, end = _seconds(match.groups()[:4]), _seconds(match.groups()[4:])
    if end < start:
        raise InputError(f"{name}, line {line_number + timing}: the cue ends before it starts "
                         f"({block[timing].strip()[:60]})")
    text = " ".join(_ASS_TAG.sub("", _TAG.sub("", line)).strip() for line in block[timing + 1:])
    return Cue(start, end, html.unescape(" ".join(text.split())))


def _seconds(groups) -> float:
    hours, minutes, seconds, fraction = groups
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction.ljust(3, "0")) / 1000


def text_between(cues: list[Cue], start: float, end: float) -> str:
    """The text of the cues that overlap [start, end), in time order."""
    return " ".join(cue.text for cue in cues if cue.start < end and cue.end > start and cue.text)
