import itertools

import numpy as np
import pytest
import torch

from offline_hub import set_hub_offline

from emoxformer.data.collate import Collator
from emoxformer.errors import ModelLoadError
from emoxformer.model.config import MODALITIES, EmoXFormerConfig
from emoxformer.model.losses import FocalLoss, build_loss
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor

TEXTS = ["i am so happy !", "this is great", "sad .", "i am angry , so angry ! ! this is so sad ?"]


def _builtin_config(**overrides):
    values = dict(hidden_size=32, num_heads=4, fusion_layers=2, builtin_width=32)
    values.update(overrides)
    return EmoXFormerConfig(**values)


def _hf_config(backbones, **overrides):
    values = dict(text_backbone=backbones["text"], audio_backbone=backbones["audio"], vision_backbone=backbones["vision"],
                  hidden_size=32, num_heads=2, fusion_layers=2)
    values.update(overrides)
    return EmoXFormerConfig(**values)


@pytest.fixture(params=["builtin", "hf"])
def model_and_pre(request, tiny_backbones):
    torch.manual_seed(0)
    if request.param == "builtin":
        model = EmoXFormer.from_config(_builtin_config())
    else:
        model = EmoXFormer.from_config(_hf_config(tiny_backbones))
    return model.eval(), Preprocessor.for_model(model.config)


def _samples(pre, seed=0):
    """Samples of every modality subset, with different text and audio lengths."""
    rng = np.random.default_rng(seed)
    out = []
    for k, subset in enumerate(s for r in range(1, 4) for s in itertools.combinations(MODALITIES, r)):
        sample = {"label": k % 7, "id": "+".join(subset)}
        if "text" in subset:
            sample["text"] = pre.tokenize(TEXTS[k % len(TEXTS)])
        if "audio" in subset:
            sample["audio"] = pre.prepare_audio(rng.standard_normal(int(rng.integers(3000, 12000))).astype(np.float32))
        if "vision" in subset:
            sample["vision"] = pre.prepare_image(rng.integers(0, 256, (48, 48), dtype=np.uint8))
        out.append(sample)
    return out


def _run(model, pre, samples):
    with torch.no_grad():
        return model(Collator(pre.pad_id)(samples)).logits


def test_every_subset_gives_finite_logits(model_and_pre):
    model, pre = model_and_pre
    samples = _samples(pre)
    logits = _run(model, pre, samples)
    assert logits.shape == (7, 7) and torch.isfinite(logits).all()
    # batches in which some modality appears in no sample at all
    for modality in MODALITIES:
        subset = [s for s in samples if modality not in s]
        assert torch.isfinite(_run(model, pre, subset)).all()


def test_batch_independence(model_and_pre):
    model, pre = model_and_pre
    samples = _samples(pre)
    together = _run(model, pre, samples)
    for i, sample in enumerate(samples):
        alone = _run(model, pre, [sample])
        torch.testing.assert_close(alone[0], together[i], atol=1e-5, rtol=1e-5)
    shuffled = [samples[i] for i in (6, 2, 4, 0, 5, 1, 3)]
    torch.testing.assert_close(_run(model, pre, shuffled)[3], together[0], atol=1e-5, rtol=1e-5)


def test_absent_slots_are_ignored_whatever_they_hold(model_and_pre):
    model, pre = model_and_pre
    samples = _samples(pre)
    batch = Collator(pre.pad_id)(samples)
    with torch.no_grad():
        clean = model(batch).logits
        for name, inputs in (("audio", batch["audio"]), ("vision", batch["vision"])):
            column = MODALITIES.index(name)
            absent = ~batch["present"][:, column]
            for key, value in inputs.items():
                junk = torch.full_like(value[absent], 1e4) if value.is_floating_point() else torch.full_like(value[absent], 9)
                value[absent] = junk
        dirty = model(batch).logits
    torch.testing.assert_close(dirty, clean, atol=1e-5, rtol=1e-5)


