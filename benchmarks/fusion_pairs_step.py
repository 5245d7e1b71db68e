"""Cost of the label-matched pairs in a cached stage-1 step of the laptop recipe's fusion.

A stage-1 step with the feature cache is fusion and heads alone. The reference step: `model.head=concat`, one
modality per sample, no pairs (the recipe before the fusion learned). Ours: `model.head=experts` with the pairs a
training step assembles from the batch (training/pairs.py), fused from the tokens already computed, and their loss.
Shapes of the laptop recipe (configs/laptop.yaml): fusion 256 wide, 2 layers, 4 heads; cached features of
all-MiniLM-L6-v2 (384 wide, 15-40 tokens), the speaker LSTM (256 wide, 30-60 tokens of 0.1 s) and MobileNetV2
(1,280 wide, one pooled token), the batch in thirds. The two steps alternate.

Last line: {"name", "baseline_s" (reference step), "ours_s" (experts + pairs), "ratio", "experts_without_pairs_s",
            "pairs_per_batch"}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report, timed, timed_pair  # noqa: E402

from emoxformer.data.collate import Collator  # noqa: E402
from emoxformer.model.config import EmoXFormerConfig  # noqa: E402
from emoxformer.model.modeling import EmoXFormer  # noqa: E402
from emoxformer.training.pairs import label_matched_rows, pair_labels  # noqa: E402

SHAPES = {"text": (384, 15, 41), "audio": (256, 30, 61), "vision": (1280, 1, 2)}


def cached_batch(count: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        modality = list(SHAPES)[i % 3]
        width, low, high = SHAPES[modality]
        features = rng.standard_normal((int(rng.integers(low, high)), width)).astype(np.float16)
        samples.append({"encoder_outputs": {modality: features}, "label": int(rng.integers(7)), "dataset": i % 3})
    return Collator(0)(samples)


def model_for(head: str, width: int, layers: int) -> EmoXFormer:
    # Builtin encoders stand in for the frozen backbones: a cached step never runs them.
    config = EmoXFormerConfig(head=head, hidden_size=width, fusion_layers=layers, num_heads=4, builtin_width=32)
    model = EmoXFormer(config)
    for modality, (feature_width, _, _) in SHAPES.items():
        model.projections[modality][0] = torch.nn.Linear(feature_width, width)
    model.train()
    model.freeze_backbones()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per side (best of)")
    args = parser.parse_args()
    torch.manual_seed(0)
    batch = cached_batch(args.batch_size)
    reference, experts = model_for("concat", args.width, args.layers), model_for("experts", args.width, args.layers)
    optimizers = {id(m): torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3, fused=True)
                  for m in (reference, experts)}
    pairs_seen = []

    def step(model: EmoXFormer, with_pairs: bool) -> None:
        optimizer = optimizers[id(model)]
        optimizer.zero_grad(set_to_none=True)
        rows = label_matched_rows(batch["labels"], batch["present"]) if with_pairs else {}
        output = model(batch, fusion="model", pair_rows=rows or None)
        loss = torch.nn.functional.cross_entropy(output.logits, batch["labels"])
        if output.pair_logits is not None:
            pairs_seen.append(len(output.pair_logits))
            loss = loss + torch.nn.functional.cross_entropy(output.pair_logits, pair_labels(batch["labels"], rows))
        loss.backward()
        optimizer.step()

    step(reference, False), step(experts, True)  # warm-up: AdamW allocates its state on the first step
    print(f"fusion_pairs_step: batch {args.batch_size} in thirds, fusion {args.width} x {args.layers} layers x 4 heads; "
          f"best of {args.repeats}; {machine()}", flush=True)
    baseline, ours = timed_pair(lambda: step(reference, False), lambda: step(experts, True), args.repeats)
    without = timed(lambda: step(experts, False), args.repeats)
    print(f"  step: reference (concat head, no pairs) {baseline * 1e3:.1f} ms, experts without pairs {without * 1e3:.1f} ms, "
          f"experts with pairs {ours * 1e3:.1f} ms ({np.mean(pairs_seen):.0f} pairs a batch)")
    report("fusion_pairs_step", baseline, ours, experts_without_pairs_s=round(without, 4),
           pairs_per_batch=round(float(np.mean(pairs_seen)), 1))


if __name__ == "__main__":
    main()
