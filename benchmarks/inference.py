"""Inference throughput for text-only, audio-only and image-only requests: Predictor vs the seed's approach.

The seed's model ran all three backbones on every request, with zero placeholders for the modalities a
request lacks; the Predictor runs only the encoders of the given modalities. Same model and inputs; requests
are served one at a time, as an interactive user sends them. Prints requests/s per kind, then the last line
{"name", "baseline_s", "ours_s", "ratio"} for all requests together.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import build_model, machine, report, seed_style, timed  # noqa: E402

from emoxformer.inference import Predictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=8, help="requests of each kind")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    model, preprocessor = build_model(args.width, args.layers)
    predictor = Predictor(model, preprocessor, device="cpu", detect_faces=False)
    rng = np.random.default_rng(0)
    requests = {
        "text": [{"text": " ".join(f"w{w}" for w in rng.integers(5, 999, 20))} for _ in range(args.requests)],
        "audio": [{"audio": rng.standard_normal(16_000 * 3).astype(np.float32) * 0.1, "sample_rate": 16_000} for _ in range(args.requests)],
        "image": [{"image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)} for _ in range(args.requests)],
    }
    blank = predictor.preprocessor.prepare_image(np.zeros((48, 48), np.uint8))
    print(f"inference: {args.requests} single requests of each kind, backbones width {args.width} x {args.layers} layers; {machine()}")

    @torch.no_grad()
    def seed_style_predict(item):
        sample = predictor.prepare(**item)
        sample.setdefault("vision", blank)  # placeholders: a black image, zero audio and an empty text
        batch = seed_style(predictor.collate([sample]))
        return model.probabilities(model(batch))

    totals = {"ours": 0.0, "baseline": 0.0}
    for kind, items in requests.items():
        predictor.predict(**items[0])
        ours = timed(lambda: [predictor.predict(**item) for item in items], 2)
        baseline = timed(lambda: [seed_style_predict(item) for item in items], 2)
        totals["ours"] += ours
        totals["baseline"] += baseline
        print(f"  {kind:<6} ours {len(items) / ours:7.1f} requests/s   seed-style {len(items) / baseline:7.1f} requests/s   "
              f"x{baseline / ours:.2f}")
    report("inference", totals["baseline"], totals["ours"])


if __name__ == "__main__":
    main()
