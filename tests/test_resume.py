"""Kill a training run with SIGKILL in the middle of each stage, resume it, and compare with an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

SETTINGS = [
    "model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
    "data.samples_per_epoch=160", "train.batch_size=16", "train.stage1.epochs=4", "train.stage2.epochs=4",
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
    return _metrics(run)


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_sigkill_then_resume_matches_uninterrupted_run(sample_root, tmp_path, reference, stage):
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
    final_config.pop("temperature"), chosen_config.pop("temperature")
    assert final_config == chosen_config


def test_resuming_a_finished_run_saves_the_best_stage(sample_root, tmp_path):
    from emoxformer.cli import main

    run = tmp_path / "run"
    common = ["--data", str(sample_root), "--out", str(run), "--no-progress", *TINY]
    assert main(["train", *common, "train.stage1.epochs=2", "train.stage2.epochs=2"]) == 0
    first = _metrics(run)
    assert first["best_stage"] == "stage2"  # these settings fine-tune to a better model: stage 1's weights would be wrong
    _assert_final_model_is_the_best_stage(run)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # nothing left to train: only the final step
    resumed = _metrics(run)
    assert resumed["best_stage"] == "stage2" and resumed["stage2"] == first["stage2"]
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
