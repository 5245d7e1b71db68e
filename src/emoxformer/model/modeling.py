"""The EmoXFormer module: per-modality dispatch, projection, fusion, masked pooling, head; save and load."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ModelLoadError
from ..io_utils import atomic_write
from .config import MODALITIES, EmoXFormerConfig
from .encoders import build_encoder, is_builtin, resolve_image_settings
from .files import CONFIG_NAME, TOKENIZER_DIR, UNSAFE_SUFFIXES, WEIGHTS_NAME, load_model_config  # noqa: F401 (re-exported)
from .fusion import ContextGatedFusion



@dataclass
class EmoXFormerOutput:
    """What the model returns: `logits` [B, classes], and `loss` (cross-entropy) when labels were given.

    A sample with one modality gets that modality's logits; a sample with several gets the fused answer (the
    `fusion` forward asked for), already calibrated. `modality_logits[m]` [B, classes] holds each modality's own
    (uncalibrated) answer on the rows that have it (other rows: zeros). `pair_logits` are the fused answers of the
    label-matched pairs a training step asked for (`pair_rows`)."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    modality_logits: dict[str, torch.Tensor] = field(default_factory=dict)
    pair_logits: torch.Tensor | None = None
    present: torch.Tensor | None = None  # the rows' modalities, for `EmoXFormer.probabilities(output)`


FUSIONS = ("model", "late")


def _mlp(inputs: int, hidden: int, classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.LayerNorm(hidden), nn.Dropout(dropout),
                         nn.Linear(hidden, classes))


