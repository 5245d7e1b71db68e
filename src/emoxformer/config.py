"""Typed experiment configuration (model, data, training), loaded from and saved to YAML.

Overrides use dotted keys with YAML values: ``train.batch_size=16``, ``data.datasets=[meld,fer2013]``.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .io_utils import atomic_write
from .labels import DATASET_NAMES
from .model.config import EmoXFormerConfig



@dataclass
class AugmentConfig:
    """Training-only augmentation (the reference code's settings); validation and test are never augmented.

    The reference code's random gain (0.9-1.1) is gone: audio is normalised to unit variance, which undid it.
    `noise_snr_db` replaces it, off by default (as the gain effectively was): e.g. [15, 30] adds white noise at an
    SNR drawn from 15-30 dB, which normalisation keeps.
    """

    enabled: bool = True
    word_dropout: float = 0.05
    max_shift: int = 400  # samples at 16 kHz
    noise_snr_db: list[float] | None = None  # [low, high] in dB; None: no noise
    crop_scale_min: float = 0.9
    hflip: bool = True
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        snr = self.noise_snr_db
        if snr is not None and (len(snr) != 2 or snr[0] > snr[1]):
            raise ConfigError(f"data.augment.noise_snr_db must be [low, high] with low <= high (dB), got {snr}")


@dataclass
class DataConfig:
    root: str | None = None
    meld: str | None = None  # per-dataset paths override ROOT/meld, ROOT/ravdess, ROOT/fer2013
    ravdess: str | None = None
    fer2013: str | None = None
    datasets: list[str] = field(default_factory=lambda: list(DATASET_NAMES))
    ravdess_split: str = "actor"  # "actor" (speaker-independent) or "random" (the reference code's leaky split)
    ravdess_val_actors: list[int] = field(default_factory=lambda: [19, 20])
    ravdess_test_actors: list[int] = field(default_factory=lambda: [21, 22, 23, 24])
    ravdess_fold: int | None = None  # 1..6: EmoBox's actor fold (test actors; see data/ravdess.py), replacing the two above
    ravdess_include_song: bool = False
    ravdess_replicate: int = 7  # the reference code replicates RAVDESS's small training set x7
    fer_val_fraction: float = 0.1
    split_seed: int = 42
    skip_bad: bool = False
    balanced: bool = True  # each epoch draws 1/k of its samples from each of k datasets
    bucket_by_length: bool = False  # batches of similar text/audio lengths (less padding); mixing per batch is kept
    pairing: str = "none"  # "none": one modality per example (the reference code); "label": label-matched multimodal examples
    modality_dropout: float = 0.0  # drop each present modality of a training example with this probability (never all)
    text_context: int = 0  # MELD: precede each utterance by up to k earlier utterances of its dialogue
    samples_per_epoch: int | None = None  # default: the size of the (replicated) training sets; ignored with pairing
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class StageConfig:
    epochs: int = 50
    lr: float = 1e-4
    patience: int = 20
    freeze_backbones: bool = True
    # Learning rate of each modality's encoder ({text: 3e-5, vision: 1e-3}); an encoder not named here, and the
    # projections, fusion and head, train at `lr`. Pretrained and from-scratch encoders want very different rates.
    encoder_lr: dict = field(default_factory=dict)
    # "plateau": ReduceLROnPlateau on validation loss (the reference code's); "cosine": linear warm-up over `warmup` of the
    # stage's steps, then cosine decay to zero by its last step (for short fine-tuning runs).
    schedule: str = "plateau"
    warmup: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in ("plateau", "cosine"):
            raise ConfigError(f"train.stageN.schedule must be plateau or cosine, got {self.schedule!r}")
        unknown = sorted(set(self.encoder_lr) - {"text", "audio", "vision"})
        if unknown:
            raise ConfigError(f"train.stageN.encoder_lr: unknown modality {', '.join(unknown)} (use text, audio, vision)")
        try:
            self.encoder_lr = {modality: float(lr) for modality, lr in self.encoder_lr.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"train.stageN.encoder_lr: learning rates must be numbers, got {self.encoder_lr}") from None
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(f"train.stageN.warmup must be a fraction of the stage's steps in [0, 1), got {self.warmup}")


@dataclass
class TrainConfig:
    seed: int = 42
    batch_size: int = 32
    eval_batch_size: int = 64
    weight_decay: float = 1e-4
    loss: str = "focal"  # "focal" or "cross_entropy"
    focal_gamma: float = 2.0
    stage1: StageConfig = field(default_factory=lambda: StageConfig(epochs=50, lr=1e-4, patience=20, freeze_backbones=True))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(epochs=40, lr=5e-5, patience=20, freeze_backbones=False))
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    monitor: str = "val/score"  # mean over datasets of validation weighted-F1
    monitor_mode: str = "auto"  # "min" or "max" for the monitor; auto: min when its name contains "loss"
    grad_clip: float = 1.0
    feature_cache: bool = True  # stage 1 with frozen backbones: compute encoder outputs once (see feature_cache.py)
    feature_cache_views: int = 1  # 1: un-augmented inputs; K > 1: K views per training sample (view 0 un-augmented)
    accumulate_grad_batches: int = 1
    gradient_checkpointing: bool = False  # HF backbones recompute activations in the backward pass (stage 2 memory)
    num_workers: int | None = None  # DataLoader workers; None: min(4, CPU cores - 1)
    accelerator: str = "auto"  # cpu, gpu, auto
    devices: str | int = "auto"  # processes per node (DDP); batch_size is per process
    num_nodes: int = 1
    strategy: str = "auto"  # auto, ddp, fsdp, ...
    sync_batchnorm: bool = True  # BatchNorm statistics over all processes, as one process would see them
    precision: str = "32-true"  # 32-true, bf16-mixed, 16-mixed
    log_every_n_steps: int = 10
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.monitor_mode not in ("auto", "min", "max"):
            raise ConfigError(f"train.monitor_mode must be auto, min or max, got {self.monitor_mode!r}")

    @property
    def resolved_monitor_mode(self) -> str:
        """"min" or "max": whether a lower or a higher `monitor` value is better."""
        if self.monitor_mode != "auto":
            return self.monitor_mode
        return "min" if "loss" in self.monitor else "max"


@dataclass
class ExperimentConfig:
    model: EmoXFormerConfig = field(default_factory=EmoXFormerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def build_section(cls, values: Any, where: str):
    """Construct dataclass `cls` from a mapping, rejecting unknown keys with their dotted path."""
    if not dataclasses.is_dataclass(cls):
        return values
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(f'{where}.{k}'.lstrip('.') for k in unknown)}; known: {', '.join(sorted(known))}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        kwargs[name] = build_section(hint, value, f"{where}.{name}".lstrip(".")) if dataclasses.is_dataclass(hint) else _check(hint, value, f"{where}.{name}".lstrip("."))
    return cls(**kwargs)


def _check(hint, value, where: str):
    """Light type check of a leaf value (YAML gives ints where floats are meant; accept those)."""
    origin = typing.get_origin(hint)
    options = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        base = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return value
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if base is float and isinstance(value, str):  # YAML 1.1 reads "3e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if base is dict and isinstance(value, dict):
            return value
        if base is list and isinstance(value, (list, tuple, str, int, float)):
            return _check_list(option, value, where)
        if base in (int, str, bool) and type(value) is base:
            return value
        if base is Any:
            return value
    raise ConfigError(f"{where}: {value!r} is not a valid {getattr(hint, '__name__', str(hint))}")


def _check_list(hint, value, where: str) -> list:
    """A list, or its comma form `a,b,c` from an override (`21` alone: one element); each element checked against
    the list's element type."""
    element_hint = (typing.get_args(hint) or (Any,))[0]
    if isinstance(value, str):
        value = [_parse_element(text.strip(), element_hint) for text in value.split(",") if text.strip()]
    elif not isinstance(value, (list, tuple)):
        value = [value]
    return [_check(element_hint, element, f"{where}[{index}]") for index, element in enumerate(value)]


def _parse_element(text: str, element_hint):
    """One element of a comma list as YAML would read it (`21` -> 21), except where strings are wanted (YAML 1.1
    would turn `no` into False)."""
    if element_hint is str:
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def config_from_dict(values: dict) -> ExperimentConfig:
    return build_section(ExperimentConfig, values, "")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (a path, or a built-in name such as `quickstart` or `paper`) and apply overrides."""
    path = resolve_config_path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    for override in overrides or []:
        apply_override(values, override)
    return config_from_dict(values)


def resolve_config_path(path: str | Path) -> Path:
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    builtin = Path(__file__).parent / "configs" / f"{path}.yaml"
    if builtin.is_file():
        return builtin
    raise ConfigError(f"{path}: config file not found (built-in configs: {', '.join(builtin_configs())})")


def builtin_configs() -> list[str]:
    return sorted(p.stem for p in (Path(__file__).parent / "configs").glob("*.yaml"))


def apply_override(values: dict, override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. train.batch_size=16")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    node = values
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
    node[parts[-1]] = value


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    atomic_write(path, yaml.safe_dump(to_dict(config), sort_keys=False))
