"""Shared helpers for the benchmark scripts: timing and the one-line JSON result."""
from __future__ import annotations

import json
import platform
import time

import torch


def timed(function, repeats: int = 3) -> float:
    """Best wall time of `repeats` calls, in seconds (the minimum is the least noisy estimate)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    return f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def report(name: str, baseline_s: float, ours_s: float) -> None:
    print(json.dumps({"name": name, "baseline_s": round(baseline_s, 4), "ours_s": round(ours_s, 4),
                      "ratio": round(baseline_s / ours_s, 2)}))


def build_backbones(root, width: int = 256, layers: int = 4) -> dict[str, str]:
    """Randomly initialised RoBERTa / Wav2Vec2 / ViT of a given size, saved to `root` and loaded back by path
    (no download): the same code path as pretrained weights, at a size a 2-core CPU can time."""
    from pathlib import Path

    from transformers import BertTokenizer, RobertaConfig, RobertaModel, ViTConfig, ViTModel, Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    root = Path(root)
    heads, ffn = max(1, width // 64), 4 * width
    RobertaModel(RobertaConfig(vocab_size=1000, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                               intermediate_size=ffn, max_position_embeddings=130, pad_token_id=0),
                 add_pooling_layer=False).save_pretrained(root / "text")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(995)]
    (root / "text" / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(root / "text" / "vocab.txt")).save_pretrained(root / "text")
    Wav2Vec2Model(Wav2Vec2Config(hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                                 conv_dim=(128,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
                                 mask_time_prob=0.0)).save_pretrained(root / "audio")
    ViTModel(ViTConfig(image_size=224, patch_size=16, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=ffn)).save_pretrained(root / "vision")
    return {m: str(root / m) for m in ("text", "audio", "vision")}


def mixed_samples(preprocessor, count: int, seed: int = 0, seconds: float = 3.5) -> list[dict]:
    """Prepared single-modality samples in equal thirds, as a balanced training batch holds them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        kind = i % 3
        sample = {"label": int(rng.integers(7)), "dataset": kind}
        if kind == 0:
            sample["text"] = preprocessor.tokenize(" ".join(f"w{int(w)}" for w in rng.integers(5, 999, 24)))
        elif kind == 1:
            sample["audio"] = preprocessor.prepare_audio(rng.standard_normal(int(16_000 * seconds)).astype(np.float32))
        else:
            sample["vision"] = preprocessor.prepare_image(rng.integers(0, 256, (48, 48), dtype=np.uint8))
        samples.append(sample)
    return samples


def seed_style(batch: dict) -> dict:
    """The reference code's batch: every sample carries all three modalities, absent ones as zero placeholders."""
    full = dict(batch)
    full["present"] = torch.ones_like(batch["present"])
    size = batch["present"].shape[0]
    if "text" not in batch:
        full["text"] = {"input_ids": torch.zeros((size, 8), dtype=torch.long), "attention_mask": torch.ones((size, 8), dtype=torch.long)}
    else:
        full["text"] = {**batch["text"], "attention_mask": batch["text"]["attention_mask"].clone()}
        full["text"]["attention_mask"][:, 0] = 1
    if "audio" not in batch:
        full["audio"] = {"waveform": torch.zeros((size, 16_000)), "lengths": torch.full((size,), 16_000)}
    else:
        lengths = batch["audio"]["lengths"].clone()
        lengths[lengths == 0] = batch["audio"]["waveform"].shape[1]
        full["audio"] = {"waveform": batch["audio"]["waveform"], "lengths": lengths}
    if "vision" not in batch:
        raise ValueError("give the batch at least one image so the placeholder shape is known")
    return full


def build_model(width: int, layers: int):
    """An EmoXFormer over build_backbones(...) and its Preprocessor (the backbone folders are temporary)."""
    import tempfile

    from emoxformer.model.config import EmoXFormerConfig
    from emoxformer.model.modeling import EmoXFormer
    from emoxformer.model.preprocessing import Preprocessor

    with tempfile.TemporaryDirectory() as tmp:
        paths = build_backbones(tmp, width, layers)
        config = EmoXFormerConfig(text_backbone=paths["text"], audio_backbone=paths["audio"], vision_backbone=paths["vision"])
        model = EmoXFormer.from_config(config)
        return model, Preprocessor.for_model(model.config)
