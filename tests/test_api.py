"""The notebook API: EmoXFormerProcessor (preprocessing plus collation, saved beside the model), model(**processor(...)),
and emoxformer.train returning a TrainingResult."""
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import emoxformer
from emoxformer import EmoXFormer, EmoXFormerProcessor, Predictor
from emoxformer.cli import main
from emoxformer.data.sample_data import draw_face, synthesize_voice
from emoxformer.errors import ConfigError, InputError
from emoxformer.labels import EMOTIONS
from emoxformer.model.config import EmoXFormerConfig

TINY = ["model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
        "data.samples_per_epoch=48", "train.batch_size=16", "train.stage1.epochs=1", "train.stage2.epochs=1"]


def _builtin_model(**overrides) -> EmoXFormer:
    torch.manual_seed(0)
    return EmoXFormer.from_config(EmoXFormerConfig(**{"hidden_size": 32, "num_heads": 4, "fusion_layers": 2,
                                                      "builtin_width": 32, **overrides})).eval()


def _voice(rate=16_000, seconds=1.0):
    return synthesize_voice(np.random.default_rng(1), 3, actor=2, seconds=seconds, rate=rate)


def _face(emotion="happy", size=None):
    face = draw_face(np.random.default_rng(0), emotion)
    return face if size is None else np.asarray(Image.fromarray(face).resize((size, size)))


def _equal_batches(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(_equal_batches(a[k], b[k]) if isinstance(a[k], dict) else torch.equal(a[k], b[k]) for k in a)


def test_a_mixed_batch_runs_through_the_model_as_keywords():
    model = _builtin_model()
    processor = EmoXFormerProcessor.for_model(model)
    batch = processor(text=["so happy", None, "that is sad"], audio=[None, _voice(), _voice(48_000)],
                      images=[None, _face(), Image.fromarray(_face("sad", 96)).convert("RGB")], sampling_rate=16_000)
    assert set(batch) == {"present", "text", "audio", "vision"}  # only what the model reads; no labels given
    assert batch["present"].tolist() == [[True, False, False], [False, True, True], [True, True, True]]
    output = model(**batch)
    assert output.logits.shape == (3, len(EMOTIONS)) and output.loss is None
    # The same samples prepared one by one and collated: the processor adds nothing of its own.
    samples = [processor.prepare_sample(text="so happy"),
               processor.prepare_sample(audio=_voice(), image=_face(), sampling_rate=16_000),
               processor.prepare_sample(text="that is sad", audio=_voice(48_000), sampling_rate=16_000,
                                        image=Image.fromarray(_face("sad", 96)).convert("RGB"))]
    torch.testing.assert_close(model(processor.collate(samples)).logits, output.logits)
    # One input without a list is a batch of one; labels (indices or names) give the loss.
    single = processor(text="so happy", labels=["happy"])
    assert single["present"].shape == (1, 3) and single["labels"].tolist() == [EMOTIONS.index("happy")]
    assert model(**single).loss is not None


def test_the_batch_rule_is_checked():
    processor = EmoXFormerProcessor.for_model(_builtin_model())
    with pytest.raises(ValueError, match="same length; got text 2, audio 1"):
        processor(text=["a", "b"], audio=[_voice()], sampling_rate=16_000)
    with pytest.raises(InputError, match="sample 1: no input given"):
        processor(text=["a", None], images=[None, None])
    with pytest.raises(InputError, match="sampling_rate"):
        processor(audio=[_voice()])
    with pytest.raises(InputError, match="unknown label 'joy'"):
        processor(text=["a"], labels=["joy"])
    text_only = EmoXFormerProcessor.for_model(_builtin_model(modalities=["text"]))
    with pytest.raises(InputError, match="trained without image: it takes only text"):
        text_only(text=["a"], images=[_face()])


def test_saved_beside_the_model_the_processor_round_trips(tmp_path):
    model = _builtin_model()
    processor = EmoXFormerProcessor.for_model(model)
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")  # beside the model: its config.json is reused, not duplicated
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = EmoXFormerProcessor.from_pretrained(tmp_path / "m")
    inputs = dict(text=["so happy", None], audio=[_voice(), _voice(22_050)], images=[_face(), None], sampling_rate=16_000)
    assert _equal_batches(loaded(**inputs), processor(**inputs))
    # Alone, the processor writes the config it needs; into another model's folder it refuses a mismatch.
    processor.save_pretrained(tmp_path / "alone")
    assert _equal_batches(EmoXFormerProcessor.from_pretrained(tmp_path / "alone")(**inputs), processor(**inputs))
    EmoXFormer(EmoXFormerConfig(hidden_size=32, num_heads=4, builtin_width=32, image_size=32)).save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError, match="image_size"):
        processor.save_pretrained(tmp_path / "other")
    # The check reads the model config's one list of input settings (INPUT_SETTINGS), the feature cache's too.
    _builtin_model(image_colour="colour").save_pretrained(tmp_path / "colour")
    with pytest.raises(ValueError, match="image_colour"):
        processor.save_pretrained(tmp_path / "colour")


