"""Scale the experts head's learned residual (the cross-attention fusion's correction to the product of the
calibrated single-modality answers) by alpha, and score the model's fusion on the label-matched validation and test
examples of a finished run for each alpha. alpha 0 is late fusion; alpha 1 is the trained model. Usage:

    python scripts/residual_scale_eval.py RUN_DIR [ALPHA ...]     # default alphas 0 0.25 0.5 0.75 1
    # prints one line per alpha and writes RUN_DIR/residual_scale_eval.json

Used for RESULTS.md's residual-scale measurement; not covered by the tests.
"""
import json
import sys
from pathlib import Path

import torch

from emoxformer.config import load_config
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.evaluate import paired_test_metrics


class ScaledResidual(torch.nn.Module):
    def __init__(self, residual: torch.nn.Module):
        super().__init__()
        self.residual, self.alpha = residual, 1.0

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.alpha * self.residual(pooled)


run = Path(sys.argv[1])
alphas = [float(a) for a in sys.argv[2:]] or [0.0, 0.25, 0.5, 0.75, 1.0]
config = load_config(run / "config.yaml")
model = EmoXFormer.from_pretrained(run / "best").eval()  # its temperatures and priors as the run's end saved them
if model.config.head != "experts":
    sys.exit(f"{run}: the model's head is {model.config.head!r}; only the experts head has a residual to scale")
datamodule = EmoDataModule(config.data, Preprocessor.for_model(model.config, run / "best"), batch_size=32,
                           eval_batch_size=128, num_workers=0, seed=config.train.seed, progress=False)
datamodule.setup()
scaled = model.heads["fused"] = ScaledResidual(model.heads["fused"])
results = {}
for alpha in alphas:
    scaled.alpha = alpha
    results[alpha] = {}
    for split in ("val", "test"):
        subsets = paired_test_metrics(model, datamodule, config.train, seed=config.data.split_seed, split=split,
                                      fusions=("model",))["model"]
        accuracy = {name: 100 * m["accuracy"] for name, m in subsets.items() if "+" in name}
        results[alpha][split] = {**accuracy, "mean": sum(accuracy.values()) / len(accuracy)}
    print(f"alpha {alpha:.2f}  " + "   ".join(
        f"{split}: " + " ".join(f"{name} {value:.1f}" for name, value in row.items()) for split, row in results[alpha].items()),
        flush=True)
(run / "residual_scale_eval.json").write_text(json.dumps(results, indent=1))