def test_each_encoder_runs_only_on_its_samples(model_and_pre):
    model, pre = model_and_pre
    seen = {}

    def record(module, args, kwargs, output, modality):
        seen[modality] = output[0].shape[0]

    hooks = [model.encoders[m].register_forward_hook(lambda *a, m=m: record(*a, m), with_kwargs=True) for m in MODALITIES]
    samples = _samples(pre)
    _run(model, pre, samples)
    for hook in hooks:
        hook.remove()
    assert seen == {m: sum(m in s for s in samples) for m in MODALITIES} == {"text": 4, "audio": 4, "vision": 4}


def test_text_only_batch_runs_no_other_encoder(model_and_pre):
    model, pre = model_and_pre
    calls = []
    hooks = [model.encoders[m].register_forward_hook(lambda *a, m=m: calls.append(m)) for m in MODALITIES]
    _run(model, pre, [{"text": pre.tokenize("so happy"), "label": 3}])
    for hook in hooks:
        hook.remove()
    assert calls == ["text"]


def test_all_padding_no_nan_in_training_mode(model_and_pre):
    model, pre = model_and_pre
    model.train()
    logits = model(Collator(pre.pad_id)(_samples(pre))).logits
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("save_backbones", [True, False])
def test_save_load_round_trip(model_and_pre, tmp_path, save_backbones):
    model, pre = model_and_pre
    samples = _samples(pre)
    model.save_pretrained(tmp_path / "m", save_backbones=save_backbones, tokenizer=pre.tokenizer)
    assert sorted(p.name for p in (tmp_path / "m").iterdir() if p.is_file()) == ["config.json", "model.safetensors"]
    loaded = EmoXFormer.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.to_dict()["hidden_size"] == model.config.hidden_size
    loaded_pre = Preprocessor.for_model(loaded.config, tmp_path / "m")
    torch.testing.assert_close(_run(loaded, loaded_pre, samples), _run(model, pre, samples), atol=0, rtol=0)


def test_full_save_rebuilds_without_the_backbone_folders(tiny_backbones, tmp_path):
    import shutil

    copies = {m: shutil.copytree(p, tmp_path / "bb" / m) for m, p in tiny_backbones.items()}
    model = EmoXFormer.from_config(_hf_config({m: str(p) for m, p in copies.items()})).eval()
    pre = Preprocessor.for_model(model.config)
    model.save_pretrained(tmp_path / "m", tokenizer=pre.tokenizer)
    shutil.rmtree(tmp_path / "bb")
    loaded = EmoXFormer.from_pretrained(tmp_path / "m").eval()
    loaded_pre = Preprocessor.for_model(loaded.config, tmp_path / "m")
    samples = _samples(pre)
    torch.testing.assert_close(_run(loaded, loaded_pre, samples), _run(model, pre, samples), atol=0, rtol=0)


def test_freezing_controls_which_parameters_learn(model_and_pre):
    model, pre = model_and_pre
    model.train()
    model.freeze_backbones()
    assert not any(p.requires_grad for p in model.encoders.parameters())
    assert not model.encoders.training  # frozen encoders stay in eval mode
    model(Collator(pre.pad_id)(_samples(pre))).logits.sum().backward()
    for name, param in model.named_parameters():
        if name.startswith("encoders."):
            assert param.grad is None, name
    for part in (model.projections, model.fusion, model.classifier):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    model.zero_grad(set_to_none=True)
    model.unfreeze_backbones()
    model.train()
    model(Collator(pre.pad_id)(_samples(pre))).logits.sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == [], no_grad


