"""EmoXFormerConfig: every choice that defines a model, saved as `config.json` beside its weights."""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config_io import dotted, load_dataclass
from ..errors import ConfigError
from ..labels import EMOTIONS, NUM_CLASSES

BUILTIN = "builtin"
Modality = Literal["text", "audio", "vision"]
MODALITIES: tuple[str, ...] = typing.get_args(Modality)
# The one list of the settings that change what an encoder of each modality receives or makes of its input
# (tokenizer length, dialogue-text format, sample rate, clip length, image size, channels, colour mode and
# normalisation, the backbone and the encoder's own shape). The stage-1 feature cache keys its tables by them, and a
# processor saved into a model's folder must agree with that model's config.json on them.
INPUT_SETTINGS: dict[str, tuple[str, ...]] = {
    "text": ("text_backbone", "max_text_tokens", "text_context", "text_separator", "text_target_mark",
             "builtin_width", "builtin_text_layers", "text_layers"),
    "audio": ("audio_backbone", "sample_rate", "max_audio_seconds", "audio_pool_frames", "builtin_width",
              "builtin_audio_mels", "audio_layers", "audio_window_seconds", "audio_frames_per_token"),
    "vision": ("vision_backbone", "image_size", "image_channels", "image_mean", "image_std", "image_colour",
               "vision_tokens", "vision_stem_stride", "builtin_width"),
}


