"""Typed experiment configuration (model, data, training), loaded from and saved to YAML.

Overrides use dotted keys with YAML values: ``train.batch_size=16``, ``data.datasets=[meld,fer2013]``.
Loading (config_io.load_dataclass) checks every value against its field's type, `Literal` choices included, and
runs each section's `validate`, so a config that cannot train is refused before any model or data loads.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from .data import registry
from .config_io import apply_override, dotted, load_dataclass, one_of, read_yaml
from .errors import ConfigError
from .io_utils import atomic_write
from .labels import DATASET_NAMES
from .model.config import EmoXFormerConfig

# Lightning's names (`Trainer(accelerator=..., precision=...)`); "gpu" is Lightning's alias of "cuda".
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu"]
Precision = Literal["32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "transformer-engine",
                    "transformer-engine-float16"]
# What `train.monitor` can name: the metrics the training module logs at the end of each validation epoch.
VALIDATION_METRICS = ("accuracy", "weighted_f1", "macro_f1", "uar")
# val/score: mean over datasets of weighted-F1; val/score_by_size: the same weighted by each validation split's size.
VALIDATION_SCORES = ("val/score", "val/score_by_size", "val/loss")


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

    def validate(self, where: str = "data.augment") -> None:
        snr = self.noise_snr_db
        if snr is not None and (len(snr) != 2 or snr[0] > snr[1]):
            raise ConfigError(f"{dotted(where, 'noise_snr_db')} must be [low, high] with low <= high (dB), got {snr}")


@dataclass
class ExtraDataset:
    """A corpus read from a manifest (data/manifest.py describes the columns), registered as dataset `name`."""

    name: str = ""  # required: lower-case letters, digits, _ (the metrics' name), not a built-in dataset's
    modality: Literal["text", "audio", "vision", "multi"] = "audio"  # multi: rows of several modalities (data/recordings.py)
    manifest: str | dict[str, str] = ""  # required: a CSV/JSONL with a split column, or {train: FILE, val: FILE, test: FILE}
    root: str | None = None  # where the rows' relative paths start (default: each manifest's folder)
    # The corpus's labels -> the 7 emotions (beside the header's); numeric labels ({1: neutral}) are read as text.
    label_map: dict[str | int, str] = field(default_factory=dict)
    drop_unmapped: bool = False  # drop rows whose label is not mapped (counted in the summary) instead of stopping
    val_fraction: float = 0.1  # without validation rows: this share of the training rows validates (by speaker if given)
    image_colour: Literal["grey", "colour"] = "colour"  # vision: "grey" faces (as FER2013's) make the model see photos grey
    # multi: each modality of a training row is dropped with this probability (never all), so each also learns alone
    modality_dropout: float = 0.3

    def validate(self, where: str = "data.extra[]") -> None:
        from .data.manifest import NAME_PATTERN, SPLIT_NAMES

        if not NAME_PATTERN.match(self.name):
            raise ConfigError(f"{dotted(where, 'name')} must be lower-case letters, digits and _ (a dataset name), "
                              f"got {self.name!r}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ConfigError(f"{dotted(where, 'modality_dropout')} must be in [0, 1), got {self.modality_dropout}")
        if self.name in DATASET_NAMES or self.name in {f.name for f in dataclasses.fields(DataConfig)}:
            raise ConfigError(f"{dotted(where, 'name')}: {self.name!r} is taken (a built-in dataset or a data.* key)")
        files = self.manifest if isinstance(self.manifest, dict) else {"": self.manifest}
        if not files or not all(isinstance(f, str) and f.strip() for f in files.values()):
            raise ConfigError(f"{dotted(where, 'manifest')} is required: a manifest file, or {{train: FILE, test: FILE}}")
        splits = [SPLIT_NAMES.get(str(split).lower()) for split in files] if isinstance(self.manifest, dict) else []
        if None in splits or len(set(splits)) != len(splits):
            raise ConfigError(f"{dotted(where, 'manifest')}: the keys must be different splits (train, val, test), "
                              f"got {', '.join(map(str, files))}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"{dotted(where, 'val_fraction')} must be in [0, 1), got {self.val_fraction}")
        self.label_map = {str(label): emotion for label, emotion in self.label_map.items()}  # a label is text

    def location(self) -> str:
        """The manifest (the first file of a per-split one)."""
        return self.manifest if isinstance(self.manifest, str) else next(iter(self.manifest.values()))


@dataclass
class DataConfig:
    root: str | None = None
    meld: str | None = None  # per-dataset paths override ROOT/meld, ROOT/ravdess, ROOT/fer2013
    ravdess: str | None = None
    fer2013: str | None = None
    datasets: list[str] = field(default_factory=lambda: list(DATASET_NAMES))  # checked against the dataset registry
    ravdess_split: Literal["actor", "random"] = "actor"  # "actor" (speaker-independent) or "random" (the reference code's leaky split)
    ravdess_val_actors: list[int] = field(default_factory=lambda: [19, 20])
    ravdess_test_actors: list[int] = field(default_factory=lambda: [21, 22, 23, 24])
    ravdess_fold: Literal[1, 2, 3, 4, 5, 6] | None = None  # 1..6: EmoBox's actor fold (test actors; see data/ravdess.py), replacing the two above
    ravdess_include_song: bool = False
    # Evaluation also scores RAVDESS test clips with the sentence each one speaks (its file name's statement field)
    # as a transcript: a real text + speech pair of one recording, reported as text, speech, both and late fusion.
    # Evaluation only: the saved model is the same with it on or off.
    ravdess_transcripts: bool = False
    ravdess_replicate: int = 7  # the reference code replicates RAVDESS's small training set x7
    fer_val_fraction: float = 0.1
    split_seed: int = 42
    skip_bad: bool = False
    balanced: bool = True  # each epoch draws 1/k of its samples from each of k datasets
    bucket_by_length: bool = False  # batches of similar text/audio lengths (less padding); mixing per batch is kept
    pairing: Literal["none", "label"] = "none"  # "none": one modality per example (the reference code); "label": label-matched multimodal examples
    modality_dropout: float = 0.0  # drop each present modality of a training example with this probability (never all)
    text_context: int = 0  # MELD: precede each utterance by up to k earlier utterances of its dialogue
    samples_per_epoch: int | None = None  # default: the size of the (replicated) training sets; ignored with pairing
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # More corpora, each read from a manifest and registered as a dataset when the config loads, so `datasets` can
    # name it: [{name: cremad, modality: audio, manifest: cremad.jsonl}] (ExtraDataset).
    extra: list[ExtraDataset] = field(default_factory=list)

    def validate(self, where: str = "data") -> None:
        key = lambda name: dotted(where, name)  # noqa: E731
        from .data.registry import register_manifest_dataset

        names = [entry.name for entry in self.extra]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ConfigError(f"{key('extra')}: {', '.join(twice)} named more than once")
        for entry in self.extra:
            register_manifest_dataset(entry)  # for look-ups by name; each config still reads its own entry
        known = registry.known_to(self)  # not the manifest corpora other configs registered
        if not self.datasets:
            raise ConfigError(f"{key('datasets')} is empty: name one or more of {', '.join(known)}")
        for index, name in enumerate(self.datasets):
            if name not in known:
                raise ConfigError(f"{key('datasets')}[{index}] must be {one_of(list(known))} (the registered datasets), got {name!r}")
        if self.pairing == "label" and len(set(self.datasets)) < 2:
            raise ConfigError(f"{key('pairing')}=label pairs samples of different datasets, so it needs two or more "
                              f"in {key('datasets')}, got {self.datasets}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ConfigError(f"{key('modality_dropout')} must be in [0, 1), got {self.modality_dropout}")
        multimodal = [e.name for e in self.extra if e.modality == "multi" and e.name in self.datasets]
        if self.pairing == "label" and multimodal:
            raise ConfigError(f"{key('pairing')}=label assembles examples from single-modality datasets; "
                              f"{', '.join(multimodal)} holds real multimodal rows: train it with pairing=none")
        if self.ravdess_fold is not None and self.ravdess_split != "actor":
            raise ConfigError(f"{key('ravdess_fold')} names EmoBox's actor fold: it needs {key('ravdess_split')}=actor, "
                              f"got {self.ravdess_split}")
        if "ravdess" in self.datasets and self.ravdess_split == "actor" and self.ravdess_fold is None:
            for name in ("ravdess_val_actors", "ravdess_test_actors"):
                actors = getattr(self, name)
                if not actors:
                    raise ConfigError(f"{key(name)} is empty: name one or more actors (1-24)")
                outside = sorted(a for a in actors if not 1 <= a <= 24)
                if outside:
                    raise ConfigError(f"{key(name)} holds {outside}: RAVDESS's actors are numbered 1-24")
            shared = sorted(set(self.ravdess_val_actors) & set(self.ravdess_test_actors))
            if shared:
                raise ConfigError(f"{key('ravdess_val_actors')} and {key('ravdess_test_actors')} share actors {shared}: "
                                  "each actor belongs to one split")


@dataclass
class StageConfig:
    epochs: int = 50
    lr: float = 1e-4
    patience: int = 20
    freeze_backbones: bool = True
    # Learning rate of each modality's encoder ({text: 3e-5, vision: 1e-3}); an encoder not named here, and the
    # projections, fusion and head, train at `lr`. Pretrained and from-scratch encoders want very different rates.
    encoder_lr: dict[str, float] = field(default_factory=dict)
    # "plateau": ReduceLROnPlateau on validation loss (the reference code's); "cosine": linear warm-up over `warmup` of the
    # stage's steps, then cosine decay to zero by its last step (for short fine-tuning runs).
    schedule: Literal["plateau", "cosine"] = "plateau"
    warmup: float = 0.0
    # This stage's `data.balanced` (None: the data section's). Balanced draws cost nothing extra in a stage that
    # trains on cached encoder outputs; in a fine-tuning stage they make a small dataset's encoder work larger.
    balanced: bool | None = None

    def validate(self, where: str = "train.stageN") -> None:
        if self.epochs < 0:
            raise ConfigError(f"{dotted(where, 'epochs')} must be 0 (skip the stage) or more, got {self.epochs}")
        unknown = sorted(set(self.encoder_lr) - {"text", "audio", "vision"})
        if unknown:
            raise ConfigError(f"{dotted(where, 'encoder_lr')}: unknown modality {', '.join(unknown)} (use text, audio, vision)")
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(f"{dotted(where, 'warmup')} must be a fraction of the stage's steps in [0, 1), got {self.warmup}")


@dataclass
class TrainConfig:
    seed: int = 42
    batch_size: int = 32
    eval_batch_size: int = 64
    weight_decay: float = 1e-4
    loss: Literal["focal", "cross_entropy"] = "focal"
    focal_gamma: float = 2.0
    # Training-loss weight of each dataset's samples (others 1), e.g. {ravdess: 8}: a small dataset gets the share of
    # the gradient that replicating it would give, without the encoder work of the extra samples.
    dataset_weights: dict[str, float] = field(default_factory=dict)
    stage1: StageConfig = field(default_factory=lambda: StageConfig(epochs=50, lr=1e-4, patience=20, freeze_backbones=True))
    stage2: StageConfig = field(default_factory=lambda: StageConfig(epochs=40, lr=5e-5, patience=20, freeze_backbones=False))
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    monitor: str = "val/score"  # mean over datasets of validation weighted-F1
    monitor_mode: Literal["auto", "min", "max"] = "auto"  # auto: min when the monitor's name contains "loss"
    grad_clip: float = 1.0
    # Weight of the loss on label-matched pairs assembled from each training batch (training/pairs.py): the only
    # signal a fusion gets from disjoint datasets. 0 turns it off (the reference code's training).
    fusion_pairs: float = 1.0
    # After training, fit late fusion's weight per modality (model.modality_weights) on the validation rows of the
    # run's multimodal corpora (real pairs: data.extra with `modality: multi`). A run without such rows, or with this
    # off, keeps every weight at 1.
    fit_fusion_weights: bool = True
    feature_cache: bool = True  # stage 1 with frozen backbones: compute encoder outputs once (see feature_cache.py)
    feature_cache_views: int = 1  # 1: un-augmented inputs; K > 1: K views per training sample (view 0 un-augmented)
    accumulate_grad_batches: int = 1
    gradient_checkpointing: bool = False  # HF backbones recompute activations in the backward pass (stage 2 memory)
    num_workers: int | None = None  # DataLoader workers; None: min(4, CPU cores - 1)
    accelerator: Accelerator = "auto"
    devices: str | int = "auto"  # processes per node (DDP); batch_size is per process
    num_nodes: int = 1
    strategy: str = "auto"  # auto, ddp, fsdp, ...: any name Lightning's strategy registry knows (an open set)
    sync_batchnorm: bool = True  # BatchNorm statistics over all processes, as one process would see them
    precision: Precision = "32-true"
    log_every_n_steps: int = 10
    progress_bar: bool = True

    def validate(self, where: str = "train") -> None:
        for name in ("batch_size", "eval_batch_size", "accumulate_grad_batches", "feature_cache_views"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{dotted(where, name)} must be 1 or more, got {getattr(self, name)}")
        if not self.fusion_pairs >= 0:
            raise ConfigError(f"{dotted(where, 'fusion_pairs')} must be 0 or more, got {self.fusion_pairs}")
        if self.stage1.epochs == 0 and self.stage2.epochs == 0:
            raise ConfigError(f"both stages have 0 epochs ({dotted(where, 'stage1.epochs')}, {dotted(where, 'stage2.epochs')}): "
                              "nothing to train")

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

    def validate(self, where: str = "") -> None:
        """Rules across sections (each section has checked its own fields)."""
        for name, weight in self.train.dataset_weights.items():
            if name not in self.data.datasets:
                raise ConfigError(f"{dotted(where, 'train.dataset_weights')} names {name}, which is not in "
                                  f"{dotted(where, 'data.datasets')} {self.data.datasets}")
            if not weight > 0:
                raise ConfigError(f"{dotted(where, 'train.dataset_weights')}.{name} must be positive, got {weight}")
        monitor = self.train.monitor
        parts = monitor.split("/")
        if monitor in VALIDATION_SCORES:
            return
        if len(parts) != 3 or parts[0] != "val" or parts[2] not in VALIDATION_METRICS:
            raise ConfigError(f"{dotted(where, 'train.monitor')} must be {', '.join(VALIDATION_SCORES)} or "
                              f"val/DATASET/METRIC (METRIC: {', '.join(VALIDATION_METRICS)}), got {monitor!r}")
        if parts[1] not in self.data.datasets:
            raise ConfigError(f"{dotted(where, 'train.monitor')} is {monitor!r}, but {parts[1]} is not in "
                              f"{dotted(where, 'data.datasets')} {self.data.datasets}")


def config_from_dict(values: dict) -> ExperimentConfig:
    return load_dataclass(ExperimentConfig, values, "")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (a path, or a built-in name such as `quickstart` or `paper`), apply overrides, check and
    validate it (ConfigError in one line naming the key)."""
    values = read_yaml(resolve_config_path(path))
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


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    atomic_write(path, yaml.safe_dump(to_dict(config), sort_keys=False))