def test_unsafe_or_foreign_folders_are_refused(tmp_path):
    model = EmoXFormer(_builtin_config())
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "extra.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(ModelLoadError, match="pickle"):
        EmoXFormer.from_pretrained(tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="config.json missing"):
        EmoXFormer.from_pretrained(tmp_path / "empty")
    other = EmoXFormer(_builtin_config(hidden_size=16))
    other.save_pretrained(tmp_path / "other")
    (tmp_path / "m" / "extra.bin").unlink()
    (tmp_path / "m" / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(ModelLoadError, match="do not match"):
        EmoXFormer.from_pretrained(tmp_path / "m")


def test_unreachable_backbone_name_is_a_clear_error(monkeypatch):
    set_hub_offline(monkeypatch)
    with pytest.raises(ModelLoadError, match="cannot load"):
        EmoXFormer.from_config(EmoXFormerConfig(text_backbone="no-such-org/no-such-model-xyz"))


def test_focal_loss():
    logits = torch.randn(16, 7)
    target = torch.randint(0, 7, (16,))
    torch.testing.assert_close(FocalLoss(0.0)(logits, target), torch.nn.functional.cross_entropy(logits, target))
    assert FocalLoss(2.0)(logits, target) < FocalLoss(0.0)(logits, target)
    confident = torch.full((1, 7), -10.0)
    confident[0, 2] = 10.0
    assert FocalLoss(2.0)(confident, torch.tensor([2])) < 1e-12
    with pytest.raises(ValueError):
        build_loss("hinge")


def test_patch_tokens_option(tiny_backbones):
    model = EmoXFormer.from_config(_hf_config(tiny_backbones, vision_tokens="patches")).eval()
    pre = Preprocessor.for_model(model.config)
    batch = Collator(pre.pad_id)([{"vision": pre.prepare_image(np.zeros((40, 60, 3), np.uint8))}])
    tokens, valid, _ = model.encode(batch["present"], batch)
    assert tokens["vision"].shape[1] == 17  # 16 patches + [CLS] for a 32x32 image with 8x8 patches


def test_gradient_checkpointing_switch_keeps_outputs(tiny_backbones):
    model = EmoXFormer.from_config(_hf_config(tiny_backbones)).eval()
    pre = Preprocessor.for_model(model.config)
    before = _run(model, pre, _samples(pre))
    model.gradient_checkpointing(True)
    assert all(model.encoders[m].backbone.is_gradient_checkpointing for m in MODALITIES)
    model.train()
    model(Collator(pre.pad_id)(_samples(pre))).logits.sum().backward()  # recomputation works in backward
    model.gradient_checkpointing(False)
    assert not any(model.encoders[m].backbone.is_gradient_checkpointing for m in MODALITIES)
    torch.testing.assert_close(_run(model.eval(), pre, _samples(pre)), before)


def test_forward_takes_batch_entries_and_returns_logits_with_a_loss_for_labels():
    torch.manual_seed(0)
    model = EmoXFormer.from_config(_builtin_config()).eval()
    pre = Preprocessor.for_model(model.config)
    batch = Collator(pre.pad_id)(_samples(pre))
    with torch.no_grad():
        by_batch, by_entries = model(batch), model(**batch)
        unlabelled = model(**{k: v for k, v in batch.items() if k != "labels"})
    torch.testing.assert_close(by_entries.logits, by_batch.logits, atol=0, rtol=0)
    assert by_batch.logits.shape == (len(batch["labels"]), 7)
    torch.testing.assert_close(by_batch.loss, torch.nn.functional.cross_entropy(by_batch.logits, batch["labels"]))
    assert unlabelled.loss is None


def test_encoder_outputs_replace_an_encoder_run():
    """`encoder_outputs=` gives a modality's already-encoded rows: the same logits as running its encoder, which
    then does not run."""
    torch.manual_seed(0)
    model = EmoXFormer.from_config(_builtin_config()).eval()
    pre = Preprocessor.for_model(model.config)
    batch = Collator(pre.pad_id)(_samples(pre))
    rows = batch["present"][:, MODALITIES.index("vision")]
    with torch.no_grad():
        plain = model(batch).logits
        hidden, valid = model.encoders["vision"](**{k: v[rows] for k, v in batch["vision"].items()})
        full = hidden.new_zeros((len(rows),) + hidden.shape[1:])
        full_valid = torch.zeros(full.shape[:2], dtype=torch.bool)
        full[rows], full_valid[rows] = hidden, valid
        inputs = {k: v for k, v in batch.items() if k != "vision"}
        model.encoders["vision"].forward = lambda **_: pytest.fail("the vision encoder ran")
        served = model(**inputs, encoder_outputs={"vision": {"hidden": full, "valid": full_valid}})
    torch.testing.assert_close(served.logits, plain, atol=1e-5, rtol=1e-5)
