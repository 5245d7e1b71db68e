"""A real 2-process DDP training on CPU (gloo), launched with torchrun, against a 1-process run.

Marked slow (about 2.5 minutes on 2 cores, a quarter of the default run): `python -m pytest -q -m slow` runs it, as
CI does."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_backbones import save_tiny_backbones

from emoxformer.config import load_config
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.evaluate import predict

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")
# Dropout and augmentation off, so the two runs differ only by the order of floating-point sums.
COMMON = [
    "model.hidden_size=32", "model.num_heads=2", "model.fusion_layers=1",
    "model.projection_dropout=0", "model.attention_dropout=0", "model.classifier_dropout=0", "data.augment.enabled=false",
    "data.samples_per_epoch=192", "train.stage1.epochs=1", "train.stage2.epochs=1", "train.accelerator=cpu",
    # The fusion's label-matched pairs are assembled within each process's batch (training/pairs.py), as BatchNorm
    # statistics are per process: a 2-process run's pairs are not a 1-process run's, so they are off here.
    "train.fusion_pairs=0",
]
# Per-sample test probabilities of each stage's best model. Measured with 2 + 3 epochs: at most 1.2e-7 apart (logits
# 6e-7) after both stages, while stage 2 moves them by about 0.1 from stage 1; 1e-5 leaves room for other CPUs' sums.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def backbones(tmp_path_factory) -> dict[str, str]:
    """Tiny HF backbones without dropout. Not the built-in encoders: their transformer layers keep dropout 0.1, and
    the face CNN's BatchNorm normalises each rank's half-batch by its own statistics (SyncBatchNorm is GPU-only),
    so either would set a 2-process run apart from a 1-process one by more than rounding."""
    paths = save_tiny_backbones(tmp_path_factory.mktemp("backbones"))
    for path in paths.values():
        config_file = Path(path) / "config.json"
        values = json.loads(config_file.read_text())
        values.update({key: 0.0 for key in values if "dropout" in key or key == "layerdrop"})
        config_file.write_text(json.dumps(values))
    return paths


def _run(command, env=None):
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(sample_root, backbones, tmp_path_factory):
    common = COMMON + [f"model.{modality}_backbone={path}" for modality, path in backbones.items()]
    single = tmp_path_factory.mktemp("single")
    _run([sys.executable, str(WORKER), str(single), str(sample_root), *common, "train.batch_size=16", "train.devices=1"])
    double = tmp_path_factory.mktemp("ddp")
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(double),
          str(sample_root), *common, "train.batch_size=8", "train.devices=2", "train.strategy=ddp"],
         env={"OMP_NUM_THREADS": "1"})
    return single, double


def _test_predictions(run: Path, model_dir: str) -> dict:
    config = load_config(run / "config.yaml")
    model = EmoXFormer.from_pretrained(run / model_dir)
    datamodule = EmoDataModule(config.data, Preprocessor.for_model(model.config, run / model_dir), progress=False)
    datamodule.setup()
    return predict(model, datamodule, "test", config.train)


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


def test_ddp_predicts_every_test_sample_as_the_single_process(runs):
    single, double = runs
    moved = {}
    for stage in ("stage1", "stage2"):
        one, two = (_test_predictions(run, f"{stage}/best") for run in (single, double))
        assert one["ids"] == two["ids"] and len(one["ids"]) > 100
        gap = (one["probabilities"] - two["probabilities"]).abs().max().item()
        assert gap <= TOLERANCE, (stage, gap)
        moved[stage] = one["probabilities"]
    # Stage 2 really trained, far beyond the tolerance: the comparison above could tell its runs apart.
    assert (moved["stage1"] - moved["stage2"]).abs().max().item() > 1000 * TOLERANCE
