"""Wav2Vec2's SpecAugment: stage 2 keeps the checkpoint's time masking unless `audio_spec_augment=false`;
stage 1 (frozen encoders in eval mode, the feature cache) never masks."""
import json

import numpy as np
import pytest
import torch

from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer


def _save_masking_wav2vec2(folder, **overrides) -> str:
    """A tiny random Wav2Vec2 whose only train-mode randomness is SpecAugment (every dropout off)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    values = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.5, mask_time_length=2,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0,
    )
    Wav2Vec2Model(Wav2Vec2Config(**{**values, **overrides})).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def masking_wav2vec2(tmp_path_factory) -> str:
    return _save_masking_wav2vec2(tmp_path_factory.mktemp("wav2vec2-masking"))


def _audio_model(backbone: str, **values) -> EmoXFormer:
    torch.manual_seed(0)
    config = EmoXFormerConfig(audio_backbone=backbone, modalities=["audio"], hidden_size=32, num_heads=2, **values)
    return EmoXFormer.from_config(config)


def _encode(model: EmoXFormer, training: bool) -> torch.Tensor:
    waveform = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 16_000)).astype(np.float32))
    model.train(training)
    with torch.no_grad():
        return model.encoders["audio"](waveform, torch.tensor([16_000, 12_000]))[0]


def test_stage2_keeps_the_checkpoints_spec_augment_by_default(masking_wav2vec2):
    model = _audio_model(masking_wav2vec2)
    assert model.config.audio_spec_augment is True
    assert not torch.allclose(_encode(model, training=True), _encode(model, training=False))  # masked in train mode
    model.freeze_backbones()  # stage 1: frozen encoders stay in eval mode, so no masking
    torch.testing.assert_close(_encode(model, training=True), _encode(model, training=False), atol=0, rtol=0)


def test_audio_spec_augment_false_turns_masking_off(masking_wav2vec2, tmp_path):
    model = _audio_model(masking_wav2vec2, audio_spec_augment=False)
    torch.testing.assert_close(_encode(model, training=True), _encode(model, training=False), atol=0, rtol=0)
    model.save_pretrained(tmp_path / "m")  # the setting survives a save, with the backbone's config saved in full
    assert json.loads((tmp_path / "m" / "config.json").read_text())["audio_spec_augment"] is False
    loaded = EmoXFormer.from_pretrained(tmp_path / "m")
    torch.testing.assert_close(_encode(loaded, training=True), _encode(loaded, training=False), atol=0, rtol=0)


@pytest.mark.parametrize("norm", ["group", "layer"])  # group: each clip runs alone (wav2vec2-base); layer: batched
def test_clips_shorter_than_one_mask_span_train_unmasked(tmp_path, norm):
    # 400 samples (the shortest prepared clip) give 18 frames here, fewer than one 30-frame mask span, which
    # Hugging Face's mask drawing refuses; such clips train unmasked, longer ones are still masked.
    backbone = _save_masking_wav2vec2(tmp_path, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer",
                                      mask_time_length=30)
    encoder = _audio_model(backbone).encoders["audio"]
    waves = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 16_000)).astype(np.float32))
    waves[0, 400:] = 0
    outputs = {}
    for training in (True, False):
        encoder.train(training)
        with torch.no_grad():
            outputs[training, "short"] = encoder(waves[:1, :400], torch.tensor([400]))[0]
            outputs[training, "mixed"] = encoder(waves, torch.tensor([400, 16_000]))[0]
    assert outputs[True, "short"].shape[1] == 18
    torch.testing.assert_close(outputs[True, "short"], outputs[False, "short"], atol=0, rtol=0)
    if norm == "group":
        torch.testing.assert_close(outputs[True, "mixed"][0, :18], outputs[False, "mixed"][0, :18], atol=0, rtol=0)
    assert not torch.allclose(outputs[True, "mixed"][1], outputs[False, "mixed"][1])
