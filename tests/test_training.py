import json
import logging

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from emoxformer.cli import main
from emoxformer.config import load_config
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.data.sampler import BalancedSampler
from emoxformer.errors import ConfigError
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.run import TwoStageTrainer

TINY = [
    "model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
    "data.samples_per_epoch=96", "train.batch_size=16", "train.stage1.epochs=2", "train.stage2.epochs=2",
]


def tiny_config(root, *extra):
    return load_config("quickstart", [f"data.root={root}", *TINY, *extra])


class StateRecorder(L.Callback):
    """Copies of the model's weights at the start and end of each stage; with `run_dir`, as each epoch after the
    first trains its first batch, the epoch of the checkpoint `train --resume` would continue the stage from (None:
    no file)."""

    def __init__(self, run_dir=None):
        self.stages, self.run_dir = [], run_dir
        self.resumable = {}

    def on_fit_start(self, trainer, pl_module):
        self.stages.append({"start": _copy(pl_module.model), "modes": set()})

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        model = pl_module.model
        self.stages[-1]["modes"].add((model.encoders.training, model.fusion.training, model.classifier.training))
        if self.run_dir is not None and batch_idx == 0 and trainer.current_epoch > 0:
            stage = f"stage{len(self.stages)}"
            last = self.run_dir / stage / "checkpoints" / "last.ckpt"
            # loaded as `train --resume` loads it
            saved = torch.load(last, map_location="cpu", weights_only=True)["epoch"] if last.is_file() else None
            self.resumable[(stage, trainer.current_epoch)] = saved

    def on_fit_end(self, trainer, pl_module):
        self.stages[-1]["end"] = _copy(pl_module.model)


