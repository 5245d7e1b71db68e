"""Stage-2 training step on a mixed batch: per-modality dispatch vs running every encoder on every sample.

A balanced batch of 32 holds ~11 samples of each dataset. The seed ran RoBERTa, Wav2Vec2 and ViT on all 32
(absent modalities as zero placeholders); this project runs each encoder only on the samples that have its
modality. Same model, weights and batch; one forward + backward + AdamW step, backbones trainable (stage 2).
Last line: {"name", "baseline_s", "ours_s", "ratio"}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import build_model, machine, mixed_samples, report, seed_style, timed  # noqa: E402

from emoxformer.data.collate import Collator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, preprocessor = build_model(args.width, args.layers)
    model.train()
    batch = Collator(preprocessor.pad_id)(mixed_samples(preprocessor, args.batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"stage2_dispatch: batch {args.batch_size} (text/audio/image in thirds, 3.5 s clips, 224 px), "
          f"backbones width {args.width} x {args.layers} layers, {parameters / 1e6:.1f} M parameters; {machine()}")

    def step(b):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(b), b["labels"]).backward()
        optimizer.step()

    full = seed_style(batch)
    step(batch)  # warm-up
    ours = timed(lambda: step(batch), args.repeats)
    baseline = timed(lambda: step(full), args.repeats)
    report("stage2_dispatch", baseline, ours)


if __name__ == "__main__":
    main()