def test_an_hf_text_backbone_saves_its_tokenizer_beside_the_model(tiny_backbones, tmp_path):
    backbone = tmp_path / "roberta"
    shutil.copytree(tiny_backbones["text"], backbone)
    torch.manual_seed(0)
    model = EmoXFormer.from_config(EmoXFormerConfig(text_backbone=str(backbone), modalities=["text"], hidden_size=32,
                                                    num_heads=2, fusion_layers=1)).eval()
    processor = EmoXFormerProcessor.for_model(model)
    assert processor.tokenizer is not None
    expected = processor(text=["i am so happy !", "this is great"])
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    shutil.rmtree(backbone)  # the saved folder needs neither the backbone's weights nor its tokenizer
    loaded_processor = EmoXFormerProcessor.from_pretrained(tmp_path / "m")
    loaded_model = EmoXFormer.from_pretrained(tmp_path / "m").eval()
    batch = loaded_processor(text=["i am so happy !", "this is great"])
    assert _equal_batches(batch, expected)
    assert batch["text"]["input_ids"][0, 0] == loaded_processor.tokenizer.cls_token_id
    with torch.no_grad():
        torch.testing.assert_close(loaded_model(**batch).logits, model(**expected).logits)


def test_model_on_processor_output_is_the_predictors_probabilities(tmp_path):
    model = _builtin_model(temperature=2.5)
    model.save_pretrained(tmp_path / "m")
    EmoXFormerProcessor.for_model(model).save_pretrained(tmp_path / "m")
    predictor = Predictor.from_pretrained(tmp_path / "m", device="cpu")
    model, processor = EmoXFormer.from_pretrained(tmp_path / "m").eval(), EmoXFormerProcessor.from_pretrained(tmp_path / "m")
    cases = [dict(text="I'm  so happy!"), dict(audio=_voice(48_000), sample_rate=48_000), dict(image=_face()),
             dict(text="what?", audio=_voice(), sample_rate=16_000, image=_face("surprise", 64))]
    for case in cases:
        expected = predictor.predict(**case, detect_faces=False).probabilities
        inputs = {"text": case.get("text"), "audio": case.get("audio"), "images": case.get("image")}
        batch = processor(**{k: v for k, v in inputs.items() if v is not None}, sampling_rate=case.get("sample_rate"))
        with torch.no_grad():
            probabilities = model.probabilities(model(**batch))[0].numpy()
        np.testing.assert_allclose(probabilities, [expected[e] for e in EMOTIONS], rtol=1e-5, atol=1e-6)
    assert predictor.processor.config.temperature == 2.5


