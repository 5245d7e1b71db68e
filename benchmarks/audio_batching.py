"""Stage-2 step with a group-norm Wav2Vec2 (as wav2vec2-base): batched with zero padding vs one clip at a time.

Group-norm feature extractors must not be given an attention mask, so an exact batch runs each clip alone
(`model.audio_exact_padding=true`); by default a batch runs zero-padded in one backbone call, as Hugging Face
advises for these checkpoints, and `data.bucket_by_length` keeps the padding small. Audio-only model, batch of
RAVDESS-like clips (2.9-5.3 s, uniform), one forward + backward + AdamW step, backbone trainable; the ways alternate.
The batches come from data.sampler: a bucketed batch (LengthBucketBatches) and a plain one (BalancedSampler order),
each the one with the median padding of its epoch.

Last line: {"name", "baseline_s" (per clip), "ours_s" (batched, bucketed), "ratio",
            "ratio_unbucketed" (batched, plain batch), "padding_bucketed", "padding_plain" (fraction of padded samples)}.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report, timed_pair  # noqa: E402

from emoxformer.data.collate import Collator  # noqa: E402
from emoxformer.data.sampler import BalancedSampler, LengthBucketBatches  # noqa: E402
from emoxformer.model.config import EmoXFormerConfig  # noqa: E402
from emoxformer.model.modeling import EmoXFormer  # noqa: E402

EPOCH_BATCHES = 20  # one bucketing window


def save_group_norm_wav2vec2(folder: Path, width: int, layers: int) -> str:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=width, num_hidden_layers=layers, num_attention_heads=max(1, width // 64),
                                 intermediate_size=4 * width, conv_dim=(128,) * 7, feat_extract_norm="group",
                                 do_stable_layer_norm=False)).save_pretrained(folder)
    return str(folder)


def median_padding_batch(batches: list[list[int]], lengths: np.ndarray) -> tuple[list[int], float, float]:
    """The batch with the median padded fraction, that fraction, and the epoch's mean padded fraction."""
    padding = [1 - lengths[b].sum() / (len(b) * lengths[b].max()) for b in batches]
    median = int(np.argsort(padding)[len(padding) // 2])
    return batches[median], padding[median], float(np.mean(padding))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per side (best of)")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    count = args.batch_size * EPOCH_BATCHES
    lengths = rng.integers(int(2.9 * 16_000), int(5.3 * 16_000), count)
    sampler = BalancedSampler([count], count, seed=0)
    bucketed = [[d[0] for d in b] for b in LengthBucketBatches(sampler, lengths, args.batch_size)]
    draws = [d[0] for d in sampler]
    plain = [draws[i:i + args.batch_size] for i in range(0, count, args.batch_size)]
    bucketed_rows, _, padding_bucketed = median_padding_batch(bucketed, lengths)
    plain_rows, _, padding_plain = median_padding_batch(plain, lengths)

    with tempfile.TemporaryDirectory() as tmp:
        backbone = save_group_norm_wav2vec2(Path(tmp) / "audio", args.width, args.layers)
        torch.manual_seed(0)
        model = EmoXFormer.from_config(EmoXFormerConfig(audio_backbone=backbone, modalities=["audio"]))
    model.train()
    encoder = model.encoders["audio"]
    collate = Collator(0)

    def batch_of(rows):
        return collate([{"audio": rng.standard_normal(lengths[r]).astype(np.float32) * 0.1, "label": int(r % 7),
                         "dataset": 0} for r in rows])

    bucketed_batch, plain_batch = batch_of(bucketed_rows), batch_of(plain_rows)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    print(f"audio_batching: batch {args.batch_size} clips of 2.9-5.3 s, group-norm Wav2Vec2 {args.width} x "
          f"{args.layers} layers (conv 7 x 128), fusion 512; padded samples per epoch: bucketed "
          f"{padding_bucketed:.1%}, plain {padding_plain:.1%}; best of {args.repeats}; {machine()}", flush=True)

    def step(batch, exact: bool):
        encoder.exact_padding = exact
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(batch).logits, batch["labels"]).backward()
        optimizer.step()

    step(bucketed_batch, False)  # warm-up: AdamW allocates its state on the first step
    per_clip, batched = timed_pair(lambda: step(plain_batch, True), lambda: step(bucketed_batch, False), args.repeats)
    _, unbucketed = timed_pair(lambda: None, lambda: step(plain_batch, False), args.repeats)
    print(f"  step: one clip at a time {per_clip:.2f} s, batched + bucketed {batched:.2f} s, "
          f"batched plain {unbucketed:.2f} s")
    report("audio_batching", per_clip, batched, ratio_unbucketed=round(per_clip / unbucketed, 2),
           padding_bucketed=round(padding_bucketed, 3), padding_plain=round(padding_plain, 3), batch_size=args.batch_size)


if __name__ == "__main__":
    main()
