"""The two-stage schedule: stage 1 with frozen backbones, stage 2 fine-tuning from the best stage-1 weights."""
from __future__ import annotations

import json
import logging
import math
import platform
import shutil
import sys
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, TQDMProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from safetensors.torch import load_file

from ..version import __version__
from ..config import ExperimentConfig, save_config
from ..errors import ConfigError
from ..io_utils import atomic_write
from ..data.datamodule import EmoDataModule
from ..data.sources import dataset_modalities
from .plots import plot_confusion_matrix, plot_training_curves
from ..model.modeling import FUSIONS, WEIGHTS_NAME, EmoXFormer
from ..model.preprocessing import Preprocessor
from .callbacks import (BEST_SCORE, LAST_CHECKPOINT, ContinueLog, ContinuingCSVLogger, EpochLines, ExportBestModel,
                        RNGState, SaveLastCheckpoint, read_best_score, write_best_score)
from .input_format import record_input_format
from .calibration import calibrate_on_validation, choose_inference_fusion, training_priors
from .evaluate import (evaluate_predictions, evaluation_device, paired_test_metrics, predict, real_pair_rows,
                       recording_metrics, single_modality_datasets, transcript_metrics)
from .module import EmoXFormerModule
from ..inference.processor import EmoXFormerProcessor
from .result import TrainingResult

STAGES = ("stage1", "stage2")
STAGE_METRICS = "test_metrics.json"  # written when a stage has finished; a resumed run keeps such stages
# What a run writes into RUN_DIR (--overwrite removes these; other files in the folder are left alone).
RUN_ENTRIES = ("best", *STAGES, "logs", "tensorboard", "config.yaml", "metrics.json", "data_summary.json",
               "environment.json", "training_curves.png", "wall_time.json")  # the last: `emoxformer results`' ledger
RUN_PATTERNS = ("confusion_*.png", ".*.tmp")
RUN_MARKERS = ("config.yaml", "metrics.json")  # a folder holding one of these holds a run (--overwrite may replace it)

# Lightning's advice that does not apply here: frozen encoders are in eval mode on purpose (stage 1), and
# worker counts / logging intervals are chosen by the config.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*log_every_n_steps.*")
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")
warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)  # hardware banners and tips


def progress_callbacks(stage_name: str, progress: bool, terminal: bool, monitor: str = "val/score") -> list:
    """Progress bars on a terminal; one line per epoch where stdout is a log (SLURM, `> log`), which would
    otherwise collect every redraw of the bars. The line shows the monitored value, the one that selects."""
    if not progress:
        return []
    return [TQDMProgressBar(leave=True)] if terminal else [EpochLines(stage_name, monitor)]


def make_trainer(train_config, max_epochs: int, callbacks: list, loggers) -> L.Trainer:
    bars = any(isinstance(callback, TQDMProgressBar) for callback in callbacks)
    return L.Trainer(
        accelerator=train_config.accelerator, devices=train_config.devices, num_nodes=train_config.num_nodes,
        strategy=_strategy(train_config.strategy), use_distributed_sampler=False,
        # PyTorch's SyncBatchNorm runs on GPUs only; CPU processes keep per-process statistics.
        sync_batchnorm=train_config.sync_batchnorm and train_config.accelerator != "cpu" and torch.cuda.is_available(),
        precision=train_config.precision,
        max_epochs=max_epochs, callbacks=callbacks, logger=loggers, gradient_clip_val=train_config.grad_clip or None,
        log_every_n_steps=train_config.log_every_n_steps, enable_progress_bar=bars, num_sanity_val_steps=0,
        accumulate_grad_batches=train_config.accumulate_grad_batches,
        enable_model_summary=False,
    )


def _strategy(name: str) -> str:
    # A batch may lack a modality on one rank (a third of each batch per dataset, split across ranks), leaving
    # that modality's projection without a gradient there: DDP must be told to expect unused parameters.
    return "ddp_find_unused_parameters_true" if name == "ddp" else name


def stage_datamodule(datamodule, stage):
    """The datamodule a stage trains on: `datamodule`, or a copy drawing as the stage's own `balanced` says."""
    if stage.balanced is not None and stage.balanced != datamodule.data_config.balanced:
        return datamodule.with_sampling(stage.balanced)
    return datamodule


