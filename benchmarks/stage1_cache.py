"""Stage-1 epoch time: feature cache vs recomputing the frozen backbones every epoch (the reference code).

The reference code ran RoBERTa, Wav2Vec2 and ViT on every sample of every stage-1 epoch although they were
frozen. Here the frozen encoders run once (the cache build, timed separately) and each epoch reads their
outputs. Both sides train the same model on the same samples in the same order, validation included in each
epoch, without augmentation (the cache holds un-augmented inputs by default).

Presets:
  tiny  (default, 5-10 minutes on 2 cores): the whole TwoStageTrainer run (stage 1 only) on the generated sample data,
        backbones of --width x --layers; epoch times from the 2nd epoch on.
  paper (under 10 minutes on 2 cores): RoBERTa-base, wav2vec2-base (group-norm feature extractor) and
        ViT-B/16 at 224, random weights from transformers configs, fusion 512 wide, 4 layers, 4 heads; the
        stage-1 training and validation loops without Lightning on a subset of the sample data (--samples
        training draws, a third per dataset, each record once; --val-samples validation samples).

Prints the per-epoch ratio and the projected ratio of the paper's 50-epoch stage 1 with the cache build:
50 x baseline epoch / (cache build + 50 x cached epoch). Last line: {"name", "baseline_s", "ours_s", "ratio"}
(mean epoch times) plus `cache_build_s` and `projected_50_epoch_ratio`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import PRESETS, build_backbones, build_model, machine, report  # noqa: E402

from emoxformer.config import load_config  # noqa: E402
from emoxformer.data.sample_data import make_sample_data  # noqa: E402
from emoxformer.training import feature_cache  # noqa: E402

PAPER_STAGE1_EPOCHS = 50


class EpochTimer(L.Callback):
    def __init__(self):
        self.times = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.times.append(time.perf_counter() - self.start)


def projected_ratio(baseline_epoch_s: float, cache_build_s: float, cached_epoch_s: float,
                    epochs: int = PAPER_STAGE1_EPOCHS) -> float:
    return epochs * baseline_epoch_s / (cache_build_s + epochs * cached_epoch_s)


def print_and_report(baseline: list[float], ours: list[float], cache_build_s: float) -> None:
    """Mean of the epochs after the first on each side (the first carries one-off warm-up costs)."""
    baseline_epoch = sum(baseline[1:]) / len(baseline[1:])
    ours_epoch = sum(ours[1:]) / len(ours[1:])
    projected = projected_ratio(baseline_epoch, cache_build_s, ours_epoch)
    print(f"  per epoch: reference {baseline_epoch:.2f} s, cached {ours_epoch:.2f} s, x{baseline_epoch / ours_epoch:.1f}")
    print(f"  {PAPER_STAGE1_EPOCHS}-epoch stage 1 projected: reference {PAPER_STAGE1_EPOCHS * baseline_epoch:.0f} s, "
          f"cached {cache_build_s:.1f} s build + {PAPER_STAGE1_EPOCHS * ours_epoch:.0f} s, x{projected:.1f}")
    report("stage1_cache", baseline_epoch, ours_epoch, cache_build_s=round(cache_build_s, 3),
           projected_50_epoch_ratio=round(projected, 2))


# ----------------------------------------------------------------------------- tiny: the whole trainer
class CacheBuildTimer:
    """Times feature_cache.cached_tables, which the trainer calls once per cached stage."""

    def __init__(self):
        self.seconds = 0.0
        self.original = feature_cache.cached_tables

    def __enter__(self):
        def timed_cached_tables(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        feature_cache.cached_tables = timed_cached_tables
        return self

    def __exit__(self, *exc):
        feature_cache.cached_tables = self.original


def trainer_stage1(config_overrides: list[str], out: Path) -> list[float]:
    from emoxformer.training.run import TwoStageTrainer

    timer = EpochTimer()
    config = load_config("quickstart", config_overrides)
    start = time.perf_counter()
    TwoStageTrainer(config, out, progress=False, extra_callbacks=[timer]).run()
    print(f"    whole run {time.perf_counter() - start:.1f} s, stage-1 epochs: {', '.join(f'{t:.1f}' for t in timer.times)} s")
    return timer.times


def run_tiny(args, tmp: Path) -> None:
    paths = build_backbones(tmp / "backbones", args.width, args.layers)
    data = make_sample_data(tmp / "data", seed=0)
    common = [f"data.root={data}", f"model.text_backbone={paths['text']}", f"model.audio_backbone={paths['audio']}",
              f"model.vision_backbone={paths['vision']}", "model.hidden_size=256", "model.fusion_layers=2",
              f"data.samples_per_epoch={args.samples}", f"train.stage1.epochs={args.epochs}", "train.stage2.epochs=0",
              "train.stage1.patience=100", "data.augment.enabled=false"]
    print(f"stage1_cache (tiny): {args.epochs} stage-1 epochs of {args.samples} samples, backbones width {args.width} x "
          f"{args.layers} layers, sample data; {machine()}")
    print("  without cache (the reference code):")
    baseline = trainer_stage1(common + ["train.feature_cache=false"], tmp / "no-cache")
    print("  with cache (this run builds it):")
    with CacheBuildTimer() as build:
        ours = trainer_stage1(common + ["train.feature_cache=true"], tmp / "cache-run")
    print(f"    cache build {build.seconds:.1f} s")
    print_and_report(baseline, ours, build.seconds)


# ----------------------------------------------------------------------------- paper: the stage-1 loops
def paper_subsets(datamodule, train_per_dataset: int, val_per_dataset: int) -> tuple[list, list]:
    """The first records of each dataset's train and val split, as RecordDatasets like the datamodule's."""
    from emoxformer.data.datasets import RecordDataset

    def subset(dataset, count):
        # distinct records: the datamodule's RAVDESS train list repeats each record `ravdess_replicate` times
        records = list({id(r): r for r in dataset.records}.values())[:count]
        return RecordDataset(records, dataset.dataset_index, dataset.preprocessor, None, dataset.state)

    names = datamodule.names
    return ([subset(datamodule.splits[n]["train"], train_per_dataset) for n in names],
            [subset(datamodule.splits[n]["val"], val_per_dataset) for n in names])


def stage1_epoch(model, train_loader, val_loader, optimizer, loss_fn) -> float:
    """One epoch of stage 1 (training steps, then validation), in seconds."""
    start = time.perf_counter()
    model.train()
    for batch in train_loader:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(batch).logits, batch["labels"]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for batch in val_loader:
            model(batch)
    return time.perf_counter() - start


def build_cache(model, datasets: list, collate, batch_size: int) -> list:
    """The datasets serving their encoder outputs from feature tables (what the trainer's cache does, without the
    disk)."""
    from emoxformer.data.encoder_outputs import EncoderOutputDataset, FeatureTable

    served = []
    for dataset in datasets:
        modality = dataset.modality.name
        tokens, offsets = feature_cache.build_table(model, dataset, modality, 1, collate, torch.device("cpu"),
                                                    batch_size, 0, False)
        served.append(EncoderOutputDataset(dataset, FeatureTable(tokens, offsets, 1), modality))
    return served


def run_paper(args, tmp: Path) -> None:
    from torch.utils.data import ConcatDataset, DataLoader

    from emoxformer.data.datamodule import EmoDataModule
    from emoxformer.data.datasets import TrainingSet
    from emoxformer.data.sampler import BalancedSampler
    from emoxformer.model.losses import build_loss

    torch.manual_seed(0)
    model, preprocessor = build_model(preset="paper")  # EmoXFormerConfig's fusion defaults are the paper's
    config = load_config("paper", [f"data.root={make_sample_data(tmp / 'data', seed=0)}", "data.augment.enabled=false"])
    datamodule = EmoDataModule(config.data, preprocessor, config.train.batch_size, config.train.eval_batch_size, 0, 0, False)
    datamodule.setup("fit")
    per_dataset = args.samples // len(datamodule.names)
    train_parts, val_parts = paper_subsets(datamodule, per_dataset, args.val_samples // len(datamodule.names))
    train_set, val_set = TrainingSet(train_parts), ConcatDataset(val_parts)
    sampler = BalancedSampler([len(p) for p in train_parts], len(train_set), seed=0)

    def loaders(train_datasets: list, val_datasets: list) -> tuple[DataLoader, DataLoader]:
        return (DataLoader(TrainingSet(train_datasets), batch_size=config.train.batch_size, sampler=sampler,
                           collate_fn=datamodule.collate),
                DataLoader(ConcatDataset(val_datasets), batch_size=config.train.eval_batch_size, collate_fn=datamodule.collate))

    train_loader, val_loader = loaders(train_parts, val_parts)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"stage1_cache (paper): RoBERTa-base + wav2vec2-base + ViT-B/16 (random weights), fusion 512 x 4 layers x 4 "
          f"heads, {parameters / 1e6:.0f} M parameters; {len(train_set)} training draws ({per_dataset} per dataset) and "
          f"{len(val_set)} validation samples of the sample data per epoch (RAVDESS sample clips last 1.2-1.8 s, real "
          f"ones about 3.7 s); {machine()}")
    model.freeze_backbones(True)
    loss_fn = build_loss(config.train.loss, config.train.focal_gamma)

    def epochs(count: int) -> list[float]:
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.train.stage1.lr,
                                      weight_decay=config.train.weight_decay)
        times = []
        for epoch in range(count):
            sampler.set_epoch(epoch)
            times.append(stage1_epoch(model, train_loader, val_loader, optimizer, loss_fn))
        return times

    baseline = epochs(args.epochs)
    print(f"  without cache (the reference code): epochs {', '.join(f'{t:.1f}' for t in baseline)} s")
    start = time.perf_counter()
    served = build_cache(model, train_parts + val_parts, datamodule.collate, config.train.eval_batch_size)
    train_loader, val_loader = loaders(served[:len(train_parts)], served[len(train_parts):])
    cache_build_s = time.perf_counter() - start
    ours = epochs(args.epochs + 1)
    print(f"  with cache: build {cache_build_s:.1f} s, epochs {', '.join(f'{t:.2f}' for t in ours)} s")
    print_and_report(baseline, ours, cache_build_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--epochs", type=int, default=None, help="stage-1 epochs per side (tiny 3, paper 2)")
    parser.add_argument("--samples", type=int, default=None, help="training draws per epoch (tiny 480, paper 96)")
    parser.add_argument("--val-samples", type=int, default=24, help="paper: validation samples per epoch")
    parser.add_argument("--width", type=int, default=256, help="tiny: backbone width")
    parser.add_argument("--layers", type=int, default=4, help="tiny: backbone layers")
    args = parser.parse_args()
    paper = args.preset == "paper"
    args.epochs = args.epochs or (2 if paper else 3)
    args.samples = args.samples or (96 if paper else 480)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EMOXFORMER_CACHE"] = str(Path(tmp) / "cache")
        (run_paper if paper else run_tiny)(args, Path(tmp))


if __name__ == "__main__":
    main()
