"""Fine-tuning step of the laptop recipe's speech encoder: LSTM on packed sequences vs on the padded batch.

The speaker-LSTM encoder first ran its LSTM on packed sequences (`pack_padded_sequence`, the usual way to keep
padding out of an RNN). On CPU, backward through a packed LSTM is far slower than through the padded one, and
with a one-way LSTM packing buys nothing: a clip's states never see the padding after it, and states past its
end are left out of its windows. Both sides below are the same encoder and weights on the same batch of clips
(lengths drawn like RAVDESS's, 3.3-4.3 s at 16 kHz); one step is the encoder's forward and backward. The
baseline re-creates the packed forward the encoder had before. Also checks that both give the same tokens and
weight gradients.

Last line: {"name", "baseline_s", "ours_s", "ratio", ...}.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, report, timed_pair  # noqa: E402

from emoxformer.model.speaker_lstm import HOP, N_FFT, TARGET_RMS, SpeakerLSTMEncoder  # noqa: E402


def packed_forward(encoder: SpeakerLSTMEncoder, waveform: torch.Tensor, lengths: torch.Tensor):
    """The encoder's forward as it was: the LSTM on packed sequences, unpacked to the padded length."""
    waveform = waveform.float() * TARGET_RMS
    spec = torch.stft(waveform, N_FFT, HOP, window=encoder.window, center=True, pad_mode="constant",
                      return_complex=True)
    mel = torch.matmul(encoder.mel.T, spec.abs().pow(2)).transpose(1, 2)
    n_frames = encoder.frame_lengths(lengths).clamp(max=mel.shape[1])
    packed = nn.utils.rnn.pack_padded_sequence(mel, n_frames.cpu(), batch_first=True, enforce_sorted=False)
    states, _ = nn.utils.rnn.pad_packed_sequence(encoder.backbone.lstm(packed)[0], batch_first=True,
                                                 total_length=mel.shape[1])
    return encoder._pool(states, n_frames)


def training_step(encoder, forward, waveform, lengths) -> tuple[torch.Tensor, dict]:
    encoder.zero_grad(set_to_none=True)
    tokens, valid = forward(waveform, lengths)
    (tokens * valid[..., None]).pow(2).sum().backward()  # a sum: gradients large enough for the check below
    return tokens.detach(), {name: p.grad for name, p in encoder.backbone.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per side (best of)")
    args = parser.parse_args()

    torch.manual_seed(0)
    encoder = SpeakerLSTMEncoder(pool_frames=10).train()  # random weights: the cost does not depend on them
    lengths = torch.randint(int(3.3 * 16_000), int(4.3 * 16_000), (args.batch_size,))
    waveform = torch.randn(args.batch_size, int(lengths.max()))
    waveform[torch.arange(waveform.shape[1])[None] >= lengths[:, None]] = 0.0

    packed_tokens, packed_grads = training_step(encoder, lambda w, n: packed_forward(encoder, w, n), waveform, lengths)
    padded_tokens, padded_grads = training_step(encoder, encoder, waveform, lengths)
    same_tokens = torch.allclose(packed_tokens, padded_tokens, atol=1e-5, rtol=1e-4)
    same_grads = all(float((packed_grads[k] - padded_grads[k]).norm() / packed_grads[k].norm()) < 1e-4
                     for k in packed_grads)
    print(f"machine: {machine()}; batch {args.batch_size} clips, {float(lengths.float().mean()) / 16_000:.2f} s mean")
    print(f"same tokens: {same_tokens}; same weight gradients: {same_grads}")

    packed_s, padded_s = timed_pair(lambda: training_step(encoder, lambda w, n: packed_forward(encoder, w, n),
                                                          waveform, lengths),
                                    lambda: training_step(encoder, encoder, waveform, lengths), args.repeats)
    print(f"forward + backward: packed {packed_s:.2f} s, padded {padded_s:.2f} s")
    report("speech_lstm_step", packed_s, padded_s, batch_size=args.batch_size, same_tokens=same_tokens,
           same_gradients=same_grads)


if __name__ == "__main__":
    main()
