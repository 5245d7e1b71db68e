"""Training on a subset of the datasets builds, loads, caches and saves only the encoders of their modalities."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from offline_hub import set_hub_offline

from emoxformer import Predictor
from emoxformer.cli import main
from emoxformer.config import load_config
from emoxformer.data.collate import Collator
from emoxformer.data.sources import dataset_modalities
from emoxformer.errors import ConfigError, InputError
from emoxformer.model.config import MODALITIES, EmoXFormerConfig
from emoxformer.model.encoders import resolve_image_settings
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.run import TwoStageTrainer


@pytest.fixture
def offline(monkeypatch):
    """A backbone that is not local must fail at once instead of asking the hub."""
    set_hub_offline(monkeypatch)


def _missing(tmp_path, name):
    return str(tmp_path / "no-such-folder" / name)


@pytest.fixture(scope="module")
def text_only_run(sample_root, tiny_backbones, tmp_path_factory):
    """`train --datasets meld` with audio and vision backbones that cannot load (paths that do not exist)."""
    out = tmp_path_factory.mktemp("text-only")
    missing = out.parent / "no-such-folder"
    mp = pytest.MonkeyPatch()
    set_hub_offline(mp)
    try:
        config = load_config("quickstart", [
            f"data.root={sample_root}", "data.datasets=[meld]", f"model.text_backbone={tiny_backbones['text']}",
            f"model.audio_backbone={missing / 'wav2vec2'}", f"model.vision_backbone={missing / 'vit'}",
            "model.hidden_size=32", "model.fusion_layers=1", "data.samples_per_epoch=64", "train.batch_size=16",
            "train.stage1.epochs=1", "train.stage2.epochs=1",
        ])
        TwoStageTrainer(config, out, progress=False).run()
    finally:
        mp.undo()
    return out


def test_text_only_training_never_loads_audio_or_vision_backbones(text_only_run):
    best = text_only_run / "best"
    saved = json.loads((best / "config.json").read_text())
    assert saved["modalities"] == ["text"]
    assert set(saved["backbone_configs"]) == {"text"}
    weights = load_file(str(best / "model.safetensors"))
    assert {name.split(".")[1] for name in weights if name.startswith(("encoders.", "projections."))} == {"text"}
    predictor = Predictor.from_pretrained(best, device="cpu")
    prediction = predictor.predict(text="i am so happy !")
    assert prediction.modalities == ("text",) and abs(sum(prediction.probabilities.values()) - 1) < 1e-5


def test_text_only_model_refuses_audio_image_and_video_in_one_line(text_only_run, tmp_path, capsys):
    predictor = Predictor.from_pretrained(text_only_run / "best", device="cpu")
    with pytest.raises(InputError, match=r"^this model was trained without audio: it takes only text$"):
        predictor.predict(text="so happy", audio=np.zeros(16_000, np.float32), sample_rate=16_000)
    with pytest.raises(InputError, match=r"^this model was trained without image: it takes only text$"):
        predictor.predict_batch([{"text": "wow"}, {"image": np.zeros((48, 48), np.uint8), "detect_faces": False}])
    with pytest.raises(InputError, match="trained without image"):
        predictor.predict(video=tmp_path / "clip.mp4")  # refused before the file is even opened
    assert main(["predict", "--model", str(text_only_run / "best"), "--audio", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "emoxformer: error: this model was trained without audio: it takes only text"


def test_dataset_modalities():
    assert dataset_modalities(["meld"]) == ["text"]
    assert dataset_modalities(["fer2013", "meld"]) == ["text", "vision"]
    assert dataset_modalities(["meld", "ravdess", "fer2013"]) == list(MODALITIES)
    for bad in ([], ["meld", "imdb"]):
        with pytest.raises(ConfigError, match="non-empty subset"):
            dataset_modalities(bad)


def test_a_datamodule_built_in_code_checks_its_config_like_a_loaded_one():
    """A DataConfig made in a notebook skips load-time validation; the datamodule must still refuse it."""
    from emoxformer.config import DataConfig
    from emoxformer.data.datamodule import EmoDataModule

    preprocessor = Preprocessor(EmoXFormerConfig())
    with pytest.raises(ConfigError, match=r"data\.pairing=label pairs samples of different datasets"):
        EmoDataModule(DataConfig(datasets=["meld"], pairing="label"), preprocessor, progress=False)
    with pytest.raises(ConfigError, match=r"data\.datasets\[1\] must be"):
        EmoDataModule(DataConfig(datasets=["meld", "imdb"]), preprocessor, progress=False)
    assert EmoDataModule(DataConfig(datasets=["fer2013", "meld"]), preprocessor, progress=False).names == ["meld", "fer2013"]


def test_resolve_image_settings_leaves_an_untrained_vision_backbone_alone(tmp_path, offline):
    config = EmoXFormerConfig(vision_backbone=_missing(tmp_path, "vit"), modalities=["text", "audio"])
    resolve_image_settings(config)  # reads no vision backbone
    assert (config.image_size, config.image_channels) == (48, 1)


def test_audio_only_model_needs_no_text_backbone_or_tokenizer(tmp_path, tiny_backbones, offline):
    config = EmoXFormerConfig(text_backbone=_missing(tmp_path, "roberta"), audio_backbone=tiny_backbones["audio"],
                              vision_backbone=_missing(tmp_path, "vit"), modalities=["audio"], hidden_size=32, num_heads=2)
    model = EmoXFormer.from_config(config).eval()
    pre = Preprocessor.for_model(model.config)
    assert pre.tokenizer is None and list(model.encoders) == ["audio"]
    model.save_pretrained(tmp_path / "m", save_backbones=False)  # the audio backbone referenced by path
    loaded = EmoXFormer.from_pretrained(tmp_path / "m").eval()
    batch = Collator(pre.pad_id)([{"audio": pre.prepare_audio(np.random.default_rng(0).standard_normal(8000))}])
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, model(batch).logits, atol=0, rtol=0)


def _builtin(**values):
    return EmoXFormerConfig(hidden_size=32, num_heads=4, fusion_layers=2, builtin_width=32, **values)


def test_fusion_and_head_are_sized_to_the_modalities():
    torch.manual_seed(0)
    model = EmoXFormer(_builtin(modalities=["vision", "text"], head="concat")).eval()
    assert model.modalities == ("text", "vision")  # the head's input order is fixed: text, audio, vision
    assert list(model.encoders) == list(model.projections) == ["text", "vision"]
    assert model.head[0].in_features == 2 * 32
    assert list(EmoXFormer(_builtin(modalities=["vision", "text"])).heads) == ["text", "vision", "fused"]
    assert list(model.fusion.layers[0].attention) == ["text__vision"]
    pre = Preprocessor.for_model(model.config)
    text, face = pre.tokenize("so happy"), pre.prepare_image(np.zeros((48, 48), np.uint8))
    collate = Collator(pre.pad_id)
    with torch.no_grad():
        logits = model(collate([{"text": text}, {"vision": face}, {"text": text, "vision": face}])).logits
        assert logits.shape == (3, 7) and torch.isfinite(logits).all()
        with pytest.raises(ValueError, match="trained without audio"):
            model(collate([{"text": text}, {"audio": pre.prepare_audio(np.ones(8000))}]))
    model.train()
    model(collate([{"text": text, "vision": face}] * 2)).logits.sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []  # no dead weights for absent modalities


def test_single_modality_model_trains_every_weight():
    model = EmoXFormer(_builtin(modalities=["text"])).train()
    pre = Preprocessor.for_model(model.config)
    model(Collator(pre.pad_id)([{"text": pre.tokenize("so happy")}] * 2)).logits.sum().backward()
    assert list(model.heads) == ["text"] and len(model.fusion.layers[0].attention) == 0
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_invalid_modalities_are_refused():
    for bad in ([], ["text", "smell"]):
        with pytest.raises(ValueError, match="non-empty subset"):
            EmoXFormer(_builtin(modalities=bad))


def test_config_json_without_modalities_loads_all_three(tmp_path):
    model = EmoXFormer(_builtin()).eval()
    model.save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    values = json.loads(path.read_text())
    del values["modalities"], values["audio_spec_augment"]  # a config.json written before these fields
    path.write_text(json.dumps(values))
    loaded = EmoXFormer.from_pretrained(tmp_path / "m")
    assert loaded.modalities == MODALITIES and list(loaded.heads) == ["text", "audio", "vision", "fused"]


def test_evaluate_refuses_a_dataset_the_model_cannot_read_in_one_line(text_only_run, sample_root, tmp_path, capsys):
    best = text_only_run / "best"
    assert main(["evaluate", "--model", str(best), "--data", str(sample_root), "--datasets", "ravdess"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"emoxformer: error: {best}: this model was trained on text only and cannot evaluate ravdess"


def test_evaluate_without_the_run_config_reads_only_the_models_modalities(text_only_run, sample_root, tmp_path, capsys):
    import shutil

    moved = shutil.copytree(text_only_run / "best", tmp_path / "model")  # no config.yaml beside it: all three datasets by default
    assert main(["evaluate", "--model", str(moved), "--data", str(sample_root), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"meld"}
