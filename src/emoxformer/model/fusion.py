"""Context-gated cross-attention fusion with masking for absent modalities.

For each modality m present in the batch, each layer computes
    ctx_m = mean over the other modalities n present *in that sample* of  Attn_{m,n}(q = x_m, kv = x_n)
    h_m   = LayerNorm(x_m + sigmoid(W_m [x_m; ctx_m]) * ctx_m)        (the context gate)
    x_m'  = LayerNorm(h_m + FFN_m(h_m))
with Attn_{m,n} = Attn_{n,m} when `share_pair_weights` (the reference code's sharing between the two directions).
Keys are masked per sample; a sample lacking modality n gets no context from n, and a sample with no
other modality gets ctx = 0, so its own representation passes through unchanged by any other sample.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn


def _pair_key(query: str, key: str, shared: bool) -> str:
    return "__".join(sorted((query, key))) if shared else f"{query}__{key}"


class MaskedCrossAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor, has_keys: torch.Tensor):
        # A query row whose keys are all masked would give NaN (softmax over nothing); give it one dummy key
        # and discard its output below.
        ignore = ~key_valid
        ignore[~has_keys, 0] = False
        context, _ = self.attention(query, keys, keys, key_padding_mask=ignore, need_weights=False)
        return torch.where(has_keys[:, None, None], context, torch.zeros_like(context))


class FusionLayer(nn.Module):
    def __init__(self, modalities: tuple[str, ...], hidden: int, heads: int, dropout: float, gate: bool, shared: bool, feedforward: bool):
        super().__init__()
        self.modalities, self.shared, self.use_gate, self.use_ffn = modalities, shared, gate, feedforward
        pairs = {_pair_key(q, k, shared) for q, k in itertools.permutations(modalities, 2)}
        self.attention = nn.ModuleDict({pair: MaskedCrossAttention(hidden, heads, dropout) for pair in sorted(pairs)})
        self.gate = nn.ModuleDict({m: nn.Linear(2 * hidden, hidden) for m in modalities}) if gate else None
        self.norm = nn.ModuleDict({m: nn.LayerNorm(hidden) for m in modalities})
        if feedforward:
            self.ffn = nn.ModuleDict({
                m: nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * hidden, hidden))
                for m in modalities
            })
            self.ffn_norm = nn.ModuleDict({m: nn.LayerNorm(hidden) for m in modalities})

    def forward(self, tokens: dict[str, torch.Tensor], valid: dict[str, torch.Tensor], present: dict[str, torch.Tensor]):
        updated = {}
        for m, full in tokens.items():
            # Only the samples that have modality m are computed (a third of a balanced batch each).
            rows = present[m].nonzero(as_tuple=True)[0]
            x = full[rows]
            context = torch.zeros_like(x)
            n_sources = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
            for n in tokens:
                has_keys = present[n][rows]
                if n == m or not has_keys.any():
                    continue
                attention = self.attention[_pair_key(m, n, self.shared)]
                context = context + attention(x, tokens[n][rows], valid[n][rows], has_keys)
                n_sources = n_sources + has_keys.to(x.dtype)
            context = context / n_sources.clamp(min=1)[:, None, None]
            if self.use_gate:
                context = torch.sigmoid(self.gate[m](torch.cat([x, context], dim=-1))) * context
            hidden = self.norm[m](x + context)
            if self.use_ffn:
                hidden = self.ffn_norm[m](hidden + self.ffn[m](hidden))
            # CUDA autocast runs LayerNorm in float32 while the tokens are bfloat16/float16: keep the tokens' dtype.
            updated[m] = full.index_copy(0, rows, hidden.to(full.dtype))
        return updated


class ContextGatedFusion(nn.Module):
    def __init__(self, modalities, hidden, heads, layers, dropout, gate=True, shared=True, feedforward=True):
        super().__init__()
        self.layers = nn.ModuleList(
            [FusionLayer(tuple(modalities), hidden, heads, dropout, gate, shared, feedforward) for _ in range(layers)]
        )

    def forward(self, tokens, valid, present):
        for layer in self.layers:
            tokens = layer(tokens, valid, present)
        return tokens
