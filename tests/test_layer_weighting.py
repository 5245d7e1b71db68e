"""Layer-weighted features (model.text_layers / model.audio_layers = weighted) on tiny random backbones: a softmax-
weighted sum of every hidden state, trainable over a frozen backbone, and the stage-1 feature cache holding every
layer's states with the weighting applied to them before the projection."""
import pytest
import torch

from emoxformer.errors import ModelLoadError
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.encoders import build_encoder
from emoxformer.model.layers import cache_outputs, route_cached_layers
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor


def _text_batch(preprocessor, texts):
    ids = [preprocessor.tokenize(t) for t in texts]
    width = max(map(len, ids))
    input_ids = torch.tensor([i + [0] * (width - len(i)) for i in ids])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
    return {"input_ids": input_ids, "attention_mask": mask}


def test_the_weighted_sum_of_every_hidden_state(tiny_backbones):
    config = EmoXFormerConfig(text_backbone=tiny_backbones["text"], text_layers="weighted", modalities=["text"])
    encoder = build_encoder("text", config).eval()
    inputs = _text_batch(Preprocessor.for_model(config), ["i am so happy", "this is great !"])
    logits = torch.tensor([0.3, -1.0, 2.0])
    with torch.no_grad():
        encoder.layer_weights.logits.copy_(logits)
        hidden, valid = encoder(**inputs)
        states = encoder.backbone(**inputs, output_hidden_states=True).hidden_states
    assert len(states) == 3  # the embeddings and two layers
    normalised = [torch.nn.functional.layer_norm(s, s.shape[-1:]) for s in states]
    expected = sum(w * s for w, s in zip(logits.softmax(0), normalised))
    torch.testing.assert_close(hidden, expected)
    assert valid.tolist() == inputs["attention_mask"].bool().tolist()
    last = build_encoder("text", EmoXFormerConfig(text_backbone=tiny_backbones["text"], modalities=["text"])).eval()
    assert getattr(last, "layer_weights", None) is None
    with torch.no_grad():
        torch.testing.assert_close(last(**inputs)[0], states[-1])


def test_one_layer_s_scale_does_not_decide_the_weighted_sum():
    """Regression: Whisper-base's middle layers hold a few tokens near 500 (the rest within about 4); summed raw,
    they swamped every other layer and a RAVDESS model stayed at chance. Each layer is normalised first."""
    from emoxformer.model.layers import LayerWeights

    weights = LayerWeights(3)
    states = torch.randn(2, 5, 3, 8)
    loud = states.clone()
    loud[:, :, 1] *= 500.0
    torch.testing.assert_close(weights(loud), weights(states), atol=1e-4, rtol=1e-4)  # up to layer_norm's epsilon
    assert weights(states).abs().max() < 10


def test_the_layer_weights_train_over_a_frozen_backbone(tiny_backbones):
    config = EmoXFormerConfig(audio_backbone=tiny_backbones["audio"], audio_layers="weighted", modalities=["audio"],
                              hidden_size=32, fusion_layers=1)
    model = EmoXFormer.from_config(config)
    model.freeze_backbones(True)
    model.train()
    weights = model.encoders["audio"].layer_weights.logits
    assert weights.requires_grad
    assert not any(p.requires_grad for n, p in model.encoders["audio"].named_parameters() if "layer_weights" not in n)
    waveform = torch.randn(2, 8000)
    batch = {"present": torch.tensor([[False, True, False]] * 2),
             "audio": {"waveform": waveform, "lengths": torch.tensor([8000, 5000])}, "labels": torch.tensor([0, 3])}
    model(batch).loss.backward()
    assert weights.grad is not None and weights.grad.abs().sum() > 0


