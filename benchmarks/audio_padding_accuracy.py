"""Validation metrics of a group-norm Wav2Vec2 speech model: batched with zero padding vs one clip at a time.

`audio_batching.py` measures the speed of the batched path; this measures what it costs in accuracy. A
group-norm Wav2Vec2 (the architecture of wav2vec2-base, smaller and randomly initialised since no pretrained
checkpoint installs offline, or a local checkpoint with --backbone) is trained on RAVDESS alone, stage 2 only (backbone trainable), twice from the same
seed: once batched (`model.audio_exact_padding=false`, the default, with `data.bucket_by_length`) and once
exactly (one clip at a time). Each trained model is then also evaluated on validation with the other path, which
isolates the effect of padding on the same weights from the run-to-run difference of training.

With --data ROOT it uses the real RAVDESS (actors 1-18 / 19-20 / 21-24); without, the generated sample data.

Last line: {"name", "baseline_s" (exact run's training seconds), "ours_s" (batched), "ratio", and the validation
weighted-F1 of each run under each path, plus their differences in points}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from audio_batching import save_group_norm_wav2vec2  # noqa: E402
from common import machine, report  # noqa: E402

from emoxformer.config import load_config  # noqa: E402
from emoxformer.data.datamodule import EmoDataModule  # noqa: E402
from emoxformer.data.sample_data import make_sample_data  # noqa: E402
from emoxformer.model.encoders import exact_padding  # noqa: E402
from emoxformer.model.modeling import EmoXFormer  # noqa: E402
from emoxformer.model.preprocessing import Preprocessor  # noqa: E402
from emoxformer.training.evaluate import evaluate_predictions, predict  # noqa: E402
from emoxformer.training.run import TwoStageTrainer  # noqa: E402


def train(root: str, backbone: str, exact: bool, args, out: Path) -> tuple[Path, float]:
    overrides = [
        f"data.root={root}", "data.datasets=[ravdess]", "data.ravdess_replicate=1", "data.bucket_by_length=true",
        f"model.audio_backbone={backbone}", f"model.audio_exact_padding={str(exact).lower()}",
        "model.hidden_size=64", "model.fusion_layers=1", "model.num_heads=2", "model.max_audio_seconds=6.0",
        "train.stage1.epochs=0", f"train.stage2.epochs={args.epochs}", f"train.stage2.patience={args.epochs}",
        f"train.stage2.lr={args.lr}", "train.stage2.schedule=cosine", "train.stage2.warmup=0.05",
        f"train.batch_size={args.batch_size}", "train.loss=cross_entropy", f"train.seed={args.seed}",
        "train.num_workers=0", "train.accelerator=cpu", "train.progress_bar=false",
    ]
    config = load_config("quickstart", overrides)
    start = time.perf_counter()
    TwoStageTrainer(config, out, progress=False).run()
    return out / "best", time.perf_counter() - start


def validation_wf1(model_dir: Path, root: str, exact: bool) -> float:
    """Validation weighted-F1 (points) of a saved model, its audio run batched or one clip at a time."""
    model = EmoXFormer.from_pretrained(model_dir)
    config = load_config("quickstart", [f"data.root={root}", "data.datasets=[ravdess]", "train.accelerator=cpu"])
    datamodule = EmoDataModule(config.data, Preprocessor.for_model(model.config, model_dir), eval_batch_size=32,
                               num_workers=0, progress=False)
    datamodule.setup("validate")
    encoder = model.encoders["audio"]
    if exact:
        with exact_padding(encoder):
            predictions = predict(model, datamodule, "val", config.train)
    else:
        encoder.exact_padding = False
        predictions = predict(model, datamodule, "val", config.train)
    return 100 * evaluate_predictions(predictions, datamodule)["ravdess"]["weighted_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="data root with ravdess/ (default: generated sample data)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--width", type=int, default=128, help="Wav2Vec2 hidden size")
    parser.add_argument("--layers", type=int, default=2, help="Wav2Vec2 transformer layers")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--backbone", help="a local Wav2Vec2 folder with group norm (e.g. wav2vec2-base) instead of a "
                                           "randomly initialised one of --width x --layers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("EMOXFORMER_CACHE", str(tmp / "cache"))
        root = args.data or str(make_sample_data(tmp / "data", seed=0))
        backbone = args.backbone or save_group_norm_wav2vec2(tmp / "wav2vec2", args.width, args.layers)
        described = "from --backbone" if args.backbone else f"{args.width} x {args.layers} (random init)"
        print(f"audio_padding_accuracy: RAVDESS from {'ROOT' if args.data else 'sample data'}, group-norm Wav2Vec2 "
              f"{described}, {args.epochs} stage-2 epochs, batch {args.batch_size}; "
              f"{machine()}", flush=True)
        runs = {}
        for name, exact in (("batched", False), ("exact", True)):
            model_dir, seconds = train(root, backbone, exact, args, tmp / name)
            runs[name] = {"seconds": seconds, "val_batched": validation_wf1(model_dir, root, False),
                          "val_exact": validation_wf1(model_dir, root, True)}
            print(f"  trained {name}: {seconds:.0f} s; validation w-F1 evaluated batched "
                  f"{runs[name]['val_batched']:.2f}, one clip at a time {runs[name]['val_exact']:.2f}", flush=True)
    same_weights = max(abs(r["val_batched"] - r["val_exact"]) for r in runs.values())
    across_runs = runs["batched"]["val_batched"] - runs["exact"]["val_exact"]
    print(f"  same weights, the two paths: at most {same_weights:.2f} points apart; batched run vs exact run, each "
          f"evaluated its own way: {across_runs:+.2f} points")
    report("audio_padding_accuracy", runs["exact"]["seconds"], runs["batched"]["seconds"],
           runs=json.loads(json.dumps(runs, default=float)), same_weights_max_diff=round(same_weights, 2),
           batched_minus_exact_run=round(across_runs, 2))


if __name__ == "__main__":
    main()
