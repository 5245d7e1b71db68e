"""Dialogue context for MELD: each utterance preceded by up to k earlier utterances of its dialogue.

`dialogue_text` is the one place the text format is written; training (context_texts) and the Predictor both
call it, so a model trained with context receives exactly the strings it was trained on.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from .records import TextRecord

TARGET_MARK = ">>"


def format_turn(speaker: str, utterance: str) -> str:
    """`Speaker: utterance`, or the utterance alone when the speaker is unknown."""
    return f"{speaker}: {utterance}" if speaker else utterance


def dialogue_text(history: Sequence[tuple[str, str]], speaker: str, utterance: str, separator: str,
                  mark: str = TARGET_MARK) -> str:
    """`S1: u1 SEP S2: u2 SEP >> S3: u3`: the earlier turns as (speaker, utterance) pairs, then the marked turn."""
    parts = [format_turn(*turn) for turn in history] + [f"{mark} {format_turn(speaker, utterance)}"]
    return f" {separator} ".join(parts)


class DialogueTexts(dict):
    """{record id: text to classify}, as `context_texts` writes them, plus what each was written from (`turns`: the
    earlier (speaker, utterance) pairs and the classified one, last), so that training-only word dropout can drop
    words of the utterances and leave the format (separators, the mark, speakers) as inference writes it."""

    def __init__(self, texts: dict[str, str], turns: dict[str, list[tuple[str, str]]], separator: str):
        super().__init__(texts)
        self.turns = turns
        self.separator = separator

    def with_utterances(self, record_id: str, change: Callable[[str], str]) -> str:
        """The text of `record_id` with `change` applied to each of its utterances (the speakers and format kept)."""
        *history, (speaker, utterance) = [(who, change(said)) for who, said in self.turns[record_id]]
        return dialogue_text(history, speaker, utterance, self.separator)


def context_texts(records: list[TextRecord], k: int, separator: str) -> dict[str, str]:
    """Text to classify per record id: `S1: u1 SEP S2: u2 SEP >> S3: u3` for k = 2 (the target marked by `>>`).

    Only earlier utterances (smaller Utterance_ID) of the same dialogue and split take part, never later ones.
    With k = 0 every text is the utterance itself, exactly as the reference code fed it. With k > 0 the result is a
    `DialogueTexts`, which also holds each text's turns.
    """
    if k <= 0:
        return {r.id: r.text for r in records}
    dialogues: dict[tuple[str, int], list[TextRecord]] = defaultdict(list)
    for record in records:
        dialogues[(record.split, record.dialogue_id)].append(record)
    texts, turns_of = {}, {}
    for turns in dialogues.values():
        turns.sort(key=lambda r: r.utterance_id)
        for position, record in enumerate(turns):
            history = [(turn.speaker, turn.text) for turn in turns[max(0, position - k): position]]
            texts[record.id] = dialogue_text(history, record.speaker, record.text, separator)
            turns_of[record.id] = [*history, (record.speaker, record.text)]
    return DialogueTexts(texts, turns_of, separator)
