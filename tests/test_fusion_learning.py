"""The fusion learns from disjoint datasets: label-matched pairs assembled in each training batch give every
trainable parameter a gradient, late fusion is the product of the calibrated single-modality answers, and the
fusion choice is saved with the model."""
import numpy as np
import pytest
import torch

from emoxformer.config import load_config
from emoxformer.data.collate import Collator
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.calibration import choose_inference_fusion, training_priors
from emoxformer.training.module import EmoXFormerModule
from emoxformer.training.pairs import label_matched_rows, pair_labels


def _config(**values):
    return EmoXFormerConfig(hidden_size=32, num_heads=4, fusion_layers=2, builtin_width=32, **values)


def _disjoint_batch(pre, labels=(0, 0, 0, 1, 1, 1, 2, 2, 2)):  # rows cycle text, audio, vision
    rng = np.random.default_rng(0)
    samples = []
    for i, label in enumerate(labels):
        kind = ("text", "audio", "vision")[i % 3]
        value = {"text": pre.tokenize(f"sample {i} words"), "audio": pre.prepare_audio(rng.normal(size=8000).astype(np.float32) * 0.1),
                 "vision": pre.prepare_image(rng.integers(0, 255, (48, 48), dtype=np.uint8))}[kind]
        samples.append({"id": str(i), "label": label, "dataset": i % 3, kind: value})
    return Collator(pre.pad_id)(samples)


def _stage_step(module, batch, frozen: bool):
    module.model.train()
    module.model.freeze_backbones(frozen)
    module.model.zero_grad(set_to_none=True)
    module.training_step(batch, 0).backward()
    return [n for n, p in module.model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]


@pytest.mark.parametrize("recipe", ["quickstart", "laptop"])
def test_every_trainable_parameter_learns_from_disjoint_batches_in_both_stages(recipe):
    # Regression (issue 25): with one modality per sample, all 36 attention and gate tensors had no gradient.
    config = load_config(recipe)
    config.model.text_backbone = config.model.audio_backbone = config.model.vision_backbone = "builtin"
    config.model.builtin_width = 32
    assert config.data.pairing == "none" and config.train.fusion_pairs > 0  # the default recipe trains disjointly
    torch.manual_seed(0)
    model = EmoXFormer.from_config(config.model)
    module = EmoXFormerModule(model, ["meld", "ravdess", "fer2013"], config.train, config.train.stage1)
    batch = _disjoint_batch(Preprocessor.for_model(model.config))
    assert (batch["present"].sum(-1) == 1).all()
    assert _stage_step(module, batch, frozen=True) == []
    assert _stage_step(module, batch, frozen=False) == []
    attention = [n for n, _ in model.named_parameters() if ".attention." in n or ".gate." in n]
    assert len(attention) >= 12


def test_without_pairs_the_fusion_gets_no_gradient():
    # The measurement behind the pairs: the reference training leaves the cross-attention untrained.
    config = load_config("quickstart", ["train.fusion_pairs=0"])
    torch.manual_seed(0)
    model = EmoXFormer.from_config(config.model)
    module = EmoXFormerModule(model, ["meld", "ravdess", "fer2013"], config.train, config.train.stage1)
    dead = _stage_step(module, _disjoint_batch(Preprocessor.for_model(model.config)), frozen=False)
    assert any(".attention." in n for n in dead) and any(n.startswith("heads.fused") for n in dead)


def test_label_matched_rows_pair_only_single_rows_of_one_label():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    present = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=torch.bool)
    torch.manual_seed(0)
    rows = label_matched_rows(labels, present)
    table = torch.stack([rows.get(m, torch.full((len(next(iter(rows.values()))),), -1)) for m in ("text", "audio", "vision")], -1)
    assert len(table) == 5  # rows 0-4 have a partner; row 5 (the only 2) has none; row 6 is not single-modality
    for row in table:
        used = row[row >= 0]
        assert len(used) >= 2 and len(set(labels[used].tolist())) == 1 and 6 not in used.tolist()
    assert pair_labels(labels, rows).tolist() == [labels[r[r >= 0][0]].item() for r in table]
    many = [label_matched_rows(labels, present) for _ in range(200)]
    sizes = {int(sum((r[m] >= 0)[0] for m in r)) for r in many}
    assert sizes == {2, 3}  # anchor 0 gets one or both partners


