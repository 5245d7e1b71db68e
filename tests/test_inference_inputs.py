"""Inference prepares its inputs exactly as training did: dialogue context, grey faces, EXIF orientation."""
import json

import numpy as np
import pytest
from PIL import Image

from emoxformer import Predictor
from emoxformer.cli import main
from emoxformer.config import load_config
from emoxformer.data.context import context_texts, dialogue_text
from emoxformer.data.datamodule import EmoDataModule
from emoxformer.errors import InputError
from emoxformer.faces import find_largest_face
from emoxformer.inference.media import read_image
from emoxformer.labels import EMOTIONS
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.preprocessing import Preprocessor
from emoxformer.training.evaluate import predict
from emoxformer.training.run import TwoStageTrainer

CONTEXT_TURNS = 2


@pytest.fixture(scope="module")
def context_run(sample_root, tiny_backbones, tmp_path_factory):
    """A tiny model trained on MELD with 2 turns of dialogue context and on FER2013 through a 3-channel ViT."""
    out = tmp_path_factory.mktemp("context-run")
    config = load_config("quickstart", [
        f"data.root={sample_root}", "data.datasets=[meld,fer2013]", f"data.text_context={CONTEXT_TURNS}",
        f"model.text_backbone={tiny_backbones['text']}", f"model.vision_backbone={tiny_backbones['vision']}",
        "model.hidden_size=32", "model.fusion_layers=1", "model.max_text_tokens=64", "data.samples_per_epoch=64",
        "train.batch_size=16", "train.stage1.epochs=1", "train.stage2.epochs=1",
    ])
    TwoStageTrainer(config, out, progress=False).run()
    return out / "best", config


@pytest.fixture(scope="module")
def evaluated(context_run):
    """What `evaluate` computes: the run's datamodule over the saved model, test split."""
    model_dir, config = context_run
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    datamodule = EmoDataModule(config.data, Preprocessor.for_model(predictor.model.config, model_dir), progress=False)
    datamodule.setup()
    predictions = predict(predictor.model, datamodule, "test", config.train)
    by_id = dict(zip(predictions["ids"], predictions["probabilities"].numpy()))
    return predictor, datamodule, by_id, model_dir


def _probabilities(prediction) -> np.ndarray:
    return np.array([prediction.probabilities[e] for e in EMOTIONS])


def test_training_records_colour_mode_and_text_format(context_run):
    saved = json.loads((context_run[0] / "config.json").read_text())
    assert saved["image_channels"] == 3 and saved["image_colour"] == "grey"
    assert saved["text_context"] == CONTEXT_TURNS and saved["text_separator"] == "[SEP]" and saved["text_target_mark"] == ">>"


def test_predictor_gives_evaluates_probabilities_for_a_meld_record_with_context(evaluated, tmp_path, capsys):
    predictor, datamodule, by_id, model_dir = evaluated
    test = datamodule.records["meld"].test
    record = next(r for r in test if r.utterance_id >= CONTEXT_TURNS + 1)  # more earlier turns than training used
    earlier = sorted((r for r in test if r.dialogue_id == record.dialogue_id and r.utterance_id < record.utterance_id),
                     key=lambda r: r.utterance_id)
    turns = [f"{r.speaker}: {r.text}" for r in earlier]
    prediction = predictor.predict(text=record.text, speaker=record.speaker, context=turns)
    np.testing.assert_allclose(_probabilities(prediction), by_id[record.id], atol=1e-6)
    assert prediction.notes == [f"used the last {CONTEXT_TURNS} of {len(turns)} context turns, as in training"]
    bare = predictor.predict(text=record.text)
    assert not np.allclose(_probabilities(bare), by_id[record.id], atol=1e-6)  # the format matters to this model
    as_pairs = predictor.predict(text=record.text, speaker=record.speaker, context=[(r.speaker, r.text) for r in earlier])
    np.testing.assert_allclose(_probabilities(as_pairs), by_id[record.id], atol=1e-6)
    # The command line: --context repeated, or --context-file, and --speaker.
    (tmp_path / "turns.txt").write_text("\n".join(turns) + "\n")
    for context_args in ([a for turn in turns for a in ("--context", turn)], ["--context-file", str(tmp_path / "turns.txt")]):
        args = ["predict", "--model", str(model_dir), "--text", record.text,
                "--speaker", record.speaker, *context_args, "--json"]
        assert main(args) == 0
        shown = json.loads(capsys.readouterr().out)
        np.testing.assert_allclose([shown["probabilities"][e] for e in EMOTIONS], by_id[record.id], atol=1e-6)


