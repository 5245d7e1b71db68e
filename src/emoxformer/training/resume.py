"""The one rule for continuing a run, shared by `emoxformer train --resume`, `emoxformer.train(resume=True)` and
`emoxformer results`: a resumed run trains with its own RUN_DIR/config.yaml. A setting given besides it (a flag,
a KEY=VALUE override, a config, a results plan) must agree with it; one that differs is refused in one line
naming it, since the run would otherwise continue with one config and be reported with another."""
from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from ..config import ExperimentConfig, config_from_dict, to_dict
from ..config_io import apply_override, read_yaml
from ..errors import ConfigError

CONFIG_FILE = "config.yaml"
# Model fields that training fills in itself: from the data, after the config is read and before config.yaml is
# written (priors), or after training, into the model's config (calibration, the fusion chosen on validation). A
# config as given has them at their defaults; the config object a finished run was given holds the fitted values.
FILLED_BY_TRAINING = ("modality_priors", "modality_temperatures", "modality_weights", "backbone_configs", "temperature",
                      "inference_fusion")


def stored_config(run_dir: str | Path) -> ExperimentConfig:
    """RUN_DIR/config.yaml, checked; ConfigError if the folder holds no run to resume."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory to resume (config.yaml missing)")
    return config_from_dict(read_yaml(path))


def resume_config(run_dir: str | Path, overrides: Sequence[str] = (), requested: ExperimentConfig | None = None,
                  given: str = "given here") -> ExperimentConfig:
    """The config a resumed run trains with: its config.yaml. `overrides` (KEY=VALUE, flags included) and a
    `requested` config must agree with it: ConfigError naming each setting that differs."""
    run_dir = Path(run_dir)
    stored = stored_config(run_dir)
    differing: dict[str, tuple] = {}
    if overrides:
        values = copy.deepcopy(to_dict(stored))
        for override in overrides:
            apply_override(values, override)
        differing.update(config_differences(stored, config_from_dict(values), as_trained=False))
    if requested is not None:
        differing.update(config_differences(stored, requested))
    if differing:
        shown = "; ".join(f"{key}: {trained!r} in its config.yaml, {wanted!r} {given}"
                          for key, (trained, wanted) in list(differing.items())[:4])
        more = f" (and {len(differing) - 4} more)" if len(differing) > 4 else ""
        raise ConfigError(f"{run_dir}: a resumed run trains with its own config.yaml, and {shown}{more}; resume "
                          "without it, or train a new run (--out) to change it")
    return stored


def config_differences(trained: ExperimentConfig, wanted: ExperimentConfig, as_trained: bool = True) -> dict[str, tuple]:
    """Dotted key -> (trained value, wanted value) for each setting in which two experiment configs differ.
    `as_trained`: `wanted` is a config as given (not read from a run), so the model fields that training records
    from the data (modalities, image colour, dialogue-text format, an HF backbone's image settings) are first
    recorded into a copy of it as training would."""
    if as_trained:
        wanted = recorded_as_training_would(wanted)
    a, b = _leaves(to_dict(trained)), _leaves(to_dict(wanted))
    skipped = {f"model.{name}" for name in FILLED_BY_TRAINING} if as_trained else set()
    return {key: (a.get(key), b.get(key)) for key in dict.fromkeys([*a, *b])
            if key not in skipped and a.get(key) != b.get(key)}


def recorded_as_training_would(config: ExperimentConfig) -> ExperimentConfig:
    """A copy of `config` with the model fields filled in as TwoStageTrainer fills them before it writes
    config.yaml."""
    from ..data.sources import dataset_modalities
    from ..model.encoders import resolve_image_settings
    from .input_format import record_input_format

    config = copy.deepcopy(config)
    config.model.modalities = dataset_modalities(config.data.datasets)
    resolve_image_settings(config.model)
    record_input_format(config.model, config.data)
    return config


def _leaves(values: dict, prefix: str = "") -> dict:
    leaves = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value and not dotted.startswith(tuple(f"model.{n}" for n in FILLED_BY_TRAINING)):
            leaves.update(_leaves(value, dotted + "."))
        else:
            leaves[dotted] = value
    return leaves
