"""Classification losses: focal loss (the reference code's, gamma = 2) and cross-entropy."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FocalLoss(nn.Module):
    """FL = -(1 - p_t)^gamma log p_t, averaged over the batch (`reduction="none"`: per sample); gamma = 0 is
    cross-entropy."""

    def __init__(self, gamma: float = 2.0, reduction: str = "mean"):
        super().__init__()
        self.gamma, self.reduction = gamma, reduction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
        losses = -(1 - log_p.exp()).pow(self.gamma) * log_p
        return losses if self.reduction == "none" else losses.mean()


def build_loss(name: str, gamma: float = 2.0, reduction: str = "mean") -> nn.Module:
    if name == "focal":
        return FocalLoss(gamma, reduction)
    if name in ("cross_entropy", "ce"):
        return nn.CrossEntropyLoss(reduction=reduction)
    raise ValueError(f"unknown loss {name!r}: use 'focal' or 'cross_entropy'")
