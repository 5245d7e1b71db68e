"""Stage-1 epoch time from the 2nd epoch on: feature cache vs recomputing the frozen backbones every epoch.

The seed ran RoBERTa, Wav2Vec2 and ViT on every sample of every stage-1 epoch although they were frozen.
Here the frozen encoders run once (the cache build, timed and printed separately) and each epoch reads
their outputs. Same model, backbones, sample data and sampler; 2 cores. Last line: {"name", "baseline_s",
"ours_s", "ratio"} with the mean epoch time of epochs 2.. of each run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

sys.path.insert(0, str(Path(__file__).parent))
from common import build_backbones, machine, report  # noqa: E402

from emoxformer.config import load_config  # noqa: E402
from emoxformer.data.sample_data import make_sample_data  # noqa: E402
from emoxformer.training.run import TwoStageTrainer  # noqa: E402


class EpochTimer(L.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.times.append(time.perf_counter() - self.start)


def stage1_epochs(config_overrides: list[str], out: Path) -> list[float]:
    timer = EpochTimer()
    config = load_config("quickstart", config_overrides)
    start = time.perf_counter()
    TwoStageTrainer(config, out, progress=False, extra_callbacks=[timer]).run()
    print(f"    whole run {time.perf_counter() - start:.1f} s, stage-1 epochs: {', '.join(f'{t:.1f}' for t in timer.times)} s")
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=480, help="samples per epoch")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["EMOXFORMER_CACHE"] = str(tmp / "cache")
        paths = build_backbones(tmp / "backbones", args.width, args.layers)
        data = make_sample_data(tmp / "data", seed=0)
        common = [f"data.root={data}", f"model.text_backbone={paths['text']}", f"model.audio_backbone={paths['audio']}",
                  f"model.vision_backbone={paths['vision']}", "model.hidden_size=256", "model.fusion_layers=2",
                  f"data.samples_per_epoch={args.samples}", f"train.stage1.epochs={args.epochs}", "train.stage2.epochs=0",
                  "train.stage1.patience=100", "data.augment.enabled=false"]
        print(f"stage1_cache: {args.epochs} stage-1 epochs of {args.samples} samples, backbones width {args.width} x "
              f"{args.layers} layers, sample data; {machine()}")
        print("  without cache (the seed):")
        baseline = stage1_epochs(common + ["train.feature_cache=false"], tmp / "no-cache")
        print("  with cache (first run builds it):")
        start = time.perf_counter()
        ours = stage1_epochs(common + ["train.feature_cache=true"], tmp / "cache-run")
        print(f"    (cache build included in the whole run; {time.perf_counter() - start:.1f} s)")
    report("stage1_cache", sum(baseline[1:]) / len(baseline[1:]), sum(ours[1:]) / len(ours[1:]))


if __name__ == "__main__":
    main()