def _copy(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class LogMessages(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def tiny_run(sample_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    recorder = StateRecorder(out)
    lightning_log, said = logging.getLogger("lightning.pytorch"), LogMessages()
    lightning_log.addHandler(said)
    # Where Lightning's checkpoint messages come from, at their level: shows the capture sees them.
    logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector").info("capture check")
    try:
        trainer = TwoStageTrainer(tiny_config(sample_root), out, progress=False, extra_callbacks=[recorder])
        metrics = trainer.run().to_dict()
    finally:
        lightning_log.removeHandler(said)
    recorder.lightning_messages = said.messages
    return out, metrics, recorder


def _changed(before, after, prefix):
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    assert keys
    return [k for k in keys if not torch.equal(before[k], after[k])]


def test_every_finished_epoch_leaves_a_checkpoint_to_resume_from(tiny_run):
    """Regression: with Lightning 2.6 ModelCheckpoint(save_last=True, save_top_k=0) wrote last.ckpt only when the
    stage ended, so a stage killed in its 3rd of 10 epochs (a real joint run) had nothing to resume from."""
    _, _, recorder = tiny_run
    assert recorder.resumable == {("stage1", 1): 0, ("stage2", 1): 0}


def test_epoch_checkpoints_are_written_without_a_log_line_each(tiny_run):
    """Regression: every epoch's resume checkpoint made Lightning log "`weights_only` was not set, defaulting to
    `False`": 18 such lines in the quickstart's output."""
    _, _, recorder = tiny_run
    assert recorder.lightning_messages[0] == "capture check"
    assert not [message for message in recorder.lightning_messages if "weights_only" in message]


def test_stage1_freezes_backbones_and_trains_the_rest(tiny_run):
    _, _, recorder = tiny_run
    stage1 = recorder.stages[0]
    assert _changed(stage1["start"], stage1["end"], "encoders.") == []
    assert _changed(stage1["start"], stage1["end"], "heads.")
    assert _changed(stage1["start"], stage1["end"], "fusion.")
    # The cross-attention and the fused head learn from disjoint data (issue 25: they kept their initial values).
    assert _changed(stage1["start"], stage1["end"], "fusion.layers.0.attention.")
    assert _changed(stage1["start"], stage1["end"], "heads.fused.")


def test_training_modes_of_each_stage(tiny_run):
    _, _, recorder = tiny_run
    # (encoders, fusion, head) in training mode: frozen encoders stay in eval mode in stage 1 only
    assert recorder.stages[0]["modes"] == {(False, True, True)}
    assert recorder.stages[1]["modes"] == {(True, True, True)}


def test_stage2_starts_from_best_stage1_and_trains_backbones(tiny_run):
    out, _, recorder = tiny_run
    best_stage1 = load_file(str(out / "stage1" / "best" / "model.safetensors"))
    start = recorder.stages[1]["start"]
    assert set(best_stage1) == set(start)
    for key, value in best_stage1.items():
        assert torch.equal(value, start[key]), key
    changed = _changed(start, recorder.stages[1]["end"], "encoders.")
    for modality in ("text", "audio", "vision"):
        assert any(k.startswith(f"encoders.{modality}.") for k in changed), modality


def test_run_directory_holds_model_metrics_plots_and_records(tiny_run):
    out, metrics, _ = tiny_run
    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    for stage in ("stage1", "stage2"):
        assert set(written[stage]) == {"meld", "ravdess", "fer2013"}
        for name, m in written[stage].items():
            for key in ("accuracy", "weighted_f1", "macro_f1", "uar"):
                assert 0.0 <= m[key] <= 1.0
            assert np.array(m["confusion_matrix"]).shape == (7, 7)
            assert np.array(m["confusion_matrix"]).sum() == m["n"]
            assert set(m["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
    for name in ("config.yaml", "data_summary.json", "environment.json", "training_curves.png", "confusion_stage2_meld.png",
                 "best/config.json", "best/model.safetensors", "logs/stage1/metrics.csv", "logs/stage2/metrics.csv"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "data_summary.json").read_text())
    assert summary["ravdess"]["test"]["total"] == 32
    reloaded = load_config(out / "config.yaml")
    assert reloaded.model.hidden_size == 32


def test_evaluate_command_reproduces_the_run_metrics(tiny_run, sample_root, tmp_path, capsys):
    out, metrics, _ = tiny_run
    assert main(["evaluate", "--model", str(out / "best"), "--data", str(sample_root), "--output", str(tmp_path / "m.json")]) == 0
    evaluated = json.loads((tmp_path / "m.json").read_text())
    for name in ("meld", "ravdess", "fer2013"):
        assert evaluated[name]["confusion_matrix"] == metrics[metrics["best_stage"]][name]["confusion_matrix"]
    assert "w-F1" in capsys.readouterr().out


def test_same_seed_same_results(sample_root, tmp_path):
    runs = []
    for name in ("a", "b"):
        config = tiny_config(sample_root, "data.datasets=[meld,fer2013]", "train.stage1.epochs=1", "train.stage2.epochs=1")
        runs.append(TwoStageTrainer(config, tmp_path / name, progress=False).run().to_dict())
    assert runs[0] == runs[1]
    a = load_file(str(tmp_path / "a" / "best" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "best" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("datasets", ["meld", "ravdess", "fer2013"])
def test_single_dataset_subsets_train_and_evaluate(sample_root, tmp_path, datasets):
    config = tiny_config(sample_root, f"data.datasets=[{datasets}]", "train.stage1.epochs=1", "train.stage2.epochs=1")
    metrics = TwoStageTrainer(config, tmp_path, progress=False).run().to_dict()
    assert set(metrics["stage2"]) == {datasets}


def test_balanced_sampler_draws_a_third_from_each():
    sampler = BalancedSampler([10, 1000, 37], num_samples=300, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        indices = np.array([index for index, _ in sampler])
        counts = np.bincount(np.searchsorted([10, 1010], indices, side="right"), minlength=3)
        assert counts.tolist() == [100, 100, 100]
        small = indices[indices < 10]
        assert np.bincount(small, minlength=10).tolist() == [10] * 10  # cycled permutations: even coverage
    sampler.set_epoch(0)
    first = list(sampler)
    assert first == list(sampler)
    sampler.set_epoch(1)
    assert first != list(sampler)


def test_train_loader_is_balanced_and_only_training_is_augmented(sample_root):
    config = tiny_config(sample_root)
    preprocessor = Preprocessor(config.model)
    dm = EmoDataModule(config.data, preprocessor, batch_size=16, seed=0, progress=False)
    dm.setup()
    counts = np.zeros(3)
    for batch in dm.train_dataloader():
        counts += np.bincount(batch["dataset"].numpy(), minlength=3)
    assert counts.sum() == 96
    assert np.all(np.abs(counts / counts.sum() - 1 / 3) < 0.02)
    for name in dm.names:
        assert dm.splits[name]["train"].augment is not None
        for split in ("val", "test"):
            dataset = dm.splits[name][split]
            assert dataset.augment is None
            first, second = dataset[0], dataset[0]
            for key in ("text", "audio", "vision"):
                if key in first:
                    assert np.array_equal(np.asarray(first[key]), np.asarray(second[key])), (name, split, key)
    images = dm.splits["fer2013"]["train"]
    # faces come as uint8 pixels (PendingImage), augmented per draw; the collator resizes and normalises a batch
    assert not np.array_equal(images[(0, 1)]["vision"].pixels, images[(0, 2)]["vision"].pixels)  # training draws are augmented
    assert np.array_equal(images[(0, 1)]["vision"].pixels, images[(0, 1)]["vision"].pixels)  # as a function of the draw seed
    assert np.array_equal(images[0]["vision"].pixels, dm.splits["fer2013"]["train"][0]["vision"].pixels)


def test_overrides_and_config_errors(tmp_path):
    config = load_config("quickstart", ["train.batch_size=8", "train.stage2.lr=3e-3", "data.datasets=[meld]"])
    assert (config.train.batch_size, config.train.stage2.lr, config.data.datasets) == (8, 3e-3, ["meld"])
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config("quickstart", ["train.batchsize=8"])
    with pytest.raises(ConfigError, match="not a valid"):
        load_config("quickstart", ["train.batch_size=many"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    paper = load_config("paper")
    assert (paper.model.text_backbone, paper.model.audio_backbone) == ("roberta-base", "facebook/wav2vec2-base")
    assert (paper.train.stage1.epochs, paper.train.stage2.epochs, paper.train.batch_size) == (50, 40, 32)
    assert (paper.train.stage1.lr, paper.train.stage2.lr, paper.model.max_text_tokens) == (1e-4, 5e-5, 128)


def test_cli_train_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emoxformer: error: ") and len(err.strip().splitlines()) == 1
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "train.nope=1"]) == 2


def test_model_loads_back_and_predicts_like_the_run(tiny_run):
    from emoxformer.training.evaluate import evaluate_predictions, predict

    out, _, _ = tiny_run
    recorded = json.loads((out / "metrics.json").read_text())
    model = EmoXFormer.from_pretrained(out / "best")
    assert model.config.temperature == recorded["temperature"]
    config = load_config(out / "config.yaml")
    datamodule = EmoDataModule(config.data, Preprocessor.for_model(model.config, out / "best"), progress=False)
    datamodule.setup()
    loaded = predict(model, datamodule, "test", config.train)
    # Every test prediction as the run scored it with its final model (the best stage's best weights) ...
    assert json.loads(json.dumps(evaluate_predictions(loaded, datamodule))) == recorded[recorded["best_stage"]]
    # ... and the same calibrated probabilities as those weights with the run's fitted temperature.
    run_model = EmoXFormer.from_pretrained(out / recorded["best_stage"] / "best")
    run_model.config.temperature = recorded["temperature"]
    run_model.config.modality_temperatures = recorded["modality_temperatures"]
    torch.testing.assert_close(loaded["probabilities"], predict(run_model, datamodule, "test", config.train)["probabilities"])


def test_skip_bad_trains_and_reports_skipped_rows(sample_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(sample_root, root)
    csv = root / "fer2013" / "fer2013.csv"
    lines = csv.read_text().splitlines()
    lines[2] = "3,1 2 3,Training"
    csv.write_text("\n".join(lines) + "\n")
    args = ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--no-progress", *TINY,
            "train.stage1.epochs=1", "train.stage2.epochs=1"]
    assert main(args) == 2  # stops by default
    assert main(args + ["--skip-bad"]) == 0
    summary = json.loads((tmp_path / "run" / "data_summary.json").read_text())
    assert summary["fer2013"]["skipped"]["total"] == 1
    assert "row 3: pixel string has 3 values" in summary["fer2013"]["skipped"]["examples"][0]


def _padding_fraction(loader):
    padded = total = 0
    for batch in loader:
        for modality, mask_key in (("text", "attention_mask"), ("audio", None)):
            if modality not in batch:
                continue
            rows = batch["present"][:, ("text", "audio").index(modality)]
            if modality == "text":
                mask = batch["text"]["attention_mask"][rows].bool()
            else:
                lengths = batch["audio"]["lengths"][rows]
                mask = torch.arange(batch["audio"]["waveform"].shape[1])[None] < lengths[:, None]
            padded += int((~mask).sum())
            total += mask.numel()
    return padded / total


def test_length_buckets_cut_padding_and_keep_the_epoch(sample_root):
    from emoxformer.data.sampler import LengthBucketBatches

    config = tiny_config(sample_root, "data.samples_per_epoch=480")
    plain = EmoDataModule(config.data, Preprocessor(config.model), batch_size=16, seed=0, progress=False)
    plain.setup()
    config = tiny_config(sample_root, "data.samples_per_epoch=480", "data.bucket_by_length=true")
    bucketed = EmoDataModule(config.data, Preprocessor(config.model), batch_size=16, seed=0, progress=False)
    bucketed.setup()
    loader = bucketed.train_dataloader()
    assert isinstance(loader.batch_sampler, LengthBucketBatches)
    batches = list(loader.batch_sampler)
    assert len(batches) == len(loader.batch_sampler) == 30
    drawn = sorted(d for b in batches for d in b)
    assert drawn == sorted(plain.train_dataloader().sampler.epoch_draws())  # the same draws, regrouped
    for batch in batches:  # every batch still mixes the three datasets
        parts = np.searchsorted(loader.batch_sampler.sampler.offsets, [i for i, _ in batch], side="right") - 1
        assert set(parts.tolist()) == {0, 1, 2}
    assert _padding_fraction(loader) < 0.5 * _padding_fraction(plain.train_dataloader())


def _logged(out, stage, column):
    import pandas as pd

    values = pd.read_csv(out / "logs" / stage / "metrics.csv")[column].dropna()
    return values.tolist()


@pytest.fixture(scope="module")
def collapsing_stage2_run(sample_root, tmp_path_factory):
    """Stage 2 at a learning rate that wrecks the model, so it validates worse than stage 1; trained with progress
    on and stdout redirected to a file-like object (not a terminal), as under SLURM or `> log`."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("collapse")
    config = tiny_config(sample_root, "data.datasets=[meld,fer2013]", "train.stage1.lr=3e-3", "train.stage2.epochs=1",
                         "train.stage2.lr=1.0")
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        metrics = TwoStageTrainer(config, out, progress=True).run().to_dict()
    return out, metrics, log.getvalue()


def test_final_model_is_the_stage_that_validated_best(collapsing_stage2_run):
    out, metrics, _ = collapsing_stage2_run
    assert max(_logged(out, "stage1", "val/score")) > max(_logged(out, "stage2", "val/score"))
    assert metrics["best_stage"] == "stage1"
    final = load_file(str(out / "best" / "model.safetensors"))
    chosen = load_file(str(out / "stage1" / "best" / "model.safetensors"))
    assert set(final) == set(chosen) and all(torch.equal(final[k], chosen[k]) for k in final)
    assert json.loads((out / "metrics.json").read_text())["best_stage"] == "stage1"
    selection = metrics["selection"]
    assert selection["monitor"] == "val/score" and selection["mode"] == "max"
    for stage in ("stage1", "stage2"):
        # each stage's score is kept in its folder for resuming; stage 2's is its best validation value as logged,
        # stage 1's (trained on cached features) its best weights validated again on live encoders, as stage 2's are
        record = json.loads((out / stage / "best_score.json").read_text())
        assert record["value"] == selection["scores"][stage]
        logged = record["cached_value"] if stage == "stage1" else record["value"]
        assert logged == pytest.approx(max(_logged(out, stage, "val/score")), abs=1e-6)


def test_epoch_lines_instead_of_progress_bars_when_stdout_is_not_a_terminal(collapsing_stage2_run):
    import re

    _, _, log = collapsing_stage2_run
    assert "\r" not in log  # no bar redraws
    pattern = r"^(stage[12]) epoch (\d+)/(\d+): train loss \d+\.\d{4}, val loss \d+\.\d{4}, val score \d\.\d{4}, \d+\.\d s$"
    epochs = [match.groups() for match in re.finditer(pattern, log, flags=re.MULTILINE)]
    assert epochs == [("stage1", "1", "2"), ("stage1", "2", "2"), ("stage2", "1", "1")]


def test_progress_bars_stay_on_a_terminal():
    from lightning.pytorch.callbacks import TQDMProgressBar

    from emoxformer.training.callbacks import EpochLines
    from emoxformer.training.run import progress_callbacks

    assert [type(c) for c in progress_callbacks("stage1", progress=True, terminal=True)] == [TQDMProgressBar]
    assert [type(c) for c in progress_callbacks("stage1", progress=True, terminal=False)] == [EpochLines]
    assert progress_callbacks("stage1", progress=False, terminal=False) == []


def test_the_epoch_line_shows_the_score_that_selects(capsys):
    """With train.monitor=val/score_by_size a log showed val/score, which did not choose the model."""
    from types import SimpleNamespace

    from emoxformer.training.run import progress_callbacks

    trainer = SimpleNamespace(is_global_zero=True, current_epoch=0, max_epochs=2, callback_metrics={
        "train/loss_epoch": 1.5, "val/loss": 1.25, "val/score": 0.5, "val/score_by_size": 0.625})
    for monitor, shown in [("val/score_by_size", "val score_by_size 0.6250"), ("val/score", "val score 0.5000"),
                           ("val/loss", "val loss 1.2500")]:
        (line,) = progress_callbacks("stage1", progress=True, terminal=False, monitor=monitor)
        line.on_train_epoch_end(trainer, None)
        printed = capsys.readouterr().out
        assert printed.startswith("stage1 epoch 1/2: train loss 1.5000, val loss 1.2500") and shown in printed
        assert printed.count("val ") == (1 if monitor == "val/loss" else 2), printed


class ValidationRecorder(L.Callback):
    """The model's weights and the monitored value after each validation, and the early-stopping mode."""

    def __init__(self, monitor):
        self.monitor, self.epochs, self.early_stopping_modes = monitor, [], []

    def on_fit_start(self, trainer, pl_module):
        self.early_stopping_modes.append(trainer.early_stopping_callback.mode)

    def on_validation_end(self, trainer, pl_module):
        self.epochs.append((float(trainer.callback_metrics[self.monitor]), _copy(pl_module.model)))


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_mixed_precision_with_gradient_clipping_trains(sample_root, tmp_path, precision):
    """Lightning refuses to clip gradients with a fused optimizer under a gradient scaler (16-mixed)."""
    config = tiny_config(sample_root, "data.datasets=[fer2013]", f"train.precision={precision}", "train.grad_clip=1.0",
                         "train.stage1.epochs=1", "train.stage2.epochs=1", "train.feature_cache=false",
                         "data.samples_per_epoch=32")
    metrics = TwoStageTrainer(config, tmp_path, progress=False).run().to_dict()
    assert set(metrics["stage2"]) == {"fer2013"} and metrics["stage2"]["fer2013"]["n"] > 0


def test_a_loss_monitor_is_minimised(sample_root, tmp_path):
    recorder = ValidationRecorder("val/loss")
    config = tiny_config(sample_root, "data.datasets=[meld,fer2013]", "train.monitor=val/loss", "train.stage1.epochs=3",
                         "train.stage1.patience=1", "train.stage2.epochs=0")
    assert config.train.resolved_monitor_mode == "min"
    metrics = TwoStageTrainer(config, tmp_path, progress=False, extra_callbacks=[recorder]).run().to_dict()
    assert recorder.early_stopping_modes == ["min"]
    losses = [loss for loss, _ in recorder.epochs]
    assert len(losses) == 3, losses  # val/loss fell each epoch: a max-mode early stop would have ended at epoch 2
    lowest = min(range(len(losses)), key=losses.__getitem__)
    assert lowest != max(range(len(losses)), key=losses.__getitem__)
    saved = load_file(str(tmp_path / "stage1" / "best" / "model.safetensors"))
    assert all(torch.equal(saved[k], recorder.epochs[lowest][1][k]) for k in saved)
    assert json.loads((tmp_path / "stage1" / "best_score.json").read_text())["value"] == pytest.approx(losses[lowest])
    assert metrics["selection"]["mode"] == "min"


def test_monitor_mode_setting():
    from emoxformer.training.run import choose_final_stage

    assert load_config("quickstart").train.resolved_monitor_mode == "max"  # val/score
    assert load_config("quickstart", ["train.monitor=val/loss", "train.monitor_mode=max"]).train.resolved_monitor_mode == "max"
    assert load_config("quickstart", ["train.monitor=val/meld/uar", "train.monitor_mode=min"]).train.resolved_monitor_mode == "min"
    with pytest.raises(ConfigError, match="train.monitor_mode must be auto, min or max"):
        load_config("quickstart", ["train.monitor_mode=lowest"])
    assert choose_final_stage({"stage1": 0.4, "stage2": 0.3}, "max") == "stage1"
    assert choose_final_stage({"stage1": 0.4, "stage2": 0.3}, "min") == "stage2"
    assert choose_final_stage({"stage1": 0.4, "stage2": 0.4}, "max") == "stage2"  # a tie keeps the fine-tuned model
    assert choose_final_stage({"stage2": 0.1}, "max") == "stage2"


def test_dataset_weights_weight_each_samples_training_loss(sample_root):
    """train.dataset_weights={ravdess: 3}: the training loss is the weighted mean over samples (paired ones weigh 1);
    without weights it is the plain mean. Naming a dataset that is not trained is refused at load time."""
    from emoxformer.training.module import EmoXFormerModule

    config = tiny_config(sample_root, "train.dataset_weights={ravdess: 3}", "train.loss=cross_entropy")
    model = EmoXFormer.from_config(config.model)
    names = ["meld", "ravdess", "fer2013"]
    module = EmoXFormerModule(model, names, config.train, config.train.stage1)
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 7), torch.tensor([0, 1, 2, 3, 4])
    dataset = torch.tensor([0, 1, 1, 2, -1])
    per_sample = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    weights = torch.tensor([1.0, 3.0, 3.0, 1.0, 1.0])
    torch.testing.assert_close(module.training_loss(logits, labels, dataset), (per_sample * weights).sum() / weights.sum())
    plain = EmoXFormerModule(model, names, tiny_config(sample_root, "train.loss=cross_entropy").train, config.train.stage1)
    torch.testing.assert_close(plain.training_loss(logits, labels, dataset), per_sample.mean())
    with pytest.raises(ConfigError, match="dataset_weights names ravdess"):
        tiny_config(sample_root, "train.dataset_weights={ravdess: 3}", "data.datasets=[meld]")


@pytest.mark.slow  # two full training runs
def test_a_stage_can_sample_balanced_while_the_other_does_not(sample_root, tmp_path):
    """train.stage1.balanced=true: stage 1's epochs draw a third from each dataset; stage 2 keeps data.balanced=false
    (draws in proportion to the datasets' sizes); the run's datamodule itself is not changed."""
    counts = {}

    class DatasetCounts(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            loader = trainer.datamodule.train_dataloader()
            totals = np.zeros(3)
            for batch in loader:
                totals += np.bincount(batch["dataset"].numpy(), minlength=3)
            counts[len(counts)] = totals / totals.sum()

    config = tiny_config(sample_root, "data.balanced=false", "train.stage1.balanced=true", "data.samples_per_epoch=null",
                         "train.stage1.epochs=1", "train.stage2.epochs=1")
    TwoStageTrainer(config, tmp_path / "run", progress=False, extra_callbacks=[DatasetCounts()]).run()
    dm = EmoDataModule(config.data, Preprocessor(config.model), progress=False)
    dm.setup()
    sizes = np.array([len(dm.splits[n]["train"]) for n in dm.names], dtype=float)
    np.testing.assert_allclose(counts[0], 1 / 3, atol=0.03)  # stage 1: balanced
    np.testing.assert_allclose(counts[1], sizes / sizes.sum(), atol=0.03)  # stage 2: in proportion
    assert not config.data.balanced


def test_the_final_test_predictions_reuse_the_chosen_stage_s_evaluation(sample_root, tmp_path, monkeypatch):
    """Each trained stage predicts the test split once; the final model (a stage's best weights) is not predicted
    again, and its recalibrated predictions are those of a fresh prediction with the saved model."""
    from emoxformer.training import calibration as calibration_module
    from emoxformer.training import run as run_module
    from emoxformer.training.evaluate import predict

    calls = []

    def counting_predict(model, datamodule, split, train_config, progress=False):
        calls.append(split)
        return predict(model, datamodule, split, train_config, progress)

    monkeypatch.setattr(run_module, "predict", counting_predict)
    monkeypatch.setattr(calibration_module, "predict", counting_predict)  # the calibration's validation pass
    config = tiny_config(sample_root, "train.stage1.epochs=1", "train.stage2.epochs=1")
    result = TwoStageTrainer(config, tmp_path / "run", progress=False).run()
    assert calls.count("test") == 2 and calls.count("val") == 1, calls
    saved = EmoXFormer.from_pretrained(tmp_path / "run" / "best")
    datamodule = EmoDataModule(config.data, Preprocessor.for_model(saved.config, tmp_path / "run" / "best"), progress=False)
    datamodule.setup()
    fresh = predict(saved, datamodule, "test", config.train)
    torch.testing.assert_close(result.test_predictions["logits"], fresh["logits"])
    torch.testing.assert_close(result.test_predictions["probabilities"], fresh["probabilities"])
    assert result.test_predictions["ids"] == fresh["ids"]


def test_the_size_weighted_validation_score_lets_a_large_split_outweigh_a_small_one():
    from emoxformer.training.module import EmoXFormerModule

    config = load_config("quickstart")
    module = EmoXFormerModule(torch.nn.Linear(1, 1), ["meld", "ravdess", "fer2013"], config.train, config.train.stage1)
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    # ravdess: 2 samples, both right; fer2013: 8 samples, all wrong (meld absent from this validation)
    preds = torch.tensor([0, 1] + [1] * 8)
    labels = torch.tensor([0, 1] + [0] * 8)
    dataset = torch.tensor([1, 1] + [2] * 8)
    module._val_outputs.append((preds, labels, dataset))
    module.on_validation_epoch_end()
    assert logged["val/ravdess/weighted_f1"] == 1.0 and logged["val/fer2013/weighted_f1"] == 0.0
    assert logged["val/score"] == pytest.approx(0.5)  # each dataset counts once
    assert logged["val/score_by_size"] == pytest.approx(0.2)  # each sample counts once: 2 of 10 right


def _live_validation_score(model, config, run_dir):
    """val/score of `model` (mean over datasets of the weighted F1) validated on live encoders, as stage 2 is."""
    from emoxformer.metrics import metrics_by_dataset
    from emoxformer.training.evaluate import predict

    datamodule = EmoDataModule(config.data, Preprocessor.for_model(model.config, run_dir), progress=False)
    datamodule.setup()
    validation = predict(model, datamodule, "val", config.train)
    metrics = metrics_by_dataset(validation["logits"].argmax(-1), validation["labels"], validation["dataset"],
                                 datamodule.dataset_indices)
    return sum(m["weighted_f1"] for m in metrics.values()) / len(metrics)


def test_the_stage_choice_compares_stage1_validated_on_live_encoders(sample_root, tmp_path, monkeypatch):
    """Stage 1 trains and validates on cached features, stage 2 validates on live encoders: the stage-1 score that
    the choice compares is its best weights validated on live encoders too. The cached features here are made to
    differ from the encoders' outputs (as float16 rounding does, only more), so the two paths score differently."""
    from emoxformer.training import feature_cache

    original = feature_cache.build_table

    def distorted_table(*args, **kwargs):
        tokens, offsets = original(*args, **kwargs)
        return -tokens, offsets

    monkeypatch.setattr(feature_cache, "build_table", distorted_table)
    # A cache of its own: tables other tests built from the same data and encoders would be read, not distorted.
    monkeypatch.setenv("EMOXFORMER_CACHE", str(tmp_path / "cache"))
    config = tiny_config(sample_root, "train.stage1.lr=3e-3", "train.stage1.epochs=2", "train.stage2.epochs=1")
    out = tmp_path / "run"
    metrics = TwoStageTrainer(config, out, progress=False).run().to_dict()
    cached_score = max(_logged(out, "stage1", "val/score"))
    live_score = _live_validation_score(EmoXFormer.from_pretrained(out / "stage1" / "best"), config, out)
    assert live_score != pytest.approx(cached_score, abs=1e-6)  # the test's premise: the paths differ here
    assert metrics["selection"]["scores"]["stage1"] == pytest.approx(live_score, abs=1e-6)
    record = json.loads((out / "stage1" / "best_score.json").read_text())
    assert record["value"] == metrics["selection"]["scores"]["stage1"]
    assert record["cached_value"] == pytest.approx(cached_score, abs=1e-6)  # what training logged is kept beside it
