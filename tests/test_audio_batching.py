"""Group-norm Wav2Vec2 (wav2vec2-base) in stage 2: a batch runs zero-padded in one backbone call without an
attention mask (Hugging Face's advice for these checkpoints); `audio_exact_padding=true` runs each clip alone."""
import json

import numpy as np
import pytest
import torch

from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.encoders import exact_padding
from emoxformer.model.modeling import EmoXFormer


@pytest.fixture(scope="module")
def group_norm_wav2vec2(tmp_path_factory) -> str:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("wav2vec2-group")
    Wav2Vec2Model(Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="group", do_stable_layer_norm=False, mask_time_prob=0.0,
    )).save_pretrained(folder)
    return str(folder)


def _encoder(backbone: str, **values):
    torch.manual_seed(0)
    config = EmoXFormerConfig(audio_backbone=backbone, modalities=["audio"], hidden_size=32, num_heads=2, **values)
    return EmoXFormer.from_config(config).encoders["audio"].eval()


def _counting_calls(encoder) -> list:
    calls = []
    encoder.backbone.register_forward_hook(lambda module, args, output: calls.append(1))
    return calls


def _waves(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    waves = torch.zeros(len(lengths), max(lengths))
    for row, length in enumerate(lengths):
        waves[row, :length] = torch.from_numpy(rng.standard_normal(length).astype(np.float32))
    return waves, torch.tensor(lengths)


def test_batched_by_default_one_backbone_call_and_each_clips_own_frames(group_norm_wav2vec2):
    encoder = _encoder(group_norm_wav2vec2)
    calls = _counting_calls(encoder)
    waves, lengths = _waves([16_000, 8_000, 4_000])
    with torch.no_grad():
        hidden, valid = encoder(waves, lengths)
    assert len(calls) == 1
    frame_lengths = encoder.backbone._get_feat_extract_output_lengths(lengths)
    assert valid.sum(1).tolist() == frame_lengths.tolist()
    assert valid[:, 0].all() and not valid[2, int(frame_lengths[2]):].any()


def test_batched_equals_per_sample_for_equal_length_clips(group_norm_wav2vec2):
    batched, exact = _encoder(group_norm_wav2vec2), _encoder(group_norm_wav2vec2, audio_exact_padding=True)
    waves, lengths = _waves([8_000, 8_000, 8_000])
    with torch.no_grad():
        ours, our_valid = batched(waves, lengths)
        theirs, their_valid = exact(waves, lengths)
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
    assert torch.equal(our_valid, their_valid)


def test_exact_padding_option_runs_each_clip_alone(group_norm_wav2vec2):
    encoder = _encoder(group_norm_wav2vec2, audio_exact_padding=True)
    calls = _counting_calls(encoder)
    waves, lengths = _waves([16_000, 4_000])
    with torch.no_grad():
        hidden, valid = encoder(waves, lengths)
        alone, _ = encoder(waves[1:, :4_000], lengths[1:])
    assert len(calls) == 3
    frames = int(valid[1].sum())
    torch.testing.assert_close(hidden[1, :frames], alone[0], atol=0, rtol=0)  # no trace of the other clip's padding


def test_cache_build_context_runs_each_clip_alone(group_norm_wav2vec2):
    encoder = _encoder(group_norm_wav2vec2)
    calls = _counting_calls(encoder)
    waves, lengths = _waves([16_000, 4_000])
    with torch.no_grad(), exact_padding(encoder):
        encoder(waves, lengths)
    assert len(calls) == 2 and encoder.exact_padding is False  # restored after the block


def test_audio_exact_padding_is_saved_and_older_configs_load(group_norm_wav2vec2, tmp_path):
    torch.manual_seed(0)
    model = EmoXFormer.from_config(EmoXFormerConfig(audio_backbone=group_norm_wav2vec2, modalities=["audio"],
                                                    hidden_size=32, num_heads=2, audio_exact_padding=True))
    model.save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    assert json.loads(config_path.read_text())["audio_exact_padding"] is True
    assert EmoXFormer.from_pretrained(tmp_path / "m").encoders["audio"].exact_padding is True
    older = json.loads(config_path.read_text())
    del older["audio_exact_padding"]
    config_path.write_text(json.dumps(older))
    assert EmoXFormer.from_pretrained(tmp_path / "m").encoders["audio"].exact_padding is False
