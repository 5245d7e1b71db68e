"""Cost of a cached stage-1 step against its limit.

With the feature cache a stage-1 step is fusion and head alone: collate the cached float16 features of a batch
(Collator.pad_features, as the training loader does), forward, loss, backward and AdamW as
EmoXFormerModule.configure_optimizers builds it (torch's default implementation: per tensor on a CPU, foreach on
CUDA; on 2 CPU cores foreach was no faster and fused about 15x slower). Its limit is a bare step of the same fusion and head on
random float32 tensors of the same shapes, collated beforehand. Paper width: fusion 512 wide, 4 layers, 4 heads,
768-wide encoder outputs (RoBERTa / wav2vec2 / ViT-base), batch in thirds: text 96-128 tokens, audio 150-250
tokens (3-5 s of wav2vec2 frames), one image token. The two alternate.

Last line: {"name", "baseline_s" (bare step), "ours_s" (cached step), "ratio" (bare / cached, at most about 1),
            "cached_step_vs_bare" (cached / bare), "collate_s" (Collator alone)}.
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

FEATURE_WIDTH = 768
TOKENS = {"text": (96, 129), "audio": (150, 251), "vision": (1, 2)}


def cached_samples(count: int, seed: int = 0) -> list[dict]:
    """Samples as the feature cache serves them: each a float16 [tokens, 768] array of one modality."""
    rng = np.random.default_rng(seed)
    modalities = list(TOKENS)
    samples = []
    for i in range(count):
        modality = modalities[i % 3]
        tokens = int(rng.integers(*TOKENS[modality]))
        features = rng.standard_normal((tokens, FEATURE_WIDTH)).astype(np.float16)
        samples.append({"encoder_outputs": {modality: features}, "label": int(rng.integers(7)), "dataset": i % 3})
    return samples


def random_like(batch: dict) -> dict:
    """The same batch with random float32 features (the bare step's input)."""
    outputs = batch["encoder_outputs"]
    bare = dict(batch, encoder_outputs={modality: {"hidden": torch.randn_like(o["hidden"]), "valid": o["valid"]}
                                         for modality, o in outputs.items()})
    return bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per side (best of)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = EmoXFormer.from_config(EmoXFormerConfig(builtin_width=FEATURE_WIDTH, hidden_size=512, fusion_layers=4,
                                                    num_heads=4))
    model.train()
    model.freeze_backbones()
    trainable = [p for p in model.parameters() if p.requires_grad]
    collate = Collator(0)
    samples = cached_samples(args.batch_size)
    bare_batch = random_like(collate(samples))
    optimizer = torch.optim.AdamW([{"params": trainable}], lr=1e-4, weight_decay=1e-4)
    print(f"cached_step: batch {args.batch_size} in thirds (text 96-128, audio 150-250, vision 1 tokens of width "
          f"{FEATURE_WIDTH}), fusion 512 x 4 layers x 4 heads, {sum(p.numel() for p in trainable) / 1e6:.1f} M "
          f"trainable; best of {args.repeats}; {machine()}", flush=True)

    def step(batch: dict, optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(batch).logits, batch["labels"]).backward()
        optimizer.step()

    step(bare_batch, optimizer)  # warm-up: AdamW allocates its state on the first step
    bare, cached = timed_pair(lambda: step(bare_batch, optimizer), lambda: step(collate(samples), optimizer),
                              args.repeats)
    collate_s = timed(lambda: collate(samples), args.repeats)
    print(f"  step: bare {bare * 1e3:.0f} ms, cached {cached * 1e3:.0f} ms (collate alone {collate_s * 1e3:.0f} ms)")
    report("cached_step", bare, cached, cached_step_vs_bare=round(cached / bare, 2), collate_s=round(collate_s, 4),
           batch_size=args.batch_size)


if __name__ == "__main__":
    main()