def test_cached_layers_give_the_live_encoder_s_logits(tiny_backbones):
    """What the feature cache stores (every layer, flattened) goes through the encoder's weighting before the
    projection, so logits from the cache equal the live ones."""
    config = EmoXFormerConfig(text_backbone=tiny_backbones["text"], text_layers="weighted", modalities=["text"],
                              hidden_size=32, fusion_layers=1)
    model = EmoXFormer.from_config(config).eval()
    encoder = model.encoders["text"]
    with torch.no_grad():
        encoder.layer_weights.logits.copy_(torch.tensor([1.0, 0.0, -1.0]))
    inputs = _text_batch(Preprocessor.for_model(config), ["i am so sad", "great"])
    present = torch.tensor([[True, False, False]] * 2)
    with torch.no_grad():
        cached, valid = cache_outputs(encoder, inputs)
        assert cached.shape[-1] == 3 * encoder.width
        live = model({"present": present, "text": inputs}).logits
        route_cached_layers(model)
        route_cached_layers(model)  # once only
        served = model({"present": present, "encoder_outputs": {"text": {"hidden": cached, "valid": valid}}}).logits
        again = model({"present": present, "text": inputs}).logits  # live inputs pass the hook unchanged
    torch.testing.assert_close(served, live)
    torch.testing.assert_close(again, live)
    assert len(model.projections["text"]._forward_pre_hooks) == 1


def test_the_stage_one_cache_holds_every_layer_and_its_key_ignores_the_layer_weights(sample_root, tiny_backbones):
    from emoxformer.config import load_config
    from emoxformer.data.datamodule import EmoDataModule
    from emoxformer.training import feature_cache

    config = load_config("quickstart", [f"data.root={sample_root}", "data.datasets=[meld]", "model.hidden_size=32",
                                        "model.fusion_layers=1", f"model.text_backbone={tiny_backbones['text']}",
                                        "model.text_layers=weighted"])
    model = EmoXFormer.from_config(config.model)
    model.freeze_backbones(True)
    model.eval()
    dm = EmoDataModule(config.data, Preprocessor.for_model(config.model), batch_size=8, eval_batch_size=16, seed=0,
                       progress=False)
    dm.setup()
    records = dm.splits["meld"]["val"].records
    key = feature_cache.cache_key(model, "text", records, 1, None)
    with torch.no_grad():
        model.encoders["text"].layer_weights.logits.add_(1.5)  # training moves them; the table stays valid
    assert feature_cache.cache_key(model, "text", records, 1, None) == key
    config.model.text_layers = "last"
    assert feature_cache.cache_key(model, "text", records, 1, None) != key
    config.model.text_layers = "weighted"
    tables = feature_cache.cached_tables(model, dm, ("val",), 1, torch.device("cpu"), progress=False)
    assert tables[("meld", "val", "text")].get(0).shape[1] == 3 * 32  # three hidden states of width 32
    served = dm.with_encoder_outputs(tables)
    dataset, served_dataset = dm.splits["meld"]["val"], served.splits["meld"]["val"]
    with torch.no_grad():
        live = model(dm.collate([dataset[i] for i in range(6)])).logits
        cached = model(served.collate([served_dataset[i] for i in range(6)])).logits
    torch.testing.assert_close(cached, live, atol=2e-2, rtol=2e-2)  # float16 storage


def test_weighting_needs_a_backbone_with_hidden_states():
    with pytest.raises(ModelLoadError, match="text_layers=weighted needs a Hugging Face or Whisper backbone"):
        build_encoder("text", EmoXFormerConfig(text_layers="weighted"))
    with pytest.raises(ValueError, match="audio_layers must be last or weighted"):
        EmoXFormerConfig.from_dict({"audio_layers": "middle"})


def test_windows_of_half_precision_states_are_averaged_in_float32():
    from emoxformer.model.layers import mean_over_windows

    states = torch.randn(2, 23, 8).half() * 100
    valid = torch.arange(23)[None] < torch.tensor([[23], [11]])
    pooled, pooled_valid = mean_over_windows(states, valid, 10)
    assert pooled.dtype == torch.float32 and pooled_valid.tolist() == [[True, True, True], [True, True, False]]
    torch.testing.assert_close(pooled[1, 1], states[1, 10:11].float().mean(0))  # the shorter last window of row 1
    torch.testing.assert_close(pooled[0, 2], states[0, 20:23].float().mean(0))
