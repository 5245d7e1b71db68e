"""What a shorter Whisper input window costs: seconds per clip and RAVDESS validation accuracy, 30 s against 8 s.

Whisper was trained on 30 s windows; `model.audio_window_seconds=8` keeps the first 400 positions and runs on
the first 8 s of log-mels, about a fifth of the compute. RAVDESS clips last 2.9-5.3 s, so both windows hold the
whole clip: what changes is the padding after the speech. For each window, the frozen encoder encodes the same
training and validation clips; each clip becomes the mean over its tokens of the uniform mean of its layer-
normalised hidden states (what `model.audio_layers=weighted` starts stage 1 from), and a linear probe (multinomial
logistic regression on standardised features, L2-regularised, full-batch L-BFGS) trained on the training clips is
scored on validation. The probe is deterministic, so the accuracy difference is the windows', not training noise.

With --data ROOT: the real RAVDESS (training actors 1-18, or those of --train-actors; validation actors 19-20)
and --backbone (default whisper_base, the installed wheels). Without: the generated sample data and, with --tiny,
a tiny random Whisper (the smoke run). Last line: {"name", "baseline_s" (30 s window, seconds a clip), "ours_s"
(the short window), "ratio", "val_accuracy" per window, "difference_points"}.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report  # noqa: E402

from emoxformer.data.ravdess import read_ravdess  # noqa: E402
from emoxformer.data.sample_data import make_sample_data  # noqa: E402
from emoxformer.media import load_audio  # noqa: E402
from emoxformer.model.config import EmoXFormerConfig  # noqa: E402
from emoxformer.model.encoders import build_encoder  # noqa: E402
from emoxformer.model.preprocessing import Preprocessor  # noqa: E402


def tiny_whisper(folder: Path) -> str:
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    config = WhisperConfig(d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32, decoder_layers=1,
                           decoder_attention_heads=2, decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=1500,
                           max_target_positions=16, vocab_size=40, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                           decoder_start_token_id=1)
    WhisperModel(config).save_pretrained(folder)
    return str(folder)


def clip_features(backbone: str, window: float, waveforms: list[np.ndarray], batch_size: int) -> tuple[np.ndarray, float]:
    """[clips, width] features and the seconds a clip took to encode."""
    config = EmoXFormerConfig(audio_backbone=backbone, audio_layers="weighted", audio_window_seconds=window,
                              max_audio_seconds=window, modalities=["audio"])
    encoder = build_encoder("audio", config).eval()
    features = []
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(waveforms), batch_size):
            chunk = waveforms[first:first + batch_size]
            lengths = torch.tensor([len(w) for w in chunk])
            batch = torch.zeros(len(chunk), int(lengths.max()))
            for row, waveform in enumerate(chunk):
                batch[row, :len(waveform)] = torch.from_numpy(waveform)
            tokens, valid = encoder(waveform=batch, lengths=lengths)  # the untrained layer weights: uniform
            pooled = (tokens * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
            features.append(pooled.numpy())
    return np.concatenate(features), (time.perf_counter() - start) / len(waveforms)


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                   l2: float = 1e-2, classes: int = 7) -> float:
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x, v = torch.tensor((train_x - mean) / std), torch.tensor((val_x - mean) / std)
    y = torch.tensor(train_y)
    weight = torch.zeros(x.shape[1], classes, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(classes, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(((v @ weight + bias).argmax(-1).numpy() == val_y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data root holding ravdess/ (default: generated sample data)")
    parser.add_argument("--backbone", default="whisper_base", help="a Whisper checkpoint: short name, HF name or folder")
    parser.add_argument("--tiny", action="store_true", help="a tiny random Whisper instead of --backbone")
    parser.add_argument("--train-actors", default="", help="e.g. 1-6: train the probe on these actors only (faster)")
    parser.add_argument("--windows", default="30,8", help="the baseline window, then the short one, in seconds")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    baseline_window, short_window = (float(w) for w in args.windows.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.data) if args.data else make_sample_data(Path(tmp) / "data")
        backbone = tiny_whisper(Path(tmp) / "whisper") if args.tiny else args.backbone
        split = read_ravdess(root / "ravdess")
        train = split.train
        if args.train_actors:
            low, high = (int(a) for a in args.train_actors.split("-"))
            train = [r for r in train if low <= r.actor <= high]
        preprocessor = Preprocessor(EmoXFormerConfig(max_audio_seconds=baseline_window, modalities=["audio"]))
        waveforms = [preprocessor.prepare_audio(load_audio(r.path)) for r in train + split.val]
        labels = np.array([r.label for r in train + split.val])
        print(f"{machine()}; {len(train)} training and {len(split.val)} validation clips; backbone {backbone}", flush=True)
        results = {}
        for window in (baseline_window, short_window):
            features, seconds = clip_features(backbone, window, waveforms, args.batch_size)
            accuracy = probe_accuracy(features[:len(train)], labels[:len(train)], features[len(train):], labels[len(train):])
            results[window] = (seconds, accuracy)
            print(f"window {window:g} s: {seconds:.3f} s a clip, validation accuracy {100 * accuracy:.1f} %", flush=True)
    (base_s, base_acc), (short_s, short_acc) = results[baseline_window], results[short_window]
    report("whisper_window", base_s, short_s, windows=[baseline_window, short_window],
           val_accuracy={f"{baseline_window:g}": round(100 * base_acc, 1), f"{short_window:g}": round(100 * short_acc, 1)},
           difference_points=round(100 * (short_acc - base_acc), 1), train_clips=len(train), val_clips=len(split.val))


if __name__ == "__main__":
    main()
