"""Kill a training run with SIGKILL in the middle of each stage, resume it, and compare with an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

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
