"""Text: MELD-style utterances, optionally with their dialogue context, as token ids."""
from __future__ import annotations

import hashlib
import json

import torch

from ..augment import word_dropout
from ..context import DialogueTexts, context_texts
from ..records import TextRecord
from ..specs import Modality


def setup(records: list, data_config, preprocessor, progress: bool) -> dict[str, str] | None:
    """The text to classify per record id when the run uses dialogue context (`data.text_context` > 0), else None."""
    if data_config is None or data_config.text_context <= 0:
        return None
    return context_texts(records, data_config.text_context, preprocessor.context_separator)


def prepare(record: TextRecord, texts: dict[str, str] | None, preprocessor, augment, rng) -> list[int]:
    text = texts[record.id] if texts is not None else record.text
    if augment and isinstance(texts, DialogueTexts):  # words of the utterances only: the format stays as inference's
        text = texts.with_utterances(record.id, lambda utterance: word_dropout(utterance, augment.word_dropout, rng))
    elif augment:
        text = word_dropout(text, augment.word_dropout, rng)
    return preprocessor.tokenize(text, keep_end=texts is not None)  # with context, the utterance comes last


def collate(sequences: list[list[int]], rows: list[int], size: int, collator) -> dict:
    length = max(len(seq) for seq in sequences)
    ids = torch.full((size, length), collator.text_pad_id, dtype=torch.long)
    mask = torch.zeros((size, length), dtype=torch.long)
    for row, seq in zip(rows, sequences):
        ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def length(record: TextRecord, texts) -> int:
    return len(texts[record.id] if texts is not None else record.text)


def content(record: TextRecord) -> bytes:
    return record.text.encode()


def state_digest(texts: dict[str, str] | None) -> str:
    return hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest() if texts else ""


TEXT = Modality("text", TextRecord, setup, prepare, collate, length, content, state_digest)
