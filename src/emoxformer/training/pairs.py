"""Label-matched pairs assembled inside a training batch, so the fusion learns from disjoint datasets.

A batch of disjoint training data holds single-modality samples only (MELD text, RAVDESS speech, FER2013 faces),
so nothing in it has a second modality to attend to. Each single-modality sample of the batch becomes the anchor
of one extra sample: the anchor plus, for a random non-empty subset of the other modalities, a sample of that
modality with the same label from the same batch. The model fuses these from tokens it has already computed
(`EmoXFormer(pair_rows=...)`), so the pairs cost a fusion pass and no encoder work, and every subset of two or
more modalities is trained. Label-matched pairs are what the paired test measures too: modalities independent
given the emotion.
"""
from __future__ import annotations

import torch

from ..model.config import MODALITIES


def label_matched_rows(labels: torch.Tensor, present: torch.Tensor, generator: torch.Generator | None = None,
                       keep: float = 0.5) -> dict[str, torch.Tensor]:
    """{modality: LongTensor [P]}: for each of P assembled samples, the batch row that gives that modality, or -1.

    Anchors are the rows with exactly one modality and a label. Each other modality that has a same-label row is
    added with probability `keep` (one of them always, so every sample has two or more). Anchors without any
    same-label partner are skipped; with no anchor the result is empty."""
    present = present.bool().cpu()
    labels = labels.cpu()
    single = (present.sum(-1) == 1) & (labels >= 0)
    if not single.any():
        return {}
    columns = present.long().argmax(-1)
    candidates = {(column, int(label)): torch.nonzero(single & (columns == column) & (labels == label)).flatten()
                  for column in range(len(MODALITIES)) for label in labels[single].unique().tolist()}
    rows: list[list[int]] = []
    for anchor in torch.nonzero(single).flatten().tolist():
        own, label = int(columns[anchor]), int(labels[anchor])
        partners = [(c, candidates[(c, label)]) for c in range(len(MODALITIES)) if c != own and len(candidates[(c, label)])]
        if not partners:
            continue
        chosen = [p for p in partners if torch.rand((), generator=generator) < keep]
        if not chosen:
            chosen = [partners[int(torch.randint(len(partners), (), generator=generator))]]
        row = [-1] * len(MODALITIES)
        row[own] = anchor
        for column, pool in chosen:
            row[column] = int(pool[torch.randint(len(pool), (), generator=generator)])
        rows.append(row)
    if not rows:
        return {}
    table = torch.tensor(rows, dtype=torch.long, device=labels.device)
    return {m: table[:, c] for c, m in enumerate(MODALITIES) if (table[:, c] >= 0).any()}


def pair_labels(labels: torch.Tensor, pair_rows: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each assembled sample's label (that of any of its rows: they agree)."""
    rows = torch.stack(list(pair_rows.values()), dim=-1).max(-1).values
    return labels[rows.to(labels.device)]
