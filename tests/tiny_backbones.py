"""Tiny randomly initialised RoBERTa / Wav2Vec2 / ViT backbones, saved to a folder and loaded back by path."""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "so", "happy", "sad", "angry", "this", "is", "great", "!", ".", ",", "?"]


def save_tiny_backbones(root: Path) -> dict[str, str]:
    from transformers import (
        BertTokenizer, RobertaConfig, RobertaModel, ViTConfig, ViTModel, Wav2Vec2Config, Wav2Vec2Model,
    )

    torch.manual_seed(0)
    paths = {m: root / m for m in ("text", "audio", "vision")}
    RobertaModel(RobertaConfig(
        vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=80, pad_token_id=0, bos_token_id=2, eos_token_id=3,
    ), add_pooling_layer=False).save_pretrained(paths["text"])
    vocab = paths["text"] / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    BertTokenizer(str(vocab), do_lower_case=True).save_pretrained(paths["text"])
    Wav2Vec2Model(Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.0,
    )).save_pretrained(paths["audio"])
    ViTModel(ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_channels=3,
    )).save_pretrained(paths["vision"])
    return {m: str(p) for m, p in paths.items()}