def test_a_context_model_formats_text_as_the_predictor_does():
    model = _builtin_model(modalities=["text"], text_context=2, text_separator="|")
    processor = EmoXFormerProcessor.for_model(model)
    predictor = Predictor(model, processor, device="cpu")
    turns = ["Joey: hi", ("Ross", "hello"), ("Joey", "how are you")]
    sample = predictor.prepare(text="fine", context=turns, speaker="Ross")
    batch = processor(text=["fine"], context=[turns], speakers=["Ross"])
    assert batch["text"]["input_ids"][0].tolist() == sample["text"]
    assert sample["notes"] == ["used the last 2 of 3 context turns, as in training"]


def test_train_takes_an_experiment_config_without_changing_it(tmp_path, monkeypatch):
    """Config handling alone: the trainer is replaced by one that records what it was given."""
    import emoxformer.training.run as run
    from emoxformer.config import load_config

    given = []

    class Recorder:
        def __init__(self, config, out, progress=True):
            given.append((config, out, progress))

        def run(self, resume=False, overwrite=False):
            given[-1] += (resume, overwrite)
            return "result"

    monkeypatch.setattr(run, "TwoStageTrainer", Recorder)
    config = load_config("quickstart")
    assert emoxformer.train(config, tmp_path / "a", overrides=["train.seed=7"], progress=False) == "result"
    used, out, progress, resume, overwrite = given[-1]
    assert used is not config and used.train.seed == 7 and config.train.seed != 7
    assert (out, progress, resume, overwrite) == (tmp_path / "a", False, False, False)
    with pytest.raises(ConfigError, match="config.yaml missing"):
        emoxformer.train(None, tmp_path / "nothing", resume=True)
    with pytest.raises(ConfigError, match="pass one of them"):
        emoxformer.train("quickstart", tmp_path / "a", resume=True, overwrite=True)
    for source in (config, "quickstart"):
        with pytest.raises(ConfigError, match="unknown config key"):
            emoxformer.train(source, tmp_path / "b", overrides=["train.no_such_key=1"])
    assert len(given) == 1 and not (tmp_path / "b").exists()


@pytest.fixture(scope="module")
def trained(sample_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("api") / "run"
    return emoxformer.train("quickstart", run_dir, overrides=[*TINY, f"data.root={sample_root}"], progress=False)


def test_train_returns_the_runs_result(trained):
    result = trained
    assert result.to_dict() == json.loads((result.run_dir / "metrics.json").read_text())
    assert set(result.metrics) == {"stage1", "stage2"} and result.best_stage in result.metrics
    assert result.test_metrics == result.metrics[result.best_stage]
    assert set(result.test_metrics) == {"meld", "ravdess", "fer2013"} and result.paired_test
    assert result.model_dir == result.run_dir / "best" and result.temperature == result.load_model().config.temperature
    predictions = result.test_predictions
    assert len(predictions["ids"]) == sum(m["n"] for m in result.test_metrics.values())
    assert sorted({result.dataset_names[i] for i in predictions["dataset"].tolist()}) == ["fer2013", "meld", "ravdess"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.best_stage = "stage1"


def test_the_runs_best_folder_loads_as_model_and_processor(trained, sample_root):
    model, processor = trained.load_model(), trained.load_processor()
    assert isinstance(processor, EmoXFormerProcessor)
    wav = next((sample_root / "ravdess" / "Actor_21").glob("*.wav"))
    batch = processor(text=["so happy", None], audio=[None, str(wav)], images=[_face(), None])
    with torch.no_grad():
        probabilities = model.probabilities(model(**batch))  # the model's default fusion, as the Predictor's
    predictor = Predictor.from_pretrained(trained.model_dir, device="cpu")
    expected = predictor.predict(text="so happy", image=_face(), detect_faces=False).probabilities
    np.testing.assert_allclose(probabilities[0].numpy(), [expected[e] for e in EMOTIONS], rtol=1e-5, atol=1e-6)


def test_the_train_command_reports_from_the_result(sample_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", "quickstart", "--data", str(sample_root), "--out", str(out), "--no-progress",
                 "--datasets", "meld", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "test metrics, best stage2 model" in printed and "Sample 1: True =" in printed and "(meld: meld/test/" in printed
