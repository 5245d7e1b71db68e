"""Stage-2 training step on a mixed batch: per-modality dispatch vs running every encoder on every sample.

A balanced batch holds a third of each dataset. The reference code ran RoBERTa, Wav2Vec2 and ViT on every
sample (absent modalities as zero placeholders, padded to the batch's lengths); this project runs each encoder
only on the samples that have its modality. Same model, weights and batch; one forward + backward + AdamW
step, backbones trainable (stage 2); the two ways alternate.

Presets:
  tiny  (default): backbones of --width x --layers, batch 32, best of 3.
  paper: RoBERTa-base, wav2vec2-base (group-norm feature extractor) and ViT-B/16 at 224, random weights from
         transformers configs, fusion 512 wide, 4 layers, 4 heads; batch 9 (3 per modality) and one timed step
         per side, so that it fits 2 cores and a few GB in under 10 minutes.
Last line: {"name", "baseline_s", "ours_s", "ratio"}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import PRESETS, build_model, machine, mixed_samples, report, seed_style, timed_pair  # noqa: E402

from emoxformer.data.collate import Collator  # noqa: E402

PRESET_DEFAULTS = {"tiny": {"batch_size": 32, "repeats": 3}, "paper": {"batch_size": 9, "repeats": 1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="tiny")
    parser.add_argument("--batch-size", type=int, default=None, help="tiny 32, paper 9")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per side (best of); tiny 3, paper 1")
    parser.add_argument("--width", type=int, default=256, help="tiny: backbone width")
    parser.add_argument("--layers", type=int, default=4, help="tiny: backbone layers")
    args = parser.parse_args()
    defaults = PRESET_DEFAULTS[args.preset]
    batch_size = args.batch_size or defaults["batch_size"]
    repeats = args.repeats or defaults["repeats"]
    model, preprocessor = build_model(args.width, args.layers, args.preset)
    model.train()
    batch = Collator(preprocessor.pad_id)(mixed_samples(preprocessor, batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    parameters = sum(p.numel() for p in model.parameters())
    backbones = ("RoBERTa-base + wav2vec2-base + ViT-B/16" if args.preset == "paper"
                 else f"backbones width {args.width} x {args.layers} layers")
    print(f"stage2_dispatch ({args.preset}): batch {batch_size} (text/audio/image in thirds, 3.5 s clips, 224 px), "
          f"{backbones}, {parameters / 1e6:.0f} M parameters, best of {repeats}; {machine()}", flush=True)

    def step(b):
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(b).logits, b["labels"]).backward()
        optimizer.step()

    reference = seed_style(batch)
    step(batch)  # warm-up: AdamW allocates its state on the first step
    baseline, ours = timed_pair(lambda: step(reference), lambda: step(batch), repeats)
    print(f"  step: reference {baseline:.2f} s, dispatch {ours:.2f} s")
    report("stage2_dispatch", baseline, ours, preset=args.preset, batch_size=batch_size)


if __name__ == "__main__":
    main()