def test_predictor_gives_evaluates_probabilities_for_a_fer_image_file(evaluated, tmp_path):
    predictor, datamodule, by_id, _ = evaluated
    # A FER2013 face the detector misses, read from a file as a user would give it (face detection on).
    record = next(r for r in datamodule.records["fer2013"].test if find_largest_face(r.pixels) is None)
    Image.fromarray(record.pixels).save(tmp_path / "face.png")
    prediction = predictor.predict(image=tmp_path / "face.png")
    np.testing.assert_allclose(_probabilities(prediction), by_id[record.id], atol=1e-6)
    assert prediction.notes == ["no face found in the 48x48 image; the whole image was used as the face"]


def test_grey_trained_model_sees_a_colour_photo_as_its_grey_version(evaluated):
    predictor = evaluated[0]
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colour[..., 0] = 255  # strongly red: colour and grey inputs differ a lot for a 3-channel backbone
    grey = np.asarray(Image.fromarray(colour).convert("L"))
    from_colour = predictor.predict(image=colour, detect_faces=False)
    from_grey = predictor.predict(image=grey, detect_faces=False)
    np.testing.assert_allclose(_probabilities(from_colour), _probabilities(from_grey), atol=1e-6)


def test_preprocessor_makes_colour_grey_only_for_grey_trained_models():
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 0] = 200
    grey = np.asarray(Image.fromarray(colour).convert("L"))
    settings = dict(image_size=32, image_channels=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    grey_model = Preprocessor(EmoXFormerConfig(**settings, image_colour="grey"))
    assert np.array_equal(grey_model.prepare_image(colour), grey_model.prepare_image(grey))
    colour_model = Preprocessor(EmoXFormerConfig(**settings, image_colour="colour"))
    prepared = colour_model.prepare_image(colour)
    assert not np.array_equal(prepared[0], prepared[1])  # red stays red


def test_one_formatting_function_for_training_and_prediction():
    from emoxformer.data.records import TextRecord

    records = [TextRecord(f"meld/test/dia0_utt{i}", 0, text, speaker, 0, i, "test")
               for i, (speaker, text) in enumerate([("Joey", "hi"), ("", "who said that"), ("Ross", "me")])]
    texts = context_texts(records, 2, "[SEP]")
    assert texts[records[2].id] == dialogue_text([("Joey", "hi"), ("", "who said that")], "Ross", "me", "[SEP]")
    assert texts[records[2].id] == "Joey: hi [SEP] who said that [SEP] >> Ross: me"


def test_context_is_refused_by_a_model_trained_without_it(evaluated, tmp_path):
    predictor = evaluated[0]
    single = Predictor(predictor.model, Preprocessor(EmoXFormerConfig(**{**predictor.model.config.to_dict(), "text_context": 0}),
                                                     predictor.preprocessor.tokenizer), device="cpu")
    with pytest.raises(InputError, match="trained on single utterances"):
        single.predict(text="hi", context=["Joey: hello"])
    with pytest.raises(InputError, match="pass text too"):
        predictor.predict(image=np.zeros((48, 48), np.uint8), speaker="Joey", detect_faces=False)


def test_missing_context_file_is_one_clear_line(evaluated, tmp_path, capsys):
    model_dir = evaluated[3]
    assert main(["predict", "--model", str(model_dir), "--text", "hi", "--context-file", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt: context file not found" in capsys.readouterr().err


def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :, 0] = 255  # a red band along the top of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; rotate 90 degrees clockwise to display
    Image.fromarray(stored).save(tmp_path / "phone.png", exif=exif)
    upright = read_image(tmp_path / "phone.png", max_pixels=10_000)
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))
    with Image.open(tmp_path / "phone.png") as opened:
        np.testing.assert_array_equal(read_image(opened, max_pixels=10_000), np.rot90(stored, k=-1))
