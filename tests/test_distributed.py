"""A real 2-process DDP training on CPU (gloo), launched with torchrun, against a 1-process run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_worker.py")
# Dropout and augmentation off, so the two runs differ only by the order of floating-point sums.
COMMON = [
    "model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
    "model.projection_dropout=0", "model.attention_dropout=0", "model.classifier_dropout=0", "data.augment.enabled=false",
    "data.samples_per_epoch=192", "train.stage1.epochs=2", "train.stage2.epochs=3", "train.accelerator=cpu",
]
# Tolerance: per-dataset test accuracy within 0.1 (a few of the 32-98 test samples). DDP all-reduces gradients in
# another summation order than one process, so weights agree only to float32 rounding; and on CPU, BatchNorm in
# the face CNN normalises each rank's half-batch by its own statistics (SyncBatchNorm is GPU-only in PyTorch).
# Over a few hundred Adam steps either can flip a borderline sample.
TOLERANCE = 0.1


def _run(command, env=None):
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(sample_root, tmp_path_factory):
    single = tmp_path_factory.mktemp("single")
    _run([sys.executable, str(WORKER), str(single), str(sample_root), *COMMON, "train.batch_size=16", "train.devices=1"])
    double = tmp_path_factory.mktemp("ddp")
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(double),
          str(sample_root), *COMMON, "train.batch_size=8", "train.devices=2", "train.strategy=ddp"],
         env={"OMP_NUM_THREADS": "1"})
    return single, double


def test_ddp_run_finishes_and_only_rank_zero_writes(runs):
    _, double = runs
    metrics = json.loads((double / "metrics.json").read_text())
    assert set(metrics["stage2"]) == {"meld", "ravdess", "fer2013"}
    assert (double / "best" / "model.safetensors").is_file()
    assert not list(double.glob("*.tmp")) and not list(double.glob(".*.tmp"))


@pytest.mark.parametrize("stage", [1, 2])
def test_ranks_draw_disjoint_samples_that_together_are_the_single_process_epoch(runs, stage):
    single, double = runs
    one = json.loads((single / f"draws_stage{stage}_rank0.json").read_text())
    ranks = [json.loads((double / f"draws_stage{stage}_rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks) and one["world_size"] == 1
    draws = [{tuple(d) for d in r["draws"]} for r in ranks]
    assert not draws[0] & draws[1]
    assert draws[0] | draws[1] == {tuple(d) for d in one["draws"]}
    assert len(ranks[0]["draws"]) == len(ranks[1]["draws"]) == 96
    for r in ranks:  # the loader really served the sampler's draws
        assert len(r["ids"]) == len(r["draws"])


def test_ddp_metrics_match_single_process(runs):
    single, double = runs
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((double / "metrics.json").read_text())
    for stage in ("stage1", "stage2"):
        for name in a[stage]:
            assert abs(a[stage][name]["accuracy"] - b[stage][name]["accuracy"]) <= TOLERANCE, (stage, name)
