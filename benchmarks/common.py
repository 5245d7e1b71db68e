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


def timed_pair(baseline, ours, repeats: int = 3) -> tuple[float, float]:
    """Best wall times of two functions, their calls alternating, so load from other processes hits both alike."""
    best_baseline = best_ours = float("inf")
    for _ in range(repeats):
        best_baseline = min(best_baseline, timed(baseline, 1))
        best_ours = min(best_ours, timed(ours, 1))
    return best_baseline, best_ours


def report(name: str, baseline_s: float, ours_s: float, **extra) -> None:
    """The last line of every benchmark; `extra` holds further ratios and figures."""
    print(json.dumps({"name": name, "baseline_s": round(baseline_s, 4), "ours_s": round(ours_s, 4),
                      "ratio": round(baseline_s / ours_s, 2), **extra}))


PRESETS = ("tiny", "paper")


def backbone_configs(preset: str = "tiny", width: int = 256, layers: int = 4) -> dict:
    """Transformers configs of the three backbones. "paper": RoBERTa-base, wav2vec2-base (group-norm feature
    extractor, as the released checkpoint) and ViT-B/16 at 224; "tiny": the same families at `width` x `layers`."""
    from transformers import RobertaConfig, ViTConfig, Wav2Vec2Config

    if preset == "paper":
        return {"text": RobertaConfig(pad_token_id=0),  # the benchmark tokenizer pads with id 0
                "audio": Wav2Vec2Config(feat_extract_norm="group", do_stable_layer_norm=False),
                "vision": ViTConfig(image_size=224, patch_size=16)}
    heads, ffn = max(1, width // 64), 4 * width
    return {
        "text": RobertaConfig(vocab_size=1000, hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                              intermediate_size=ffn, max_position_embeddings=130, pad_token_id=0),
        "audio": Wav2Vec2Config(hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                                conv_dim=(128,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.0),
        "vision": ViTConfig(image_size=224, patch_size=16, hidden_size=width, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=ffn),
    }


def build_backbones(root, width: int = 256, layers: int = 4, preset: str = "tiny") -> dict[str, str]:
    """Randomly initialised RoBERTa / Wav2Vec2 / ViT (see backbone_configs), saved to `root` and loaded back by path
    (no download): the same code path as pretrained weights."""
    from pathlib import Path

    from transformers import BertTokenizer, RobertaModel, ViTModel, Wav2Vec2Model

    torch.manual_seed(0)
    root = Path(root)
    configs = backbone_configs(preset, width, layers)
    RobertaModel(configs["text"], add_pooling_layer=False).save_pretrained(root / "text")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(995)]
    (root / "text" / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(root / "text" / "vocab.txt")).save_pretrained(root / "text")
    Wav2Vec2Model(configs["audio"]).save_pretrained(root / "audio")
    ViTModel(configs["vision"]).save_pretrained(root / "vision")
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


REFERENCE_AUDIO_PLACEHOLDER = 400  # samples of silence the reference code gives a sample without audio


def seed_style(batch: dict) -> dict:
    """The reference code's batch: absent audio and images become zero placeholders that their encoders still run
    on; text is skipped when no sample of the batch has any (the reference ran RoBERTa only if
    `input_ids.size(1) > 1`). The reference then fused a placeholder text feature; here text is simply absent,
    which makes this baseline, if anything, slightly faster than the reference."""
    full = dict(batch)
    full["present"] = torch.ones_like(batch["present"])
    size = batch["present"].shape[0]
    if "text" not in batch:
        full["present"][:, 0] = False
    else:
        full["text"] = {**batch["text"], "attention_mask": batch["text"]["attention_mask"].clone()}
        full["text"]["attention_mask"][:, 0] = 1
    if "audio" not in batch:
        full["audio"] = {"waveform": torch.zeros((size, REFERENCE_AUDIO_PLACEHOLDER)),
                         "lengths": torch.full((size,), REFERENCE_AUDIO_PLACEHOLDER)}
    else:
        # A placeholder padded into a batch with real clips runs at the batch's length (one padded forward).
        lengths = batch["audio"]["lengths"].clone()
        lengths[lengths == 0] = batch["audio"]["waveform"].shape[1]
        full["audio"] = {"waveform": batch["audio"]["waveform"], "lengths": lengths}
    if "vision" not in batch:
        raise ValueError("give the batch at least one image so the placeholder shape is known")
    return full


def build_model(width: int = 256, layers: int = 4, preset: str = "tiny"):
    """An EmoXFormer over build_backbones(...) and its Preprocessor (the backbone folders are temporary)."""
    import tempfile

    from emoxformer.model.config import EmoXFormerConfig
    from emoxformer.model.modeling import EmoXFormer
    from emoxformer.model.preprocessing import Preprocessor

    with tempfile.TemporaryDirectory() as tmp:
        paths = build_backbones(tmp, width, layers, preset)
        config = EmoXFormerConfig(text_backbone=paths["text"], audio_backbone=paths["audio"], vision_backbone=paths["vision"])
        model = EmoXFormer.from_config(config)
        return model, Preprocessor.for_model(model.config)
