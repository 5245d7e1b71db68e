"""EmoXFormerProcessor: raw text, waveforms and face images -> the batch an EmoXFormer takes (preprocessing plus
collation, as a transformers processor).

    processor = EmoXFormerProcessor.from_pretrained("runs/quickstart/best")
    model = EmoXFormer.from_pretrained("runs/quickstart/best").eval()
    output = model(**processor(text=["so happy", None], audio=[None, waveform], sampling_rate=16_000))
    probabilities = model.probabilities(output)   # calibrated, each row by its own modalities

The processor's settings are the model's own (config.json: tokenizer length, sample rate, audio length, image size,
colour mode and normalisation, dialogue-text format), so it prepares inputs exactly as training and the Predictor do.
Saved beside the model, it adds only the tokenizer of an HF text backbone (`tokenizer/`).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.collate import Collator
from ..data.context import dialogue_text
from ..data.text_cleaning import clean_utterance
from ..errors import InputError
from ..io_utils import atomic_write
from ..labels import EMOTIONS
from ..model.batching import move_to
from ..model.config import INPUT_SETTINGS, MODALITIES, EmoXFormerConfig
from ..model.modeling import CONFIG_NAME, TOKENIZER_DIR, EmoXFormer
from ..model.preprocessing import Preprocessor
from .media import read_audio, read_image

MODALITY_NAMES = {"text": "text", "audio": "audio", "vision": "image"}
MAX_AUDIO_SECONDS = 600.0  # longer input is refused (the model itself reads its first `max_audio_seconds`)
MAX_IMAGE_PIXELS = 40_000_000


class EmoXFormerBatch(dict):
    """The processor's output: the model's keyword arguments (`present`, and `text`, `audio`, `vision` for the
    modalities given, `labels` when given). `batch.to(device)` moves its tensors."""

    def to(self, device: str | torch.device) -> "EmoXFormerBatch":
        return EmoXFormerBatch(move_to(self, torch.device(device)))


class EmoXFormerProcessor:
    """Preprocessing plus collation for one model.

    `processor(text=..., audio=..., images=..., sampling_rate=..., labels=...)` takes one input or a list per
    modality. The batch rule: every list given has the same length, one entry per sample, and `None` marks a
    sample without that modality (each sample needs at least one); a single input (a string, one waveform array,
    one image) is a batch of one. Text is cleaned and, for a model trained with dialogue context, formatted as in
    training (`context`: each sample's earlier turns, `speakers`: who says each text). Audio is a mono or
    multi-channel waveform array (or a file path) at `sampling_rate`, resampled to the model's rate. Images are face
    crops, arrays or PIL images, grey or colour, any size (the Predictor finds faces in photos; the processor does
    not). Labels are class indices or emotion names.
    """

    def __init__(self, config: EmoXFormerConfig, tokenizer=None):
        self.preprocessor = Preprocessor(config, tokenizer)
        self.collator = Collator(self.preprocessor.pad_id)

    @property
    def config(self) -> EmoXFormerConfig:
        return self.preprocessor.config

    @property
    def tokenizer(self):
        return self.preprocessor.tokenizer

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.config.modalities)

    # ------------------------------------------------------------------ construction and persistence
    @classmethod
    def for_model(cls, model: EmoXFormer | EmoXFormerConfig) -> "EmoXFormerProcessor":
        """The processor of a model (or model config) not yet saved: an HF text backbone's own tokenizer."""
        return cls.from_preprocessor(Preprocessor.for_model(model.config if isinstance(model, EmoXFormer) else model))

    @classmethod
    def from_preprocessor(cls, preprocessor: Preprocessor) -> "EmoXFormerProcessor":
        return cls(preprocessor.config, preprocessor.tokenizer)

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None,
                        token: str | bool | None = None) -> "EmoXFormerProcessor":
        """The processor saved in a folder (a model's folder, e.g. RUN_DIR/best) or a Hugging Face Hub model (`org/name`,
        at `revision`): its config.json and tokenizer."""
        from ..model.hub import resolve_model_dir

        directory = resolve_model_dir(directory, revision=revision, cache_dir=cache_dir, token=token)
        if not (directory / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{directory}: no {CONFIG_NAME} (save a model or a processor there first)")
        config = EmoXFormerConfig.load(directory / CONFIG_NAME)
        return cls.from_preprocessor(Preprocessor.for_model(config, directory))

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the processor into a folder, usually beside its model: the tokenizer of an HF text backbone, and
        config.json unless the folder holds one already (a model's, whose preprocessing settings must then be the
        processor's: ValueError otherwise)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        existing = directory / CONFIG_NAME
        if existing.is_file():
            saved = EmoXFormerConfig.load(existing)
            differing = _differing_input_settings(saved, self.config)
            if differing:
                raise ValueError(f"{existing}: a model whose input settings differ from this processor's "
                                 f"({', '.join(differing)}); save the processor into another folder")
        else:
            atomic_write(existing, lambda tmp: self.config.save(tmp))
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        return directory

    # ------------------------------------------------------------------ one input
    def check_modalities(self, inputs: dict) -> None:
        """InputError for an input of a modality the model has no encoder for (trained without that dataset)."""
        for modality, value in inputs.items():
            if value is not None and modality not in self.modalities:
                takes = " and ".join(MODALITY_NAMES[m] for m in self.modalities)
                raise InputError(f"this model was trained without {MODALITY_NAMES[modality]}: it takes only {takes}")

    def prepare_text(self, text: str, context: Sequence[str | tuple[str, str]] | None = None, speaker: str | None = None,
                     notes: list[str] | None = None) -> list[int]:
        """Token ids of `text` in the format the model was trained on (with its dialogue context, if any).
        `context`: earlier turns, oldest first, each "Speaker: utterance" or a (speaker, utterance) pair."""
        utterance = clean_utterance(str(text))
        if not utterance:
            raise InputError("text is empty")
        config = self.config
        if config.text_context <= 0:
            if context or speaker:
                raise InputError("this model was trained on single utterances (data.text_context=0): "
                                 "it takes no dialogue context or speaker")
            return self.preprocessor.tokenize(utterance)
        turns = [_turn(t) for t in ([context] if isinstance(context, str) else context or [])]
        if len(turns) > config.text_context:
            if notes is not None:
                notes.append(f"used the last {config.text_context} of {len(turns)} context turns, as in training")
            turns = turns[-config.text_context:]
        formatted = dialogue_text(turns, clean_utterance(speaker or ""), utterance, self.preprocessor.context_separator,
                                  config.text_target_mark)
        return self.preprocessor.tokenize(formatted, keep_end=True)  # training keeps the classified turn, at the end

    def prepare_audio(self, audio, sampling_rate: int | None, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
        """A waveform array at `sampling_rate` (or an audio file) -> the model's normalised mono waveform."""
        wave = read_audio(audio, sampling_rate, self.config.sample_rate, max_seconds)
        return self.preprocessor.prepare_audio(wave)

    def prepare_image(self, image, max_pixels: int = MAX_IMAGE_PIXELS):
        """A face (array, PIL image or image file), left at its size for the collator to prepare with its batch."""
        return self.preprocessor.pending_image(read_image(image, max_pixels))

    def prepare_sample(self, text: str | None = None, audio=None, image=None, sampling_rate: int | None = None,
                       context=None, speaker: str | None = None, label: int | str | None = None,
                       max_audio_seconds: float = MAX_AUDIO_SECONDS) -> dict:
        """One prepared sample for `collate` (with `notes` on how its inputs were used); InputError for unusable
        input."""
        self.check_modalities({"text": text, "audio": audio, "vision": image})
        sample: dict = {"notes": []}
        if text is not None:
            sample["text"] = self.prepare_text(text, context, speaker, sample["notes"])
        elif context or speaker:
            raise InputError("dialogue context and speaker go with a text to classify: pass text too")
        if audio is not None:
            sample["audio"] = self.prepare_audio(audio, sampling_rate, max_audio_seconds)
        if image is not None:
            sample["vision"] = self.prepare_image(image)
        if not any(m in sample for m in MODALITIES):
            raise InputError("no input given: pass at least one of text, audio, image or video")
        if label is not None:
            sample["label"] = _label_index(label)
        return sample

    # ------------------------------------------------------------------ a batch
    def collate(self, samples: list[dict]) -> dict:
        """Prepared samples -> the full collated batch (the training loaders' format: also `ids` and `dataset`)."""
        return self.collator(samples)

    def __call__(self, text=None, audio=None, images=None, *, sampling_rate: int | None = None, labels=None,
                 context=None, speakers=None) -> EmoXFormerBatch:
        """The model's keyword arguments for a batch; see the class docstring for the batch rule."""
        given = {name: _as_batch(value, name) for name, value in
                 (("text", text), ("audio", audio), ("images", images), ("context", context), ("speakers", speakers),
                  ("labels", labels)) if value is not None}
        inputs = [name for name in ("text", "audio", "images") if name in given]
        if not inputs:
            raise InputError("no input given: pass at least one of text, audio or images")
        sizes = {name: len(values) for name, values in given.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError("every list given holds one entry per sample, so all have the same length; got "
                             + ", ".join(f"{name} {size}" for name, size in sizes.items()))
        size = next(iter(sizes.values()))
        if size == 0:
            raise InputError("the batch is empty")
        if sampling_rate is None and any(a is not None and not isinstance(a, (str, Path)) for a in given.get("audio", ())):
            raise InputError("audio arrays need their sample rate: pass sampling_rate=... (e.g. 16000)")
        column = lambda name, row: given[name][row] if name in given else None  # noqa: E731
        samples = []
        for row in range(size):
            try:
                samples.append(self.prepare_sample(
                    column("text", row), column("audio", row), column("images", row), sampling_rate,
                    column("context", row), column("speakers", row), column("labels", row)))
            except InputError as exc:
                raise InputError(f"sample {row}: {exc}" if size > 1 else str(exc)) from None
        batch = self.collate(samples)
        kept = ("present", *MODALITIES) + (("labels",) if "labels" in given else ())
        return EmoXFormerBatch((key, batch[key]) for key in kept if key in batch)


def _differing_input_settings(saved: EmoXFormerConfig, config: EmoXFormerConfig) -> list[str]:
    """The settings that decide how inputs are prepared (the modalities, and each one's INPUT_SETTINGS) in which two
    model configs differ."""
    if list(saved.modalities) != list(config.modalities):
        return ["modalities"]
    names = dict.fromkeys(name for modality in MODALITIES if modality in config.modalities
                          for name in INPUT_SETTINGS[modality])
    return [name for name in names if getattr(saved, name) != getattr(config, name)]


def _as_batch(value, name: str) -> list:
    """A list or tuple is a batch; anything else (a string, one waveform, one image, one label) is a batch of one.
    Labels may also come as an array or tensor."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if name == "labels" and isinstance(value, (np.ndarray, torch.Tensor)):
        return [int(v) for v in np.asarray(value).reshape(-1)]
    if name == "context":
        raise ValueError("context holds each sample's earlier turns: a list with one entry (a list of turns) per sample")
    return [value]


def _label_index(label: int | str) -> int:
    if isinstance(label, str):
        if label not in EMOTIONS:
            raise InputError(f"unknown label {label!r}: one of {', '.join(EMOTIONS)}")
        return EMOTIONS.index(label)
    index = int(label)
    if not -1 <= index < len(EMOTIONS):
        raise InputError(f"label {index} is out of range: 0 to {len(EMOTIONS) - 1} (-1: none)")
    return index


def _turn(turn) -> tuple[str, str]:
    """An earlier dialogue turn as (speaker, utterance): a pair, or a "Speaker: utterance" string kept whole."""
    if isinstance(turn, str):
        return "", clean_utterance(turn)
    speaker, utterance = turn
    return clean_utterance(str(speaker)), clean_utterance(str(utterance))

