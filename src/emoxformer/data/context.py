"""Dialogue context for MELD: each utterance preceded by up to k earlier utterances of its dialogue."""
from __future__ import annotations

from collections import defaultdict

from .records import TextRecord

TARGET_MARK = ">>"


def context_texts(records: list[TextRecord], k: int, separator: str) -> dict[str, str]:
    """Text to classify per record id: `S1: u1 SEP S2: u2 SEP >> S3: u3` for k = 2 (the target marked by `>>`).

    Only earlier utterances (smaller Utterance_ID) of the same dialogue and split take part, never later ones.
    With k = 0 every text is the utterance itself, exactly as the seed fed it.
    """
    if k <= 0:
        return {r.id: r.text for r in records}
    dialogues: dict[tuple[str, int], list[TextRecord]] = defaultdict(list)
    for record in records:
        dialogues[(record.split, record.dialogue_id)].append(record)
    texts = {}
    for turns in dialogues.values():
        turns.sort(key=lambda r: r.utterance_id)
        for position, record in enumerate(turns):
            history = turns[max(0, position - k): position]
            parts = [f"{turn.speaker}: {turn.text}" for turn in history] + [f"{TARGET_MARK} {record.speaker}: {record.text}"]
            texts[record.id] = f" {separator} ".join(parts)
    return texts
