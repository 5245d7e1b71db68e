"""A speech encoder initialised from Resemblyzer's pretrained speaker encoder (GE2E; Wan et al., 2018).

The network is the project's own: 40 mel bands (25 ms / 10 ms, power, as Resemblyzer computes them) into a
3-layer LSTM of width 256. Its weights come from the `resemblyzer` wheel (`resemblyzer/pretrained.pt`, read with
`torch.load(weights_only=True)`; `pip install --no-deps resemblyzer`: its own dependencies are for its
preprocessing, which is not used), or from a file: `speaker_lstm:/path/pretrained.pt`.
The LSTM's hidden states, averaged over `pool_frames` frames, are the tokens handed to fusion. Trained to tell
speakers apart, the states also carry pitch, energy and voice quality, which is what emotion in speech changes.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from .layers import mean_over_windows
from .native import NativeBackbone

WEIGHTS_PACKAGE, WEIGHTS_FILE = "resemblyzer", "pretrained.pt"
N_MELS, HIDDEN, LAYERS = 40, 256, 3
N_FFT, HOP = 400, 160  # 25 ms windows, 10 ms steps at 16 kHz
TARGET_RMS = 10 ** (-30 / 20)  # Resemblyzer normalises speech to -30 dBFS before its mel spectrogram


def librosa_mel_filters(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """librosa's default mel bank (Slaney scale and norm, 0 Hz to Nyquist), which Resemblyzer was trained on."""
    import numpy as np
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                           max_frequency=sample_rate / 2, sampling_rate=sample_rate, norm="slaney", mel_scale="slaney")
    return torch.tensor(np.asarray(bank), dtype=torch.float32)


class SpeakerLSTM(nn.Module):
    """Resemblyzer's 3-layer LSTM over 40 mel bands (its projection to the speaker embedding is not used)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)

    def forward(self, mel: torch.Tensor):
        return self.lstm(mel)[0]

    def load_pretrained(self, path: str | Path) -> None:
        """Load Resemblyzer's checkpoint (`{"model_state": ...}` or a bare state dict): its LSTM weights; its
        projection and similarity weights belong to speaker verification and are not used."""
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: speaker encoder weights not found")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle and zip errors come in many types
            raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0]})") from None
        state = checkpoint.get("model_state", checkpoint) if isinstance(checkpoint, dict) else None
        if not isinstance(state, dict):
            raise ModelLoadError(f"{path}: holds no state dict")
        self.load_lstm(state, str(path))

    def load_lstm(self, state: dict, source: str = "state dict") -> None:
        lstm = {k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")}
        expected = self.lstm.state_dict()
        wrong = sorted(k for k in expected if k not in lstm or tuple(lstm[k].shape) != tuple(expected[k].shape))
        if wrong:
            raise ModelLoadError(f"{source}: not a Resemblyzer speaker encoder (LSTM weights missing or of another "
                                 f"shape: {wrong[:3]})")
        self.lstm.load_state_dict({k: lstm[k] for k in expected})


class SpeakerLSTMEncoder(nn.Module):
    """16 kHz waveform -> 40-band power mel -> 3-layer LSTM -> hidden states averaged over `pool_frames` frames.

    Exact under padding: frames are counted from each clip's length (zero padding, as in the STFT's own centring),
    and the LSTM runs one way, so a clip's states never see the padding after it; states past a clip's end are
    left out of its windows (and get no gradient).
    The LSTM runs on the padded batch, not on packed sequences: on 2 CPU cores a fine-tuning step (forward and
    backward) of 32 clips of 3.8 s took 27 s packed against 0.9 s padded (benchmarks/speech_lstm_step.py).
    """

    def __init__(self, sample_rate: int = 16_000, pool_frames: int = 10):
        super().__init__()
        self.backbone = SpeakerLSTM()
        self.pool_frames = pool_frames
        self.width = HIDDEN
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("mel", librosa_mel_filters(N_FFT, N_MELS, sample_rate), persistent=False)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, HOP, rounding_mode="floor") + 1  # center=True

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor):
        waveform = waveform.float() * TARGET_RMS  # the preprocessor gives unit RMS over each clip
        spec = torch.stft(waveform, N_FFT, HOP, window=self.window, center=True, pad_mode="constant", return_complex=True)
        mel = torch.matmul(self.mel.T, spec.abs().pow(2)).transpose(1, 2)  # [n, frames, 40]
        n_frames = self.frame_lengths(lengths).clamp(max=mel.shape[1])
        return self._pool(self.backbone(mel), n_frames)

    def _pool(self, states: torch.Tensor, n_frames: torch.Tensor):
        """Mean over consecutive windows of `pool_frames` valid frames (the last window may be shorter)."""
        valid = torch.arange(states.shape[1], device=states.device)[None] < n_frames[:, None]
        return mean_over_windows(states, valid, self.pool_frames)


BACKBONE = NativeBackbone("speaker_lstm", WEIGHTS_PACKAGE, WEIGHTS_FILE, "pip install --no-deps resemblyzer")


def build_speech_encoder(backbone: str, config, saved_config: dict | None = None) -> SpeakerLSTMEncoder:
    """Pretrained for a new model; architecture only when rebuilding a saved model (`saved_config`)."""
    pool_frames = int(saved_config.get("pool_frames", 10)) if saved_config else config.audio_pool_frames
    encoder = SpeakerLSTMEncoder(config.sample_rate, pool_frames)
    encoder.backbone.config = BACKBONE.architecture(pool_frames=pool_frames)
    if saved_config is None:
        encoder.backbone.load_pretrained(BACKBONE.weights_path(backbone))
    return encoder
