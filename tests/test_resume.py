"""Kill a training run with SIGKILL in the middle of each stage, resume it, and compare with an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

SETTINGS = [
    "model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
    "data.samples_per_epoch=160", "train.batch_size=16", "train.stage1.epochs=3", "train.stage2.epochs=3",
]


def _command(*args):
    return [sys.executable, "-m", "emoxformer.cli", "train", *args]


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(sample_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(_command("--data", str(sample_root), "--out", str(run), "--no-progress", *SETTINGS), check=True,
                   capture_output=True)
    return run


def _log(run, stage):
    import pandas as pd

    return pd.read_csv(run / "logs" / stage / "metrics.csv")


def _assert_same_records(run, reference_run):
    """The resumed run's CSV logs (every epoch of both stages, once), the validation results report from them, and
    metrics.json are the uninterrupted run's."""
    import pandas as pd

    from emoxformer.training.results import best_validation

    for stage in ("stage1", "stage2"):
        resumed, reference = _log(run, stage), _log(reference_run, stage)
        assert sorted(resumed["epoch"].dropna().unique()) == sorted(reference["epoch"].dropna().unique()), stage
        pd.testing.assert_frame_equal(resumed, reference, check_exact=False, rtol=1e-6, obj=f"logs/{stage}/metrics.csv")
        _assert_close(best_validation(run, stage), best_validation(reference_run, stage), f"best_validation({stage})")
        assert best_validation(run, stage)  # the exported epoch is in the log
    metrics, expected = _metrics(run), _metrics(reference_run)
    assert metrics["selection"] == expected["selection"] and metrics["best_stage"] == expected["best_stage"]
    _assert_close(metrics, expected)


