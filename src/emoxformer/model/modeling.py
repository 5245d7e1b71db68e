"""The EmoXFormer module: per-modality dispatch, projection, fusion, masked pooling, head; save and load."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ModelLoadError
from ..io_utils import atomic_write
from .config import MODALITIES, EmoXFormerConfig
from .encoders import build_encoder, is_builtin, resolve_image_settings
from .fusion import ContextGatedFusion

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


@dataclass
class EmoXFormerOutput:
    """What the model returns: `logits` [B, classes], and `loss` (cross-entropy) when labels were given."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


class EmoXFormer(nn.Module):
    """Emotion classifier over any subset of {text, audio, vision} per sample.

    `forward` takes `present` (bool [B, 3], columns text, audio, vision) and, for each modality present in at
    least one sample, full-batch inputs (rows of absent samples are ignored): `text = {input_ids, attention_mask}`,
    `audio = {waveform, lengths}`, `vision = {pixel_values}`, or that modality's `encoder_outputs`. Each encoder
    runs only on the rows that have its modality. It returns an `EmoXFormerOutput`.

    Only the modalities of `config.modalities` get an encoder, a projection and fusion weights; the head reads
    one pooled vector per such modality, in the order text, audio, vision.
    """

    def __init__(self, config: EmoXFormerConfig, _saved_backbone_configs: dict | None = None):
        super().__init__()
        self.config = config
        self.modalities = model_modalities(config)
        saved = _saved_backbone_configs or {}
        self.encoders = nn.ModuleDict({m: build_encoder(m, config, saved.get(m)) for m in self.modalities})
        self.projections = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(self.encoders[m].width, config.hidden_size), nn.Dropout(config.projection_dropout))
            for m in self.modalities
        })
        self.fusion = ContextGatedFusion(
            self.modalities, config.hidden_size, config.num_heads, config.fusion_layers, config.attention_dropout,
            gate=config.context_gate, shared=config.share_pair_weights, feedforward=config.fusion_feedforward,
        )
        hidden = config.hidden_size
        self.head = nn.Sequential(
            nn.Linear(len(self.modalities) * hidden, hidden), nn.ReLU(), nn.LayerNorm(hidden),
            nn.Dropout(config.classifier_dropout), nn.Linear(hidden, config.num_classes),
        )
        self._backbones_frozen = False

    @classmethod
    def from_config(cls, config: EmoXFormerConfig) -> "EmoXFormer":
        """A new model; HF backbones load their pretrained weights by name or path."""
        resolve_image_settings(config)
        return cls(config)

    # ------------------------------------------------------------------ forward
    def encode(self, present: torch.Tensor, inputs: dict, encoder_outputs: dict | None = None) -> tuple[dict, dict, dict]:
        """Projected tokens, their validity and the rows present, per modality. A modality's rows come from
        `encoder_outputs[modality]` (`{hidden, valid}`, already encoded, e.g. the stage-1 feature cache) when given,
        else from its encoder over `inputs[modality]`."""
        present_all = present.bool()
        encoder_outputs = encoder_outputs or {}
        tokens, valid, rows_present = {}, {}, {}
        for column, modality in enumerate(MODALITIES):
            rows = present_all[:, column]
            if not rows.any() or (inputs.get(modality) is None and modality not in encoder_outputs):
                continue
            if modality not in self.modalities:
                raise ValueError(f"this model was trained without {modality}; it takes {', '.join(self.modalities)}")
            index = rows.nonzero(as_tuple=True)[0]
            if modality in encoder_outputs:
                hidden, hidden_valid = encoder_outputs[modality]["hidden"][index], encoder_outputs[modality]["valid"][index]
            else:
                hidden, hidden_valid = self.encoders[modality](**{k: v[index] for k, v in inputs[modality].items()})
            hidden = self.projections[modality](hidden)
            full = hidden.new_zeros((present_all.shape[0],) + hidden.shape[1:])
            full_valid = torch.zeros(full.shape[:2], dtype=torch.bool, device=full.device)
            tokens[modality] = full.index_copy(0, index, hidden)
            valid[modality] = full_valid.index_copy(0, index, hidden_valid)
            rows_present[modality] = rows
        return tokens, valid, rows_present

    def forward(self, batch: dict | None = None, *, present: torch.Tensor | None = None, text: dict | None = None,
                audio: dict | None = None, vision: dict | None = None, encoder_outputs: dict | None = None,
                labels: torch.Tensor | None = None, **_batch_extras) -> EmoXFormerOutput:
        """Logits [B, classes] (and the cross-entropy `loss` when `labels` are given; -1 = no label).

        Call it with a collated batch, `model(batch)`, or with its entries, `model(**processor(...))`; `batch`
        entries the model does not read (ids, dataset) are ignored."""
        if batch is not None:
            return self.forward(**batch)
        if present is None:
            raise ValueError("no `present` mask: pass a collated batch (see EmoXFormerProcessor)")
        tokens, valid, rows_present = self.encode(present, {"text": text, "audio": audio, "vision": vision}, encoder_outputs)
        if not tokens:
            raise ValueError("the batch holds no modality: give at least one of text, audio or vision")
        fused = self.fusion(tokens, valid, rows_present)
        batch_size = present.shape[0]
        pooled = []
        for modality in self.modalities:
            if modality in fused:
                weight = valid[modality].unsqueeze(-1).to(fused[modality].dtype)
                pooled.append((fused[modality] * weight).sum(1) / weight.sum(1).clamp(min=1))
            else:
                pooled.append(self.head[0].weight.new_zeros(batch_size, self.config.hidden_size))
        logits = self.head(torch.cat(pooled, dim=-1))
        loss = None
        if labels is not None and (labels >= 0).any():
            loss = nn.functional.cross_entropy(logits.float(), labels, ignore_index=-1)
        return EmoXFormerOutput(logits=logits, loss=loss)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities: softmax of logits divided by the fitted temperature."""
        return (logits.float() / self.config.temperature).softmax(-1)

    # ------------------------------------------------------------------ two-stage schedule
    def freeze_backbones(self, frozen: bool = True) -> None:
        """Stage 1: encoders frozen (and kept in eval mode); projections, fusion and head stay trainable."""
        self._backbones_frozen = frozen
        for parameter in self.encoders.parameters():
            parameter.requires_grad_(not frozen)
        self.encoders.train(self.training and not frozen)

    def gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute HF backbone activations during backward (less memory in stage 2, ~30% more compute)."""
        for encoder in self.encoders.values():
            backbone = getattr(encoder, "backbone", None)
            if backbone is None or not getattr(backbone, "supports_gradient_checkpointing", False):
                continue
            if enabled == bool(getattr(backbone, "is_gradient_checkpointing", False)):
                continue
            # transformers 5 renamed the switch; older releases only have the gradient_checkpointing_* names.
            prefix = "activation_checkpointing" if hasattr(backbone, "activation_checkpointing_enable") else "gradient_checkpointing"
            getattr(backbone, f"{prefix}_{'enable' if enabled else 'disable'}")()

    def unfreeze_backbones(self) -> None:
        self.freeze_backbones(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self._backbones_frozen:
            self.encoders.eval()  # frozen encoders keep dropout off and BatchNorm statistics fixed
        return self

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | Path, save_backbones: bool = True, tokenizer=None) -> Path:
        """Write `config.json` + `model.safetensors` (and the text tokenizer of an HF text backbone).

        With `save_backbones=False`, HF backbone weights are left out and referenced by name/path.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = EmoXFormerConfig.from_dict(self.config.to_dict())
        config.backbone_configs = {}
        excluded_prefixes = []
        for modality in self.modalities:
            if is_builtin(config.backbone(modality)):
                continue
            if save_backbones:
                config.backbone_configs[modality] = self.encoders[modality].backbone.config.to_dict()
            else:
                excluded_prefixes.append(f"encoders.{modality}.backbone.")
        state = {
            name: tensor.detach().cpu().clone().contiguous()
            for name, tensor in self.state_dict().items()
            if not name.startswith(tuple(excluded_prefixes))
        }
        atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
        atomic_write(directory / CONFIG_NAME, lambda tmp: config.save(tmp))
        if tokenizer is not None and "text" in self.modalities and not is_builtin(config.text_backbone):
            tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> "EmoXFormer":
        """Load a model saved by `save_pretrained`; only JSON and safetensors are read, never pickle."""
        directory = Path(directory)
        config = load_model_config(directory)
        saved_configs = dict(config.backbone_configs)
        try:
            model = cls(config, saved_configs)
        except (TypeError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{directory / CONFIG_NAME}: cannot build the model it describes ({exc})") from None
        try:
            state = load_file(str(directory / WEIGHTS_NAME), device=map_location)
        except Exception as exc:  # safetensors raises its own error types for corrupt or foreign files
            raise ModelLoadError(f"{directory / WEIGHTS_NAME}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
        expected = model.state_dict()
        referenced = tuple(f"encoders.{m}.backbone." for m in model.modalities if not is_builtin(config.backbone(m)) and m not in saved_configs)
        missing = [k for k in expected if k not in state and not k.startswith(referenced)]
        unexpected = [k for k in state if k not in expected]
        reshaped = [k for k in state if k in expected and state[k].shape != expected[k].shape]
        if missing or unexpected or reshaped:
            detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected else f"wrong shape {reshaped[:3]}"
            raise ModelLoadError(f"{directory / WEIGHTS_NAME}: weights do not match config.json ({detail})")
        model.load_state_dict(state, strict=False)
        return model


def model_modalities(config: EmoXFormerConfig) -> tuple[str, ...]:
    """`config.modalities` in the fixed order text, audio, vision; ValueError unless a non-empty subset of them."""
    unknown = sorted(set(config.modalities) - set(MODALITIES))
    if unknown or not config.modalities:
        raise ValueError(f"modalities must be a non-empty subset of {', '.join(MODALITIES)}, got {list(config.modalities)}")
    return tuple(m for m in MODALITIES if m in config.modalities)


def load_model_config(directory: Path) -> EmoXFormerConfig:
    """Check that a folder is an EmoXFormer model and read its config; refuse pickle files."""
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: model folder not found")
    unsafe = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in UNSAFE_SUFFIXES)
    if unsafe:
        raise ModelLoadError(f"{directory}: refusing to load a model folder holding pickle-based files ({', '.join(unsafe)}); only safetensors weights are read")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise ModelLoadError(f"{directory}: not an EmoXFormer model folder ({name} missing)")
    try:
        return EmoXFormerConfig.load(directory / CONFIG_NAME)
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{directory / CONFIG_NAME}: not an EmoXFormer config ({exc})") from None

