"""Inference latency of text-only, audio-only and image-only requests: Predictor vs the reference code's approach.

The reference code's model ran its encoders on placeholders for the modalities a request lacks: a black image
through ViT and 400 samples of silence through Wav2Vec2; RoBERTa only ran when there was text (it checked
`input_ids.size(1) > 1`). The Predictor runs only the encoders of the given modalities. Same model, weights and
inputs; requests are served one at a time, as an interactive user sends them, the two ways alternating.
Prints requests/s per kind, then the last line {"name", "baseline_s", "ours_s", "ratio"} for all requests
together, with `ratio_text`, `ratio_audio` and `ratio_image` per kind.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import build_model, machine, report, seed_style, timed_pair  # noqa: E402

from emoxformer.inference import Predictor  # noqa: E402


def requests_of_each_kind(count: int, seconds: float, seed: int = 0) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed)
    return {
        "text": [{"text": " ".join(f"w{w}" for w in rng.integers(5, 999, 20))} for _ in range(count)],
        "audio": [{"audio": rng.standard_normal(int(16_000 * seconds)).astype(np.float32) * 0.1, "sample_rate": 16_000}
                  for _ in range(count)],
        "image": [{"image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)} for _ in range(count)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=8, help="requests of each kind")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each audio request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    model, preprocessor = build_model(args.width, args.layers)
    predictor = Predictor(model, preprocessor, device="cpu", detect_faces=False)
    black_image = predictor.processor.prepare_image(np.zeros((48, 48), np.uint8))
    print(f"inference: {args.requests} single requests of each kind ({args.seconds:g} s audio), backbones width "
          f"{args.width} x {args.layers} layers; {machine()}")

    @torch.no_grad()
    def reference_predict(item: dict):
        sample = predictor.prepare(**item)
        sample.setdefault("vision", black_image)
        batch = seed_style(predictor.processor.collate([sample]))  # collation belongs to the processor
        return model.probabilities(model(batch))

    totals = {"baseline": 0.0, "ours": 0.0}
    ratios = {}
    for kind, items in requests_of_each_kind(args.requests, args.seconds).items():
        predictor.predict(**items[0]), reference_predict(items[0])  # warm-up
        baseline, ours = timed_pair(lambda: [reference_predict(item) for item in items],
                                    lambda: [predictor.predict(**item) for item in items], args.repeats)
        totals["baseline"] += baseline
        totals["ours"] += ours
        ratios[f"ratio_{kind}"] = round(baseline / ours, 2)
        print(f"  {kind:<6} ours {len(items) / ours:7.1f} requests/s   reference-style {len(items) / baseline:7.1f} "
              f"requests/s   x{baseline / ours:.2f}")
    report("inference", totals["baseline"], totals["ours"], **ratios)


if __name__ == "__main__":
    main()