@dataclass
class EmoXFormerConfig:
    # Each backbone: a Hugging Face model name or local path, or "builtin" for the small from-scratch encoder.
    text_backbone: str = BUILTIN
    audio_backbone: str = BUILTIN
    vision_backbone: str = BUILTIN
    # The modalities the model has encoders for; training sets it from data.datasets (meld: text, ravdess: audio,
    # fer2013: vision), and the other backbones are never loaded.
    modalities: list[Modality] = field(default_factory=lambda: list(MODALITIES))
    hidden_size: int = 512
    num_heads: int = 4
    fusion_layers: int = 4
    projection_dropout: float = 0.3
    attention_dropout: float = 0.1
    classifier_dropout: float = 0.4
    num_classes: int = NUM_CLASSES
    labels: list[str] = field(default_factory=lambda: list(EMOTIONS))
    # Design switches.
    vision_tokens: Literal["pooled", "patches"] = "pooled"  # "pooled": one token per image; "patches": every patch token
    context_gate: bool = True  # gate the cross-modal context with sigmoid(W [x; ctx])
    share_pair_weights: bool = True  # the reference code: one attention per modality pair, used in both directions
    fusion_feedforward: bool = True
    # How the pooled modalities become an answer. "experts": each modality has its own head, trained on its own
    # dataset; a sample with several modalities gets the product of their calibrated, prior-corrected answers plus
    # a residual from the cross-attention fusion (trained on label-matched pairs the training step assembles from
    # each batch, see train.fusion_pairs). "concat": the reference code's one MLP over the concatenated pooled
    # modalities (absent ones zero), whose fusion never trains on disjoint data.
    head: Literal["experts", "concat"] = "experts"
    # The answer for a sample with several modalities (set after training to whichever validated better on the
    # label-matched validation examples): "model" the head's fused answer, "late" the product of the calibrated
    # single-modality answers with each dataset's class prior divided out (late fusion, no learned part).
    inference_fusion: Literal["model", "late"] = "model"
    # Wav2Vec2-style backbones: keep the checkpoint's SpecAugment (time masking while fine-tuning, stage 2 only).
    audio_spec_augment: bool = True
    # Group-norm speech backbones (wav2vec2-base): False runs a batch zero-padded in one call without an attention
    # mask (Hugging Face's advice for these checkpoints); True runs each clip alone, exact under padding but slow.
    audio_exact_padding: bool = False
    # Which hidden states of a pretrained backbone become its tokens: "last" the final layer; "weighted" a learned
    # softmax-weighted sum of every hidden state (embeddings included; SUPERB's weighted sum). The weights are not
    # part of the backbone: they train in stage 1 too, over frozen backbones, and the stage-1 feature cache then
    # holds every layer's states (as many times the last layer's size as the backbone has hidden states).
    text_layers: Literal["last", "weighted"] = "last"
    audio_layers: Literal["last", "weighted"] = "last"
    # Whisper speech backbones: the input window in seconds. 30 is Whisper's native window (every clip padded to
    # 30 s, 1500 tokens, the positions the checkpoint was trained on); a shorter one keeps the first
    # window*50 positional embeddings and runs on the first window*100 mel frames: 8 s costs about a fifth of the
    # compute, on inputs Whisper never saw (less padding after the speech). Clips longer than the window are cut.
    audio_window_seconds: float = 30.0
    # Whisper speech backbones (the speaker LSTM has audio_pool_frames; others ignore it): how many of its 20 ms
    # frames are averaged into one token (valid frames only). 1: every
    # frame a token (50 a second); 5: one every 100 ms, a fifth of the tokens for the fusion layers to process and
    # for the stage-1 feature cache to hold.
    audio_frames_per_token: int = 1
    # Preprocessing that belongs to the model.
    max_text_tokens: int = 128
    sample_rate: int = 16_000
    max_audio_seconds: float = 8.0  # longer clips keep their first seconds (RAVDESS clips last 2.9-5.3 s)
    image_size: int = 48  # HF vision backbones overwrite these from their own config at build time
    image_channels: int = 1
    image_mean: list[float] = field(default_factory=lambda: [0.5])
    image_std: list[float] = field(default_factory=lambda: [0.5])
    # How the training data looked, recorded at training time (training/input_format.py) so inference prepares its
    # inputs the same way. "grey": the faces were grey (FER2013), so photos and video frames are made grey too;
    # models saved before this field existed were trained on FER2013. "colour": images are used as given.
    image_colour: Literal["grey", "colour"] = "grey"
    # MELD text with dialogue context (data.text_context > 0): up to `text_context` earlier turns, joined by
    # `text_separator`, the classified turn marked `text_target_mark` (see data/context.py). 0: the bare utterance.
    text_context: int = 0
    text_separator: str = ""  # "" until recorded: the Preprocessor's default (the tokenizer's separator token)
    text_target_mark: str = ">>"
    # MobileNetV2 faces (vision_backbone=mobilenet_v2): 1 keeps the first convolution at full resolution, so a
    # 48x48 face yields the feature maps of a 96x96 image; 2 is the ImageNet network unchanged.
    vision_stem_stride: int = 2
    # Speech through the pretrained speaker LSTM (audio_backbone=speaker_lstm): its states averaged over this many
    # 10 ms frames form one token.
    audio_pool_frames: int = 10
    # The small built-in encoders.
    builtin_width: int = 128
    builtin_text_layers: int = 2
    builtin_audio_mels: int = 64
    # Softmax temperature fitted on validation data after training (probability calibration): `temperature` over
    # every validation sample, `modality_temperatures` per modality on that modality's own validation split (used
    # when present; models saved before it use `temperature` alone).
    temperature: float = 1.0
    modality_temperatures: dict[str, float] = field(default_factory=dict)
    # Each modality's class distribution in training (its datasets' training splits, add-one smoothed), divided out
    # when modalities are combined: MELD's text is 47 % neutral, RAVDESS nearly uniform, FER2013 25 % happy.
    # Empty: uniform (no correction).
    modality_priors: dict[str, list[float]] = field(default_factory=dict)
    # Late fusion's exponent per modality (inference_fusion "late" only; the model's fusion keeps 1, as it was
    # trained): a row's answer is the product of its modalities' calibrated, prior-corrected answers, each raised to
    # its weight. Fitted after training on real pairs (the validation rows of multimodal corpora,
    # train.fit_fusion_weights), where one modality may add nothing the others do not say, as RAVDESS's sentences,
    # the same for every emotion. Empty (or a modality missing): 1, the product of experts that is the Bayes answer
    # when the modalities are independent given the emotion (label-matched pairs).
    modality_weights: dict[str, float] = field(default_factory=dict)
    # Filled by save_pretrained: each HF backbone's own config, so weights saved in full rebuild offline.
    backbone_configs: dict = field(default_factory=dict)

    def backbone(self, modality: str) -> str:
        return getattr(self, f"{modality}_backbone")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, where: str = "") -> None:
        """Rules across fields, checked whenever a model config is loaded (config.json, or the experiment's `model`)."""
        key = lambda name: dotted(where, name)  # noqa: E731
        if not self.modalities:
            raise ConfigError(f"{key('modalities')} is empty: name one or more of {', '.join(MODALITIES)}")
        if self.num_heads < 1:
            raise ConfigError(f"{key('num_heads')} must be 1 or more, got {self.num_heads}")
        frames = self.audio_window_seconds * 100  # Whisper: 100 mel frames a second, 2 frames a token
        if self.audio_window_seconds <= 0 or abs(frames - round(frames)) > 1e-6 or round(frames) % 2:
            raise ConfigError(f"{key('audio_window_seconds')} must be a positive multiple of 0.02 s (a whole number of "
                              f"Whisper tokens), got {self.audio_window_seconds}")
        if self.audio_frames_per_token < 1:
            raise ConfigError(f"{key('audio_frames_per_token')} must be 1 or more (Whisper frames averaged into one "
                              f"token), got {self.audio_frames_per_token}")
        if list(self.labels) != list(EMOTIONS) or self.num_classes != NUM_CLASSES:
            raise ConfigError(f"{key('labels')} must be the {NUM_CLASSES} emotions in the order {', '.join(EMOTIONS)} (every "
                              f"output and dataset reader uses that order), got {', '.join(map(str, self.labels))}")
        temperatures = {"temperature": self.temperature,
                        **{f"modality_temperatures.{m}": t for m, t in self.modality_temperatures.items()}}
        for name, value in temperatures.items():
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{key(name)} must be a positive number (it divides the logits), got {value}")
        for m, weight in self.modality_weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise ConfigError(f"{key('modality_weights.' + m)} must be 0 or more, got {weight}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"{key('hidden_size')} ({self.hidden_size}) must be a multiple of {key('num_heads')} "
                              f"({self.num_heads}): each attention head takes an equal share")

    @classmethod
    def from_dict(cls, values: dict, where: str = "") -> "EmoXFormerConfig":
        """Check and validate a config mapping (config_io.load_dataclass); ValueError naming the key if it is not
        a valid model config."""
        try:
            return load_dataclass(cls, values, where)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "EmoXFormerConfig":
        values = json.loads(Path(path).read_text())
        if isinstance(values, dict):
            values.setdefault("head", "concat")  # models saved before per-modality heads had the reference head
        return cls.from_dict(values)