def _assert_close(value, expected, where="metrics.json"):
    if isinstance(expected, dict):
        assert isinstance(value, dict) and sorted(value) == sorted(expected), where
        for key in expected:
            _assert_close(value[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(value, list) and len(value) == len(expected), where
        for index, (item, wanted) in enumerate(zip(value, expected)):
            _assert_close(item, wanted, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert value == pytest.approx(expected, rel=1e-6, abs=1e-9, nan_ok=True), where
    else:
        assert value == expected, where


@pytest.mark.slow  # two runs killed and resumed against an uninterrupted one: minutes
@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_sigkill_then_resume_matches_uninterrupted_run(sample_root, tmp_path, reference, stage):
    reference_run, reference = reference, _metrics(reference)
    run = tmp_path / "run"
    process = subprocess.Popen(_command("--data", str(sample_root), "--out", str(run), "--no-progress", *SETTINGS),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = run / stage / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the run ended before its first checkpoint of this stage"
    assert not (run / stage / "test_metrics.json").exists(), "killed too late: the stage had finished"
    assert not (run / "metrics.json").exists()

    resumed = subprocess.run(_command("--resume", str(run), "--no-progress"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stdout
    metrics = _metrics(run)
    for name in ("stage1", "stage2"):
        for dataset, values in reference[name].items():
            assert metrics[name][dataset]["confusion_matrix"] == values["confusion_matrix"], (name, dataset)
            assert metrics[name][dataset]["weighted_f1"] == pytest.approx(values["weighted_f1"], abs=1e-9)
    assert metrics["temperature"] == pytest.approx(reference["temperature"], rel=1e-6)
    _assert_same_records(run, reference_run)


def test_resume_needs_a_run_directory(tmp_path):
    result = subprocess.run(_command("--resume", str(tmp_path)), capture_output=True, text=True)
    assert result.returncode == 2 and "not a run directory to resume" in result.stderr and "Traceback" not in result.stderr


TINY = ["model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
        "data.samples_per_epoch=96", "train.batch_size=16"]


def _assert_final_model_is_the_best_stage(run):
    best_stage = _metrics(run)["best_stage"]
    final = load_file(str(run / "best" / "model.safetensors"))
    chosen = load_file(str(run / best_stage / "best" / "model.safetensors"))
    assert set(final) == set(chosen)
    assert all(torch.equal(final[k], chosen[k]) for k in final), f"RUN_DIR/best is not {best_stage}/best"
    final_config = json.loads((run / "best" / "config.json").read_text())
    chosen_config = json.loads((run / best_stage / "best" / "config.json").read_text())
    for fitted in ("temperature", "modality_temperatures", "inference_fusion"):  # fitted after training, into best/
        final_config.pop(fitted), chosen_config.pop(fitted)
    assert final_config == chosen_config


def test_resuming_a_finished_run_saves_the_best_stage(sample_root, tmp_path):
    from emoxformer.cli import main

    run = tmp_path / "run"
    common = ["--data", str(sample_root), "--out", str(run), "--no-progress", *TINY]
    assert main(["train", *common, "train.stage1.epochs=2", "train.stage2.epochs=2"]) == 0
    first = _metrics(run)
    best = first["best_stage"]
    _assert_final_model_is_the_best_stage(run)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # nothing left to train: only the final step
    resumed = _metrics(run)
    assert resumed["best_stage"] == best and resumed[best] == first[best]
    assert resumed["temperature"] == pytest.approx(first["temperature"], rel=1e-6)
    _assert_final_model_is_the_best_stage(run)


@pytest.mark.parametrize("trained", ["stage1", "stage2"])
def test_resuming_a_run_killed_in_its_final_step_saves_the_trained_stage(sample_root, tmp_path, trained):
    """One stage has 0 epochs; the run dies during calibration and saving (no metrics.json, no best/ yet)."""
    import shutil

    from emoxformer.config import load_config
    from emoxformer.training.run import TwoStageTrainer

    skipped = "stage2" if trained == "stage1" else "stage1"
    run = tmp_path / "run"
    config = load_config("quickstart", [f"data.root={sample_root}", *TINY, "data.datasets=[meld,fer2013]",
                                        f"train.{trained}.epochs=1", f"train.{skipped}.epochs=0"])
    TwoStageTrainer(config, run, progress=False).run()
    (run / "metrics.json").unlink()
    shutil.rmtree(run / "best")
    metrics = TwoStageTrainer(load_config(run / "config.yaml"), run, progress=False).run(resume=True).to_dict()
    assert metrics["best_stage"] == trained
    _assert_final_model_is_the_best_stage(run)
    assert list(metrics["selection"]["scores"]) == [trained]


@pytest.fixture()
def stopped_run(sample_root, tmp_path, monkeypatch):
    """A run folder whose config.yaml is as training writes it, and a trainer that records what it is given."""
    import emoxformer.training.run as run_module
    from emoxformer.config import load_config, save_config
    from emoxformer.training.resume import recorded_as_training_would

    run = tmp_path / "run"
    run.mkdir()
    config = load_config("quickstart", [f"data.root={sample_root}", *TINY, "train.seed=42"])
    save_config(recorded_as_training_would(config), run / "config.yaml")
    given = []

    class Recorder:
        def __init__(self, config, out, progress=True):
            given.append(config)

        def run(self, resume=False, overwrite=False):
            assert resume
            return None

    monkeypatch.setattr(run_module, "TwoStageTrainer", Recorder)
    return run, config, given


def test_resume_refuses_any_setting_that_differs_from_the_runs_config(stopped_run, capsys):
    """One rule for `train --resume`, `emoxformer.train(resume=True)` and `results`: the run's config.yaml; a flag,
    override or config that differs is refused in one line naming it (it was ignored, or applied with a stale
    config.yaml)."""
    import emoxformer
    from emoxformer.cli import main
    from emoxformer.config import load_config
    from emoxformer.errors import ConfigError

    run, config, given = stopped_run
    for extra, named in ((["--seed", "5"], "train.seed"), (["train.stage1.epochs=9"], "train.stage1.epochs"),
                         (["--set", "model.hidden_size=64"], "model.hidden_size"), (["--data", str(run)], "data.root"),
                         (["--config", "laptop"], "--config"), (["--out", str(run)], "--out")):
        assert main(["train", "--resume", str(run), "--no-progress", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("emoxformer: error: ") and len(err.strip().splitlines()) == 1 and named in err, err
    assert given == []
    # The same values are no change: accepted, and the run trains with its config.yaml.
    assert main(["train", "--resume", str(run), "--no-progress", "--seed", "42", "model.hidden_size=32"]) == 0
    assert given[-1].train.seed == 42 and given[-1].model.hidden_size == 32

    with pytest.raises(ConfigError, match=r"train\.seed: 42 in its config\.yaml, 5 given to train\(\)"):
        emoxformer.train(None, run, overrides=["train.seed=5"], resume=True)
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        emoxformer.train(load_config("quickstart", [f"data.root={config.data.root}", *TINY, "train.batch_size=8"]),
                         run, resume=True)
    assert len(given) == 1
    emoxformer.train(config, run, resume=True)  # the config it started with, as given then
    emoxformer.train(None, run, resume=True)
    assert len(given) == 3 and given[-1].train.seed == given[-2].train.seed == 42


class _Interrupted(RuntimeError):
    pass


class _Kill(L.Callback):
    """Stands in for a kill: raises when epoch `epoch` starts (after the previous epoch's checkpoint), or with
    `epoch=None` when the stage's training ends (after its last checkpoint, before the stage's test)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise _Interrupted(f"stopped at the start of epoch {self.epoch}")

    def on_train_end(self, trainer, pl_module):
        if self.epoch is None:
            raise _Interrupted("stopped after the stage's last epoch")


class _SchedulerAtEnd(L.Callback):
    """The stage's plateau scheduler state and the epoch count when the stage's training ends."""

    def __init__(self):
        self.state = None

    def on_train_end(self, trainer, pl_module):
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        self.state = {key: scheduler.state_dict()[key] for key in ("last_epoch", "best", "num_bad_epochs", "_last_lr")}
        self.state["epochs"] = trainer.current_epoch


@pytest.mark.parametrize("killed", ["mid-stage", "after an early stop"])
def test_a_resumed_stage_keeps_the_plateau_schedule_and_early_stop_of_an_uninterrupted_one(sample_root, tmp_path,
                                                                                          killed):
    """Regression: ReduceLROnPlateau stepped after the end-of-epoch checkpoint and Lightning does not replay that
    step on resume, so a resumed stage counted its epochs one behind; and a stage killed after early stopping had
    decided to stop trained on when resumed."""
    from emoxformer.config import load_config
    from emoxformer.training.run import TwoStageTrainer

    patience = 10 if killed == "mid-stage" else 0  # 0: stop after the first epoch that does not improve validation
    settings = [f"data.root={sample_root}", *TINY, "train.stage1.epochs=4", "train.stage2.epochs=0",
                "train.plateau_patience=0", f"train.stage1.patience={patience}"]
    uninterrupted = _SchedulerAtEnd()
    TwoStageTrainer(load_config("quickstart", settings), tmp_path / "a", progress=False,
                    extra_callbacks=[uninterrupted]).run()
    if killed == "after an early stop":
        assert uninterrupted.state["epochs"] < 4, "the uninterrupted stage did not stop early: nothing to test"
    run = tmp_path / "b"
    with pytest.raises(_Interrupted):
        TwoStageTrainer(load_config("quickstart", settings), run, progress=False,
                        extra_callbacks=[_Kill(2 if killed == "mid-stage" else None)]).run()
    # A kill while the next epoch's state was being written leaves a partial hidden file: never to become last.ckpt.
    (run / "stage1" / "checkpoints" / ".last.ckpt.tmp").write_bytes(b"partial")
    resumed, published = _SchedulerAtEnd(), _PublishedCheckpoints(run / "stage1" / "checkpoints" / "last.ckpt")
    TwoStageTrainer(load_config(run / "config.yaml"), run, progress=False,
                    extra_callbacks=[resumed, published]).run(resume=True)
    assert resumed.state == uninterrupted.state
    assert all(epoch is not None for epoch in published.epochs), published.epochs


class _PublishedCheckpoints(L.Callback):
    """The epoch of `path` as each epoch trains its first batch, loaded as resuming loads it (None: not loadable)."""

    def __init__(self, path):
        self.path, self.epochs = path, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            try:
                self.epochs.append(torch.load(self.path, map_location="cpu", weights_only=True)["epoch"])
            except Exception:
                self.epochs.append(None)