def test_late_fusion_is_the_product_of_calibrated_single_modality_answers():
    torch.manual_seed(0)
    priors = {"text": [0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], "audio": [1 / 7] * 7,
              "vision": [0.1, 0.05, 0.15, 0.25, 0.15, 0.1, 0.2]}
    model = EmoXFormer(_config(modality_priors=priors, modality_temperatures={"text": 2.0, "audio": 0.5, "vision": 1.3})).eval()
    pre = Preprocessor.for_model(model.config)
    rng = np.random.default_rng(1)
    text, audio = pre.tokenize("so happy today"), pre.prepare_audio(rng.normal(size=8000).astype(np.float32) * 0.1)
    face = pre.prepare_image(rng.integers(0, 255, (48, 48), dtype=np.uint8))
    collate = Collator(pre.pad_id)
    with torch.no_grad():
        alone = {m: model(collate([{m: v}])) for m, v in (("text", text), ("audio", audio), ("vision", face))}
        both = model(collate([{"text": text, "audio": audio, "vision": face}]), fusion="late")
        probabilities = model.probabilities(both.logits, torch.ones(1, 3, dtype=torch.bool))
    expected = torch.ones(7)
    for m, output in alone.items():
        single = model.probabilities(output.logits, collate([{m: {"text": text, "audio": audio, "vision": face}[m]}])["present"])[0]
        expected = expected * single / torch.tensor(priors[m])
        # A modality's own answer inside a multimodal request is the answer it gives alone.
        torch.testing.assert_close(both.modality_logits[m][0], output.logits[0])
    torch.testing.assert_close(probabilities[0], expected / expected.sum())
    model_answer = model(collate([{"text": text, "audio": audio, "vision": face}]), fusion="model").logits
    assert not torch.allclose(model_answer, both.logits)  # the fused head adds its (small) correction


def test_single_modality_answers_do_not_depend_on_the_fusion_or_on_other_rows():
    torch.manual_seed(0)
    model = EmoXFormer(_config()).eval()
    pre = Preprocessor.for_model(model.config)
    text = pre.tokenize("oh no")
    face = pre.prepare_image(np.full((48, 48), 90, np.uint8))
    collate = Collator(pre.pad_id)
    with torch.no_grad():
        alone = model(collate([{"text": text}])).logits
        mixed = model(collate([{"text": text}, {"text": text, "vision": face}, {"vision": face}]))
    torch.testing.assert_close(mixed.logits[0], alone[0])
    torch.testing.assert_close(mixed.modality_logits["text"][1], alone[0])


def test_the_fusion_choice_and_calibration_round_trip_through_config_json(tmp_path):
    model = EmoXFormer(_config(inference_fusion="late", modality_temperatures={"text": 1.7},
                               modality_priors={"text": [1 / 7] * 7}, modality_weights={"text": 0.05, "audio": 1.2}))
    model.save_pretrained(tmp_path / "m")
    loaded = EmoXFormer.from_pretrained(tmp_path / "m")
    assert loaded.config.inference_fusion == "late"
    assert loaded.config.modality_weights == {"text": 0.05, "audio": 1.2}
    assert loaded.config.modality_temperatures == {"text": 1.7} and loaded.config.modality_priors["text"][0] == pytest.approx(1 / 7)


def test_choose_inference_fusion_takes_the_better_validation_score():
    paired = {"model": {"t": {"accuracy": 0.4}, "t+a": {"accuracy": 0.7}, "a+v": {"accuracy": 0.6}},
              "late": {"t": {"accuracy": 0.4}, "t+a": {"accuracy": 0.6}, "a+v": {"accuracy": 0.6}}}
    assert choose_inference_fusion(paired)["fusion"] == "model"
    paired["late"]["t+a"]["accuracy"] = 0.7
    assert choose_inference_fusion(paired)["fusion"] == "late"  # a tie: the simpler late fusion


def test_training_priors_pool_the_datasets_of_a_modality(sample_root):
    config = load_config("quickstart", [f"data.root={sample_root}"])
    dm = EmoDataModule(config.data, Preprocessor(config.model), batch_size=16, seed=0, progress=False)
    dm.setup()
    priors = training_priors(dm.records, 7)
    assert set(priors) == {"text", "audio", "vision"}
    for modality, name in (("text", "meld"), ("audio", "ravdess"), ("vision", "fer2013")):
        counts = np.bincount([r.label for r in dm.records[name].train], minlength=7) + 1
        np.testing.assert_allclose(priors[modality], counts / counts.sum(), atol=1e-6)


@pytest.mark.slow  # about a minute: it prepares every RAVDESS test clip
def test_ravdess_transcripts_pair_each_clip_with_the_sentence_it_speaks(sample_root):
    from emoxformer.data.ravdess import STATEMENTS
    from emoxformer.inference.processor import EmoXFormerProcessor
    from emoxformer.training.evaluate import transcript_examples, transcript_metrics

    config = load_config("quickstart", [f"data.root={sample_root}", "data.ravdess_transcripts=true"])
    torch.manual_seed(0)
    model = EmoXFormer.from_config(config.model)
    pre = Preprocessor.for_model(model.config)
    dm = EmoDataModule(config.data, pre, batch_size=16, seed=0, progress=False)
    dm.setup()
    processor = EmoXFormerProcessor.from_preprocessor(pre)
    examples = transcript_examples(dm, processor)
    records = dm.splits["ravdess"]["test"].records
    assert len(examples) == len(records)
    for example, record in zip(examples, records):
        assert {"text", "audio"} <= set(example) and example["label"] == record.label
        assert example["text"] == processor.prepare_text(STATEMENTS[record.statement])  # as typed into the Predictor
    metrics = transcript_metrics(model, dm, processor, config.train)
    assert set(metrics) == {"model", "late"} and set(metrics["late"]) == {"t", "a", "t+a"}
    assert metrics["model"]["a"] == metrics["late"]["a"] and metrics["model"]["t+a"]["n"] == len(records)