class EmoXFormer(nn.Module):
    """Emotion classifier over any subset of {text, audio, vision} per sample.

    `forward` takes `present` (bool [B, 3], columns text, audio, vision) and, for each modality present in at
    least one sample, full-batch inputs (rows of absent samples are ignored): `text = {input_ids, attention_mask}`,
    `audio = {waveform, lengths}`, `vision = {pixel_values}`, or that modality's `encoder_outputs`. Each encoder
    runs only on the rows that have its modality. It returns an `EmoXFormerOutput`.

    Only the modalities of `config.modalities` get an encoder, a projection and fusion weights. Each modality's
    own answer comes from its tokens passed through the fusion layers alone (no other modality to attend to) and
    pooled: with `head="experts"` into that modality's head, with `head="concat"` into the one head over the
    concatenated pooled modalities (others zero). A sample with several modalities is fused (see `forward`).
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
        hidden, classes, dropout = config.hidden_size, config.num_classes, config.classifier_dropout
        if config.head == "experts":
            self.heads = nn.ModuleDict({m: _mlp(hidden, hidden, classes, dropout) for m in self.modalities})
            if len(self.modalities) > 1:
                # "fused": the cross-attention's correction to the product of the experts. It starts near zero, so an
                # untrained fusion answers as late fusion does, and learns from the training step's label-matched pairs.
                self.heads["fused"] = _mlp(hidden, hidden, classes, dropout)
                nn.init.normal_(self.heads["fused"][-1].weight, std=1e-3)
                nn.init.zeros_(self.heads["fused"][-1].bias)
        else:
            self.head = _mlp(len(self.modalities) * hidden, hidden, classes, dropout)
        self._backbones_frozen = False

    @property
    def classifier(self) -> nn.Module:
        """The head(s) after pooling: the per-modality and fused heads ("experts"), or the one head ("concat")."""
        return self.heads if self.config.head == "experts" else self.head

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
                labels: torch.Tensor | None = None, fusion: str | None = None, pair_rows: dict | None = None,
                **_batch_extras) -> EmoXFormerOutput:
        """Logits [B, classes] (and the cross-entropy `loss` when `labels` are given; -1 = no label).

        `fusion` decides the answer for samples with several modalities: "model" (the head's fused answer) or
        "late" (the product of the single-modality answers, calibrated, each modality's training prior divided out);
        None: the model's default, `config.inference_fusion` (the one that validated better).
        `pair_rows` ({modality: LongTensor [P]}, a row of this batch or -1 each): P extra samples assembled from the
        batch's rows (training/pairs.py), fused from those rows' tokens; their logits are `pair_logits`.

        Call it with a collated batch, `model(batch)`, or with its entries, `model(**processor(...))`; `batch`
        entries the model does not read (ids, dataset) are ignored."""
        if batch is not None:
            return self.forward(**batch, fusion=fusion, pair_rows=pair_rows)
        if present is None:
            raise ValueError("no `present` mask: pass a collated batch (see EmoXFormerProcessor)")
        fusion = fusion or self.config.inference_fusion
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        tokens, valid, rows_present = self.encode(present, {"text": text, "audio": audio, "vision": vision}, encoder_outputs)
        if not tokens:
            raise ValueError("the batch holds no modality: give at least one of text, audio or vision")
        counts = torch.stack(list(rows_present.values())).sum(0)
        several = counts > 1
        # Each modality's own answer: its tokens through the fusion layers alone (nothing to attend to), pooled.
        alone = {m: self.fusion({m: tokens[m]}, {m: valid[m]}, {m: rows})[m] for m, rows in rows_present.items()}
        modality_logits = {m: self._modality_logits(m, _pooled(alone[m], valid[m])) * rows_present[m][:, None]
                           for m in alone}
        logits = torch.zeros_like(next(iter(modality_logits.values())))
        for m, rows in rows_present.items():
            logits = torch.where((rows & ~several)[:, None], modality_logits[m], logits)
        if several.any():
            joint = self.fusion(tokens, valid, {m: rows & several for m, rows in rows_present.items()})
            fused = self._fused_logits(joint, valid, rows_present, modality_logits, fusion)
            logits = torch.where(several[:, None], fused.to(logits.dtype), logits)
        pair_logits = self._pair_logits(tokens, valid, modality_logits, pair_rows) if pair_rows else None
        loss = None
        if labels is not None and (labels >= 0).any():
            loss = nn.functional.cross_entropy(logits.float(), labels, ignore_index=-1)
        return EmoXFormerOutput(logits=logits, loss=loss, modality_logits=modality_logits, pair_logits=pair_logits,
                                present=present.bool())

    def _modality_logits(self, modality: str, pooled: torch.Tensor) -> torch.Tensor:
        if self.config.head == "experts":
            return self.heads[modality](pooled)
        blocks = [pooled if m == modality else torch.zeros_like(pooled) for m in self.modalities]
        return self.head(torch.cat(blocks, dim=-1))

    def _fused_logits(self, fused_tokens: dict, valid: dict, rows_present: dict, modality_logits: dict,
                      fusion: str) -> torch.Tensor:
        """The answer for rows with several modalities (other rows: meaningless)."""
        experts = self.late_fusion_logits(modality_logits, rows_present, weighted=fusion == "late")
        if fusion == "late":
            return experts
        pooled = {m: _pooled(fused_tokens[m], valid[m]) for m in fused_tokens}
        if self.config.head == "concat":
            batch = next(iter(pooled.values())).shape[0]
            blocks = [pooled[m] * rows_present[m][:, None] if m in pooled else self._zeros(batch) for m in self.modalities]
            return self.head(torch.cat(blocks, dim=-1))
        return experts + self.heads["fused"](_mean_over_modalities(pooled, rows_present))

    def late_fusion_logits(self, modality_logits: dict, rows_present: dict, weighted: bool = True) -> torch.Tensor:
        """Sum over the modalities a row has of w_m (log softmax(logits_m / T_m) - log prior_m): the product of the
        calibrated single-modality posteriors with each modality's training prior divided out (a uniform prior
        over the emotions stays), each raised to its fitted weight (`config.modality_weights`, default 1; `weighted`
        False: every weight 1, as the model's fusion was trained), as log-probabilities up to a constant per row."""
        total = 0.0
        for m, logits in modality_logits.items():
            term = (logits.float() / self.modality_temperature(m)).log_softmax(-1) - self.log_prior(m, logits.device)
            weight = self.modality_weight(m) if weighted else 1.0
            total = total + weight * term * rows_present[m][:, None]
        return total.to(next(iter(modality_logits.values())).dtype)

    def _pair_logits(self, tokens: dict, valid: dict, modality_logits: dict, pair_rows: dict) -> torch.Tensor:
        """Fused logits of samples assembled from this batch's rows (each modality's tokens taken from its row).
        The tokens and the single-modality answers are detached: the pairs train the fusion (cross-attention,
        gates, fusion head), not the encoders or the experts, whose own datasets alone decide them."""
        rows = {m: index for m, index in pair_rows.items() if m in tokens}
        has = {m: index >= 0 for m, index in rows.items()}
        take = {m: index.clamp(min=0) for m, index in rows.items()}
        pair_tokens = {m: tokens[m][take[m]].detach() for m in rows}
        pair_valid = {m: valid[m][take[m]] & has[m][:, None] for m in rows}
        fused = self.fusion(pair_tokens, pair_valid, has)
        pooled = {m: _pooled(fused[m], pair_valid[m]) for m in fused}
        if self.config.head == "concat":
            batch = next(iter(pooled.values())).shape[0]
            blocks = [pooled[m] * has[m][:, None] if m in pooled else self._zeros(batch) for m in self.modalities]
            return self.head(torch.cat(blocks, dim=-1))
        experts = self.late_fusion_logits({m: modality_logits[m][take[m]].detach() for m in rows}, has, weighted=False)
        return experts + self.heads["fused"](_mean_over_modalities(pooled, has))

    def _zeros(self, batch: int) -> torch.Tensor:
        weight = next(self.projections.parameters())
        return weight.new_zeros(batch, self.config.hidden_size)

    def modality_temperature(self, modality: str) -> float:
        return float(self.config.modality_temperatures.get(modality, self.config.temperature))

    def modality_weight(self, modality: str) -> float:
        return float(self.config.modality_weights.get(modality, 1.0))

    def log_prior(self, modality: str, device) -> torch.Tensor:
        prior = self.config.modality_priors.get(modality)
        if not prior:
            return torch.zeros(self.config.num_classes, device=device)
        return torch.tensor(prior, dtype=torch.float32, device=device).log()

    def probabilities(self, logits: torch.Tensor | EmoXFormerOutput, present: torch.Tensor | None = None) -> torch.Tensor:
        """Calibrated class probabilities of a forward's output (or of its logits with their `present` mask). A row
        with one modality is divided by that modality's fitted temperature; a fused row is calibrated already.
        Logits without `present` are all taken for single-modality rows and divided by the overall temperature."""
        if isinstance(logits, EmoXFormerOutput):
            logits, present = logits.logits, logits.present
        logits = logits.float()
        if present is None:
            return (logits / self.config.temperature).softmax(-1)
        present = present.bool().to(logits.device)
        counts = present.sum(-1)
        scale = torch.ones(logits.shape[0], device=logits.device)
        for column, modality in enumerate(MODALITIES):
            scale = scale.masked_fill((counts == 1) & present[:, column], self.modality_temperature(modality))
        return (logits / scale[:, None]).softmax(-1)

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

    def push_to_hub(self, repo_id: str, *, tokenizer=None, metrics: dict | None = None, training_config: dict | None = None,
                    license: str | None = None, private: bool | None = None, token: str | bool | None = None,
                    revision: str | None = None, commit_message: str | None = None) -> str:
        """Upload the model (as `save_pretrained` writes it) to the Hugging Face Hub repo `repo_id`, creating it if
        needed, with a generated model card (README.md); returns the commit's URL. `metrics` (a run's metrics.json)
        and `training_config` (its config.yaml, as a dict) go into the card. See `emoxformer.model.hub`."""
        import tempfile

        from .hub import push_folder

        with tempfile.TemporaryDirectory(prefix="emoxformer-model-") as folder:
            self.save_pretrained(folder, tokenizer=tokenizer)
            return push_folder(folder, repo_id, metrics=metrics, training_config=training_config, license=license,
                               private=private, token=token, revision=revision, commit_message=commit_message)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu", *, revision: str | None = None,
                        cache_dir: str | Path | None = None, token: str | bool | None = None) -> "EmoXFormer":
        """Load a model saved by `save_pretrained`, from a local folder or a Hugging Face Hub id (`org/name`, at
        `revision`; a local folder of that name wins). Only JSON and safetensors are read, never pickle."""
        from .hub import resolve_model_dir

        directory = resolve_model_dir(directory, revision=revision, cache_dir=cache_dir, token=token)
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


def _pooled(tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The mean of each row's valid tokens (zeros for a row with none)."""
    weight = valid.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weight).sum(1) / weight.sum(1).clamp(min=1)


def _mean_over_modalities(pooled: dict, rows_present: dict) -> torch.Tensor:
    """Aggregation: the mean of the pooled modalities each row has."""
    total = sum(pooled[m] * rows_present[m][:, None].to(pooled[m].dtype) for m in pooled)
    count = sum(rows_present[m].to(total.dtype) for m in pooled)
    return total / count.clamp(min=1)[:, None]
