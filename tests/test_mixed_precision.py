"""Mixed precision: the fusion keeps working when normalisation runs in float32 on half-precision tokens.

CUDA autocast runs LayerNorm in float32 while linear layers give bfloat16, so inside a fusion layer the normalised
tokens are float32 and the layer's input tokens bfloat16. CPU autocast keeps LayerNorm in bfloat16, so the tests
reproduce CUDA's policy by making the fusion's LayerNorms return float32.
"""
from __future__ import annotations

import torch
from torch import nn

from emoxformer.model.fusion import ContextGatedFusion

MODALITIES = ("text", "audio", "vision")


class Float32LayerNorm(nn.LayerNorm):
    """LayerNorm as CUDA autocast runs it: float32 output whatever the input dtype."""

    def forward(self, x):
        return nn.functional.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)


def _cuda_autocast_norms(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.LayerNorm):
            replacement = Float32LayerNorm(child.normalized_shape)
            replacement.load_state_dict(child.state_dict())
            setattr(module, name, replacement)
        else:
            _cuda_autocast_norms(child)


def test_fusion_runs_under_autocast_with_float32_layer_norms():
    torch.manual_seed(0)
    fusion = ContextGatedFusion(MODALITIES, hidden=16, heads=2, layers=2, dropout=0.0).eval()
    _cuda_autocast_norms(fusion)
    batch = 6
    present = {m: torch.tensor([i % 3 == k for i in range(batch)]) for k, m in enumerate(MODALITIES)}
    present["text"][0] = present["audio"][0] = True  # one sample with two modalities, so attention runs
    tokens = {m: torch.randn(batch, 4, 16) for m in MODALITIES}
    valid = {m: torch.ones(batch, 4, dtype=torch.bool) for m in MODALITIES}
    reference = fusion({m: t.bfloat16().float() for m, t in tokens.items()}, valid, present)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = fusion({m: t.bfloat16() for m, t in tokens.items()}, valid, present)
    for m in MODALITIES:
        assert mixed[m].dtype == torch.bfloat16
        rows = present[m]
        assert torch.allclose(mixed[m][rows].float(), reference[m][rows], atol=0.1)