def test_late_fusion_raises_each_modality_s_answer_to_its_weight():
    torch.manual_seed(0)
    priors = {"text": [0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], "audio": [1 / 7] * 7}
    weights = {"text": 0.25, "audio": 1.5}
    model = EmoXFormer(_config(modalities=["text", "audio"], modality_priors=priors, modality_weights=weights,
                               modality_temperatures={"text": 2.0, "audio": 0.5})).eval()
    pre = Preprocessor.for_model(model.config)
    text, audio = pre.tokenize("so happy today"), pre.prepare_audio(np.random.default_rng(1).normal(size=8000).astype(np.float32) * 0.1)
    collate = Collator(pre.pad_id)
    with torch.no_grad():
        both = collate([{"text": text, "audio": audio}])
        fused = model.probabilities(model(both, fusion="late").logits, both["present"])[0]
        expected = torch.ones(7)
        for m, value in (("text", text), ("audio", audio)):
            alone = collate([{m: value}])
            single = model.probabilities(model(alone).logits, alone["present"])[0]
            expected = expected * (single / torch.tensor(priors[m])) ** weights[m]
    torch.testing.assert_close(fused, expected / expected.sum())


def test_a_modality_that_says_the_same_for_every_emotion_gets_a_weight_near_zero():
    from emoxformer.training.calibration import fit_product_weights

    rng = np.random.default_rng(0)
    labels = torch.tensor(rng.integers(0, 7, 400))
    # Speech: informative and calibrated-ish; the sentence (as in RAVDESS): the same confident answer whatever the emotion.
    speech = torch.log_softmax(torch.tensor(2.0 * np.eye(7)[labels.numpy()] + rng.normal(size=(400, 7))), -1)
    sentence = torch.log_softmax(torch.tensor([3.0, 0, 0, 0, 2.0, 0, 0]), -1).expand(400, 7).clone()
    prior = torch.full((7,), 1 / 7).log()
    weights = fit_product_weights({"text": sentence - prior, "audio": speech - prior}, labels)
    assert weights["text"] < 0.1 and weights["audio"] > 0.5
    fused = (weights["text"] * sentence + weights["audio"] * speech).argmax(-1)
    product = (sentence + speech).argmax(-1)
    speech_alone = (speech.argmax(-1) == labels).float().mean()
    assert (fused == labels).float().mean() >= speech_alone > (product == labels).float().mean()


def test_late_fusion_weights_fit_only_on_rows_with_several_modalities():
    from emoxformer.training.calibration import fit_modality_weights

    torch.manual_seed(0)
    model = EmoXFormer(_config(modalities=["text", "audio"])).eval()
    pre = Preprocessor.for_model(model.config)
    rng = np.random.default_rng(2)
    audio = [pre.prepare_audio(rng.normal(size=8000).astype(np.float32) * 0.1) for _ in range(6)]
    sentence = pre.tokenize("kids are talking by the door")
    collate, config = Collator(pre.pad_id), load_config("quickstart").train
    singles = [{"id": str(i), "label": i % 7, "audio": a} for i, a in enumerate(audio)]
    assert fit_modality_weights(model, singles, collate, config) == {}  # no real pair: every weight stays 1
    pairs = [dict(row, text=sentence) for row in singles]
    weights = fit_modality_weights(model, pairs, collate, config)
    assert set(weights) == {"text", "audio"} and weights != {"text": 1.0, "audio": 1.0}
    assert fit_modality_weights(model, pairs + singles, collate, config) == weights  # single rows do not count


def test_the_weights_change_late_fusion_only():
    torch.manual_seed(0)
    model = EmoXFormer(_config(modalities=["text", "audio"])).eval()
    pre = Preprocessor.for_model(model.config)
    batch = Collator(pre.pad_id)([{"text": pre.tokenize("kids are talking by the door"),
                                   "audio": pre.prepare_audio(np.random.default_rng(3).normal(size=8000).astype(np.float32))}])
    with torch.no_grad():
        plain = {fusion: model(batch, fusion=fusion).logits for fusion in ("model", "late")}
        model.config.modality_weights = {"text": 0.1, "audio": 1.0}
        weighted = {fusion: model(batch, fusion=fusion).logits for fusion in ("model", "late")}
    torch.testing.assert_close(weighted["model"], plain["model"])  # the fused head was trained on the plain product
    assert not torch.allclose(weighted["late"], plain["late"])
