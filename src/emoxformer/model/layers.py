"""Which hidden states of a pretrained backbone become an encoder's tokens (`model.text_layers`,
`model.audio_layers`): the last layer's, or a learned softmax-weighted sum of every layer's (SUPERB, Yang et al.
2021: emotion lives more in middle layers than in the last one).

The layer weights belong to the encoder but not to its backbone: freezing the backbones (stage 1) leaves them
trainable. The stage-1 feature cache cannot hold the weighted sum, which changes while stage 1 trains, so it holds
every layer's states, flattened to one row of `layers x width` per token (`cache_outputs`); `route_cached_layers`
makes a model apply the encoder's weighting to such rows before their projection.
"""
from __future__ import annotations

import torch
from torch import nn

LAYER_CHOICES = ("last", "weighted")
WEIGHTS_NAME = "layer_weights"  # the encoder's submodule; the feature cache's key leaves it out


def mean_over_windows(states: torch.Tensor, valid: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over consecutive windows of `size` tokens, valid tokens only ([n, L, width], [n, L] bool ->
    [n, ceil(L / size), width] and its validity; a window is valid when it holds a valid token, the last one may be
    shorter), summed in float32 (and returned so). A clip's windows never depend on the padding the batch gives it."""
    if size == 1:
        return states, valid
    n, length, width = states.shape
    windows = -(-length // size)
    pad = windows * size - length
    weights = valid.float()
    summed = nn.functional.pad(states * weights[..., None], (0, 0, 0, pad)).view(n, windows, size, width).sum(2)
    counts = nn.functional.pad(weights, (0, pad)).view(n, windows, size).sum(-1)
    return summed / counts.clamp(min=1)[..., None], counts > 0


class LayerWeights(nn.Module):
    """softmax(logits) over the layers, summed with the layers' states, each layer's states layer-normalised first
    (no learned scale; as SUPERB's weighted sum does); uniform at the start.

    Without the normalisation one layer's scale decides the sum: Whisper-base's middle layers carry a few tokens
    with activations near 500 (the others within about 4), and a model over the raw sum of RAVDESS clips stayed at
    chance (train accuracy 16 % after 5 epochs; with the normalisation 70 % validation accuracy after 4)."""

    def __init__(self, layers: int):
        super().__init__()
        self.layers = layers
        self.logits = nn.Parameter(torch.zeros(layers))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        """[..., layers, width] -> [..., width]"""
        weights = self.logits.softmax(0).to(stacked.dtype)
        normalised = nn.functional.layer_norm(stacked, stacked.shape[-1:])
        return torch.einsum("...lw,l->...w", normalised, weights)


class LayerChoice(nn.Module):
    """Base of encoders over a backbone with several hidden states. A subclass sets `width` and implements
    `hidden_states(**inputs) -> (states, valid)`: the list of every hidden state when `weighted` (embeddings
    first), else a list holding the last one, each [n, L, width]."""

    width: int

    def init_layers(self, layers: str, count: int) -> None:
        if layers not in LAYER_CHOICES:
            raise ValueError(f"layers must be one of {', '.join(LAYER_CHOICES)}, got {layers!r}")
        self.layer_weights = LayerWeights(count) if layers == "weighted" else None

    @property
    def weighted(self) -> bool:
        return getattr(self, WEIGHTS_NAME, None) is not None

    def hidden_states(self, **inputs) -> tuple[list[torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def forward(self, *args, **inputs):
        states, valid = self.hidden_states(*args, **inputs)
        return (self.layer_weights(torch.stack(states, -2)) if self.weighted else states[-1]), valid

    def cache_outputs(self, *args, **inputs):
        """What the stage-1 feature cache stores: the tokens, or with weighting every layer's states, [n, L,
        layers * width]; `from_cache` turns them into the tokens."""
        if not self.weighted:
            return self(*args, **inputs)
        states, valid = self.hidden_states(*args, **inputs)
        return torch.stack(states, -2).flatten(-2), valid

    def from_cache(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.weighted and hidden.shape[-1] == self.layer_weights.layers * self.width:
            return self.layer_weights(hidden.unflatten(-1, (self.layer_weights.layers, self.width)))
        return hidden

    def train(self, mode: bool = True):
        super().train(mode)
        if self.weighted:  # not part of the backbone: trainable also while the backbone is frozen
            self.layer_weights.requires_grad_(True)
        return self


def cache_outputs(encoder: nn.Module, inputs: dict):
    """(hidden, valid) of `encoder` as the stage-1 feature cache stores them."""
    method = getattr(encoder, "cache_outputs", None)
    return method(**inputs) if method is not None else encoder(**inputs)


def route_cached_layers(model: nn.Module) -> None:
    """Make `model` (an EmoXFormer) apply each layer-weighted encoder's weighting to cached per-layer rows before
    the modality's projection (rows of the encoder's own width pass unchanged). Idempotent."""
    for modality, encoder in model.encoders.items():
        projection = model.projections[modality]
        if getattr(encoder, "weighted", False) and not getattr(projection, "_routes_cached_layers", False):
            projection.register_forward_pre_hook(_CachedLayers(encoder))
            projection._routes_cached_layers = True


class _CachedLayers:
    """A forward pre-hook (a class, so a model that holds it still pickles)."""

    def __init__(self, encoder: LayerChoice):
        self.encoder = encoder

    def __call__(self, module, args):
        return (self.encoder.from_cache(args[0]), *args[1:])