def trains_on_feature_cache(train_config, stage) -> bool:
    """A stage with frozen encoders trains on their cached outputs (unless the feature cache is turned off)."""
    return bool(train_config.feature_cache and stage.freeze_backbones)


def choose_final_stage(scores: dict[str, float | None], mode: str) -> str:
    """The stage (of those trained, in order) whose best model scored best on validation by the monitor, `mode`
    "min" or "max"; the later stage on a tie, or when a score is unknown (a stage trained before scores were kept)."""
    stages = list(scores)
    if any(value is None for value in scores.values()):
        return stages[-1]
    sign = 1.0 if mode == "max" else -1.0

    def goodness(name: str) -> float:
        return -math.inf if math.isnan(scores[name]) else sign * scores[name]

    return max(reversed(stages), key=goodness)  # max keeps the first of equals: the later stage


def is_run_dir(out: Path) -> bool:
    """Whether the folder holds a run: its config.yaml (written when a run starts) or metrics.json (when it ends)."""
    return any((out / name).is_file() for name in RUN_MARKERS)


def check_run_dir(out: Path, overwrite: bool = False) -> bool:
    """Whether `out` holds an earlier run that `overwrite` may replace (False: empty or new). ConfigError for a folder
    with files, since a new run would mix with the earlier one (evaluate and --resume read its config.yaml), unless
    `overwrite`; and for a folder with files that is not a run (is_run_dir), overwrite or not."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; choose another run directory")
    entries = sorted(entry.name for entry in out.iterdir()) if out.is_dir() else []
    if not entries:
        return False
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    if not is_run_dir(out):
        raise ConfigError(f"{out}: not empty ({shown}) and not a run directory (no {' or '.join(RUN_MARKERS)}); "
                          "choose an empty or new folder (--overwrite replaces only an earlier run)")
    if not overwrite:
        raise ConfigError(f"{out}: not empty ({shown}); pass --overwrite to replace the run in it, or continue "
                          f"that run with `emoxformer train --resume {out}`")
    return True


def prepare_run_dir(out: Path, overwrite: bool = False) -> list[str]:
    """check_run_dir, then with `overwrite` remove the earlier run's files (RUN_ENTRIES, RUN_PATTERNS; other files
    are left alone). Returns what was removed."""
    if not check_run_dir(out, overwrite):
        return []
    removed = [path for name in RUN_ENTRIES if (path := out / name).exists()]
    removed += [path for pattern in RUN_PATTERNS for path in sorted(out.glob(pattern))]
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return [path.name for path in removed]


class TwoStageTrainer:
    """Runs both stages into RUN_DIR and writes the best model, metrics, plots and run records."""

    def __init__(self, config: ExperimentConfig, out_dir: str | Path, progress: bool = True, extra_callbacks: list | None = None):
        self.config = config
        self.out = Path(out_dir)
        self.progress = progress
        self.extra_callbacks = list(extra_callbacks or [])

    def run(self, resume: bool = False, overwrite: bool = False) -> TrainingResult | None:
        """Train both stages and return the TrainingResult (None on the other DDP ranks: rank 0 evaluates). With
        `resume`, finished stages are kept and an interrupted one continues from its last checkpoint (same epoch,
        optimiser, scheduler, sampler and random state). Otherwise RUN_DIR must be empty, or `overwrite` removes
        the earlier run's files first."""
        config, out = self.config, self.out
        trained = [name for name in STAGES if getattr(config.train, name).epochs > 0]
        if not trained:
            raise ConfigError("both stages have 0 epochs: nothing to train")
        self.is_main = rank_zero_only.rank == 0  # under DDP only rank 0 evaluates and writes files
        self.choosing_stage = len(trained) > 1  # the final model is then chosen by the stages' validation scores
        if self.is_main and not resume and prepare_run_dir(out, overwrite):
            print(f"replacing the earlier run in {out}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        L.seed_everything(config.train.seed, workers=True, verbose=False)
        config.model.modalities = dataset_modalities(config.data.datasets)  # no encoder for a modality not trained
        model = EmoXFormer.from_config(config.model)
        record_input_format(model.config, config.data)  # saved with the model: inference prepares inputs alike
        preprocessor = Preprocessor.for_model(model.config)
        datamodule = EmoDataModule(config.data, preprocessor, config.train.batch_size, config.train.eval_batch_size,
                                   config.train.num_workers, config.train.seed, self.progress)
        datamodule.setup("fit")
        # Divided out when modalities are combined (late fusion, and the experts head in training and inference).
        model.config.modality_priors = training_priors(datamodule.records, model.config.num_classes)
        if self.is_main:
            self._write_run_records(datamodule, resume)

        metrics: dict = {}
        test_predictions: dict[str, dict] = {}  # stage -> test predictions of its best weights, from this process
        previous_best: Path | None = None
        for number, stage_name in enumerate(STAGES, start=1):
            stage = getattr(config.train, stage_name)
            if stage.epochs <= 0:
                continue
            if previous_best is not None:
                model.load_state_dict(load_file(str(previous_best / WEIGHTS_NAME)))
            finished = out / stage_name / STAGE_METRICS
            if resume and finished.is_file():
                print(f"{stage_name}: finished before, kept", flush=True)
                metrics[stage_name] = json.loads(finished.read_text())
            else:
                stage_metrics, test_predictions[stage_name] = self._run_stage(number, stage_name, stage, model,
                                                                              preprocessor, datamodule, resume)
                if self.is_main:
                    metrics[stage_name] = stage_metrics
                    atomic_write(finished, json.dumps(stage_metrics, indent=2))
            previous_best = out / stage_name / "best"
        if not self.is_main:
            return None
        selected = self._select_final_model(model, trained)
        extra, final_predictions = self._finish(model, preprocessor, datamodule, test_predictions.get(selected["best_stage"]))
        result = TrainingResult(
            run_dir=out, model_dir=out / "best", metrics=metrics, best_stage=selected["best_stage"],
            selection=selected["selection"], temperature=extra["temperature"], paired_test=extra.get("paired_test"),
            paired_test_late=extra.get("paired_test_late"), fusion_choice=extra.get("fusion_choice"),
            transcripts={k: extra[k] for k in ("transcripts", "transcripts_late") if k in extra},
            recordings=extra.get("recordings", {}),
            modality_temperatures=extra["modality_temperatures"], modality_weights=extra["modality_weights"],
            test_predictions=final_predictions, dataset_names=tuple(datamodule.names),
        )
        atomic_write(out / "metrics.json", json.dumps(result.to_dict(), indent=2))
        plot_training_curves({s: out / "logs" / s / "metrics.csv" for s in STAGES}, out / "training_curves.png")
        return result

    def _run_stage(self, number: int, stage_name: str, stage, model, preprocessor, datamodule,
                   resume: bool) -> tuple[dict, dict | None]:
        """Train one stage (from its last checkpoint when resuming), load its best weights; rank 0 returns its
        test metrics and the test predictions they come from (other ranks: {}, None)."""
        config = self.config
        # Each stage starts from its own seed, so a stage resumed before its first checkpoint repeats too.
        L.seed_everything(config.train.seed + number, workers=True, verbose=False)
        last = self.out / stage_name / "checkpoints" / LAST_CHECKPOINT
        cached = trains_on_feature_cache(config.train, stage)
        with ExitStack() as features:
            stage_data = stage_datamodule(datamodule, stage)
            if cached:
                stage_data = features.enter_context(self._cached_features(stage_name, model, stage_data))
            best_dir = self.train_stage(stage_name, stage, model, preprocessor, stage_data,
                                        ckpt_path=last if resume and last.is_file() else None)
        model.load_state_dict(load_file(str(best_dir / WEIGHTS_NAME)))
        if cached and self.choosing_stage:
            self._score_on_live_encoders(stage_name, stage, model, datamodule)
        if not self.is_main:
            return {}, None
        test_predictions = predict(model, datamodule, "test", config.train)
        stage_metrics = evaluate_predictions(test_predictions, datamodule)
        self._plot_confusions(stage_name, stage_metrics)
        return stage_metrics, test_predictions

    @contextmanager
    def _cached_features(self, stage_name: str, model, datamodule):
        """The datamodule for a stage with frozen encoders: its training and validation splits serve the encoders'
        outputs from the feature cache (with the cache off: from a folder in the stage's directory, removed when
        the stage ends)."""
        from .feature_cache import cached_datamodule

        train_config = self.config.train
        with cached_datamodule(model, datamodule, ("train", "val"), train_config.feature_cache_views,
                               evaluation_device(train_config), self.out / stage_name / "features.tmp", self.is_main,
                               self.progress) as cached:
            yield cached

    def _score_on_live_encoders(self, stage_name: str, stage, model, datamodule) -> None:
        """Validate the stage's best weights (loaded in `model`) as a stage with trainable encoders validates: the
        encoders run on the inputs, not float16 features read from the cache. Its score file then holds this value,
        and the value training logged as `cached_value`, so the final-model choice compares scores of one path.
        Every rank validates (a Lightning run under DDP); rank 0 writes."""
        score_file = self.out / stage_name / BEST_SCORE
        record = read_best_score(score_file)
        if record is None:  # the monitor was never logged: nothing to compare
            return
        trainer = make_trainer(self.config.train, max_epochs=1, callbacks=[], loggers=False)
        trainer.validate(EmoXFormerModule(model, datamodule.names, self.config.train, stage), datamodule=datamodule,
                         verbose=False)
        live_value = float(trainer.callback_metrics[record["monitor"]])
        if self.is_main:  # a stage resumed after this ran has already replaced its logged value: keep that one
            write_best_score(score_file, record["monitor"], record["mode"], live_value, record["epoch"],
                             cached_value=record.get("cached_value", record["value"]))
        trainer.strategy.barrier()

    def _select_final_model(self, model, trained: list[str]) -> dict:
        """Load the best weights of the stage that validated best, whatever the model holds now (a resumed run
        may have trained no stage in this process); its name and every stage's score go to metrics.json."""
        train_config = self.config.train
        mode = train_config.resolved_monitor_mode
        records = {name: read_best_score(self.out / name / BEST_SCORE) for name in trained}
        scores = {name: record["value"] if record else None for name, record in records.items()}
        best_stage = choose_final_stage(scores, mode)
        model.load_state_dict(load_file(str(self.out / best_stage / "best" / WEIGHTS_NAME)))
        return {"best_stage": best_stage, "selection": {"monitor": train_config.monitor, "mode": mode, "scores": scores}}

    def _finish(self, model, preprocessor, datamodule, test_predictions: dict | None = None) -> tuple[dict, dict]:
        """Calibrate the final model on validation data, score the paired test, save it (with its processor's
        tokenizer) as RUN_DIR/best; returns the temperature and paired test, and the calibrated test predictions.
        `test_predictions`: the final model's test predictions when its stage evaluated them in this process (the
        same weights give the same logits, so only the probabilities are recalibrated); else they are predicted."""
        config = self.config
        processor = EmoXFormerProcessor.from_preprocessor(preprocessor)
        real_pairs = real_pair_rows(datamodule, "val") if config.train.fit_fusion_weights else []
        calibrate_on_validation(model, datamodule, config.train, real_pairs)
        # Single-modality rows: the same logits as the stage's test predictions, only recalibrated.
        if test_predictions is None:
            test_predictions = predict(model, datamodule, "test", config.train)
        else:
            test_predictions = dict(test_predictions, probabilities=model.probabilities(test_predictions["logits"],
                                                                                        test_predictions["present"]))
        extra = {"temperature": model.config.temperature, "modality_temperatures": dict(model.config.modality_temperatures),
                 "modality_weights": dict(model.config.modality_weights)}
        if len(set(model.modalities)) > 1:
            label_matched = len(single_modality_datasets(datamodule)) > 1
            # The fusion that answers multimodal input: the better one on the label-matched validation examples and
            # on the validation rows of multimodal corpora (real pairs), every multimodal subset of them counted.
            validation_subsets = {fusion: {} for fusion in FUSIONS}
            if label_matched:
                paired_validation = paired_test_metrics(model, datamodule, config.train, seed=config.data.split_seed,
                                                        split="val")
                for fusion, subsets in paired_validation.items():
                    validation_subsets[fusion].update(subsets)
            for name, per_fusion in recording_metrics(model, datamodule, config.train, split="val").items():
                for fusion, subsets in per_fusion.items():
                    validation_subsets[fusion].update({f"{name} {subset}": m for subset, m in subsets.items()})
            if any(validation_subsets.values()):
                choice = choose_inference_fusion(validation_subsets)
                model.config.inference_fusion = choice["fusion"]
                extra["fusion_choice"] = choice
            if label_matched:
                paired = paired_test_metrics(model, datamodule, config.train, seed=config.data.split_seed)
                if paired:
                    extra["paired_test"], extra["paired_test_late"] = paired["model"], paired["late"]
            recordings = recording_metrics(model, datamodule, config.train)
            if recordings:
                extra["recordings"] = recordings
        if config.data.ravdess_transcripts:
            transcripts = transcript_metrics(model, datamodule, processor, config.train)
            if transcripts:
                extra["transcripts"], extra["transcripts_late"] = transcripts["model"], transcripts["late"]
        model.save_pretrained(self.out / "best", tokenizer=preprocessor.tokenizer)
        return extra, test_predictions

    def train_stage(self, stage_name: str, stage, model: EmoXFormer, preprocessor, datamodule, ckpt_path: Path | None = None) -> Path:
        # Lightning keeps each module's train/eval mode as it finds it: set it here (frozen encoders stay in eval).
        model.train()
        model.freeze_backbones(stage.freeze_backbones)
        model.gradient_checkpointing(self.config.train.gradient_checkpointing and not stage.freeze_backbones)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(f"{stage_name}: backbones {'frozen' if stage.freeze_backbones else 'trainable'}, up to {stage.epochs} epochs "
              f"at lr {stage.lr:g}, {trainable:,} trainable parameters" + (f", resuming from {ckpt_path}" if ckpt_path else ""), flush=True)
        module = EmoXFormerModule(model, datamodule.names, self.config.train, stage)
        stage_dir = self.out / stage_name
        monitor, mode = self.config.train.monitor, self.config.train.resolved_monitor_mode
        callbacks = [
            ExportBestModel(stage_dir / "best", monitor, preprocessor.tokenizer, mode=mode, score_file=stage_dir / BEST_SCORE),
            EarlyStopping(monitor=monitor, mode=mode, patience=stage.patience),
            SaveLastCheckpoint(stage_dir / "checkpoints" / LAST_CHECKPOINT),
            LearningRateMonitor(logging_interval="epoch"),
            RNGState(),
        ] + progress_callbacks(stage_name, self.progress, sys.stdout.isatty(), monitor) + self.extra_callbacks
        # The CSV log continues across a resumed stage (Lightning's own would delete the epochs before the checkpoint).
        csv_log = ContinuingCSVLogger(self.out, name="logs", version=stage_name)
        loggers = [csv_log, TensorBoardLogger(self.out, name="tensorboard", version=stage_name)]
        trainer = make_trainer(self.config.train, stage.epochs, callbacks + [ContinueLog(csv_log)], loggers)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        trainer.strategy.barrier()  # rank 0 has written the stage's best model before any rank reads it
        return stage_dir / "best"

    def _write_run_records(self, datamodule: EmoDataModule, resume: bool) -> None:
        if not resume or not (self.out / "config.yaml").is_file():  # a resumed run keeps the config it read
            save_config(self.config, self.out / "config.yaml")
        atomic_write(self.out / "data_summary.json", json.dumps(datamodule.summary(), indent=2))
        atomic_write(self.out / "environment.json", json.dumps({
            "emoxformer": __version__, "torch": torch.__version__, "lightning": L.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
        }, indent=2))

    def _plot_confusions(self, stage_name: str, metrics: dict) -> None:
        for name, values in metrics.items():
            plot_confusion_matrix(values["confusion_matrix"], f"{name} test ({stage_name})", self.out / f"confusion_{stage_name}_{name}.png")
