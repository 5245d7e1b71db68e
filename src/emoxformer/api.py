"""The notebook API: `emoxformer.train(config, out_dir)` runs the two-stage schedule and returns a TrainingResult.

    import emoxformer
    result = emoxformer.train("quickstart", "runs/nb", overrides=["data.root=data/sample"])
    result.test_metrics["meld"]["weighted_f1"]
    model, processor = result.load_model(), result.load_processor()
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .config import ExperimentConfig, apply_override, config_from_dict, load_config, to_dict
from .errors import ConfigError
from .training.result import TrainingResult


def train(config: ExperimentConfig | str | Path | None, out_dir: str | Path, *, overrides: Sequence[str] | None = None,
          resume: bool = False, overwrite: bool = False, progress: bool = True) -> TrainingResult | None:
    """Train a model into `out_dir` (RUN_DIR) as `emoxformer train` does, and return the TrainingResult (None on
    the other processes of a distributed run).

    `config`: an ExperimentConfig (copied, so the caller's object is left as it is), a YAML path or a built-in
    name ("quickstart", "laptop", "paper"). `overrides`: dotted `key=value` settings, as on the command line (e.g.
    "data.root=DATA", "train.stage1.epochs=2"). `resume` continues an interrupted run in `out_dir` with its own
    RUN_DIR/config.yaml, as `emoxformer train --resume` does: `config` may be None, and a config or override that
    differs from the run's is refused (ConfigError naming the setting). `overwrite` replaces the run there
    (otherwise `out_dir` must be empty or new)."""
    from .training.resume import resume_config
    from .training.run import TwoStageTrainer

    out_dir = Path(out_dir)
    if resume and overwrite:
        raise ConfigError("resume continues a run and overwrite replaces it: pass one of them")
    if resume:
        requested = experiment_config(config, overrides) if config is not None else None
        experiment = resume_config(out_dir, overrides if config is None else (), requested, given="given to train()")
    elif config is None:
        raise ConfigError("no config: pass an ExperimentConfig, a YAML path or a built-in name such as 'quickstart'")
    else:
        experiment = experiment_config(config, overrides)
    return TwoStageTrainer(experiment, out_dir, progress=progress).run(resume=resume, overwrite=overwrite)


def experiment_config(config: ExperimentConfig | str | Path, overrides: Sequence[str] | None = None) -> ExperimentConfig:
    """A checked ExperimentConfig from an ExperimentConfig (a checked copy), a YAML path or a built-in name, with
    `overrides` applied."""
    if isinstance(config, ExperimentConfig):
        values = to_dict(config)
        for override in overrides or []:
            apply_override(values, override)
        return config_from_dict(values)
    if isinstance(config, (str, Path)):
        return load_config(config, list(overrides or []))
    raise TypeError(f"config must be an ExperimentConfig, a YAML path or a built-in config name, not {type(config).__name__}")
