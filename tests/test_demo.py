"""`emoxformer demo` without a browser: the page's logic (demo/logic.py), its examples, and the command's start-up."""
from __future__ import annotations

import socket
import sys

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from emoxformer.cli import build_parser, main
from emoxformer.data.sample_data import draw_face, synthesize_voice
from emoxformer.demo.examples import make_examples
from emoxformer.demo.logic import (
    DIALOGUE, FUSED_ROW, VIDEO_OVERRIDES, DemoInputs, draw_face_box, inputs_report, modality_rows,
    modality_table_html, page_outputs, resolve_model_dir, run_demo, timeline_outputs,
)
from emoxformer.inference import Predictor
from emoxformer.faces import crop_face, find_largest_face, margin_box
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer
from media_factory import write_video

TINY = dict(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    EmoXFormer(EmoXFormerConfig(**TINY)).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.from_pretrained(model_dir, device="cpu")


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    return make_examples(tmp_path_factory.mktemp("examples"))


@pytest.fixture(scope="module")
def three_inputs(examples):
    """Text, a voice and a face photo from the 'all three' example."""
    both = examples[-1]
    return {"text": both.text, "audio": both.audio, "image": both.image}


def _assert_same(a: dict[str, float], b: dict[str, float]):
    assert a.keys() == b.keys()
    np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], atol=1e-6)


# ----------------------------------------------------------------------------- start-up
def test_without_a_model_the_demo_says_to_run_quickstart(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "emoxformer quickstart" in err[0] and "--model" in err[0]
    quickstart_model = tmp_path / "emoxformer-runs" / "quickstart" / "best"
    EmoXFormer(EmoXFormerConfig(**TINY)).save_pretrained(quickstart_model)
    assert resolve_model_dir(None).resolve() == quickstart_model.resolve()
    assert resolve_model_dir("elsewhere").name == "elsewhere"


def test_demo_binds_locally_without_share_and_has_the_predict_limits():
    demo = build_parser().parse_args(["demo"])
    predict = build_parser().parse_args(["predict", "--model", "m", "--text", "hi"])
    assert (demo.host, demo.port, demo.share) == ("127.0.0.1", 7860, False)
    assert (demo.max_audio_seconds, demo.max_image_pixels) == (predict.max_audio_seconds, predict.max_image_pixels)


def test_without_gradio_the_demo_says_how_to_install_it(model_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # makes `import gradio` fail
    assert main(["demo", "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'emoxformer[demo]'" in err[0]


def test_a_busy_port_is_one_line(model_dir, capsys):
    pytest.importorskip("gradio", reason="the demo extra is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--model", str(model_dir), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot serve on 127.0.0.1:{port}" in err[0] and "--port" in err[0]


def test_uploads_live_at_most_the_hour_the_docs_promise(predictor, tmp_path):
    """Gradio deletes, every delete_cache[0] s, the files older than delete_cache[1] s: a file lives up to the sum."""
    pytest.importorskip("gradio", reason="the demo extra is not installed")
    from emoxformer.demo.app import build_app

    sweep, age = build_app(predictor, "tiny", tmp_path).delete_cache
    assert sweep + age <= 3600 and sweep <= 600
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "demo.md").read_text()
    assert "deletes uploads within an hour of their arrival" in " ".join(page.split())


# ----------------------------------------------------------------------------- predictions
def test_text_alone_is_the_predictors_answer(predictor):
    result = run_demo(predictor, DemoInputs(text="I can't believe it!"))
    expected = predictor.predict(text="I can't believe it!")
    assert result.label == expected.label and result.used == ["text"] and not result.refused
    _assert_same(result.prediction.probabilities, expected.probabilities)
    assert [row["input"] for row in modality_rows(result)] == ["text alone"]


def test_three_inputs_give_a_row_each_and_the_fused_row(predictor, three_inputs):
    result = run_demo(predictor, DemoInputs(**three_inputs))
    assert result.used == ["text", "audio", "image"] and not result.refused
    _assert_same(result.prediction.probabilities, predictor.predict(**three_inputs).probabilities)
    rows = modality_rows(result)
    assert [row["input"] for row in rows] == ["text alone", "audio alone", "face alone", FUSED_ROW]
    for row, name in zip(rows, ("text", "audio", "image")):
        _assert_same(row["probabilities"], predictor.predict(**{name: three_inputs[name]}).probabilities)
        assert row["emotion"] == max(row["probabilities"], key=row["probabilities"].get)
    table = modality_table_html(rows)
    assert table.count("<tr class='alone'>") == 3 and table.count("<tr class='fused'>") == 1


def test_a_refused_input_shows_the_cli_reason_and_the_others_still_count(model_dir, three_inputs, tmp_path, capsys):
    long_audio = tmp_path / "long.wav"
    sf.write(long_audio, synthesize_voice(np.random.default_rng(0), 5, actor=1, seconds=3.0, rate=16_000), 16_000)
    strict = Predictor.from_pretrained(model_dir, device="cpu", max_audio_seconds=2)
    uploaded = {**three_inputs, "audio": str(long_audio)}
    result = run_demo(strict, DemoInputs(**uploaded))
    assert result.used == ["text", "image"] and list(result.refused) == ["audio"]
    assert result.refused["audio"] == "long.wav: audio lasts 3.0 s, more than the limit of 2 s"  # no temporary folder
    _assert_same(result.prediction.probabilities,
                 strict.predict(text=uploaded["text"], image=uploaded["image"]).probabilities)
    assert "**Refused audio:** long.wav: audio lasts 3.0 s" in inputs_report(result)
    assert main(["predict", "--model", str(model_dir), "--audio", str(long_audio), "--max-audio-seconds", "2"]) == 2
    assert "audio lasts 3.0 s, more than the limit of 2 s" in capsys.readouterr().err


def test_an_input_the_model_lacks_is_refused_with_the_predictors_reason(three_inputs, tmp_path):
    EmoXFormer(EmoXFormerConfig(**TINY, modalities=["text", "vision"])).save_pretrained(tmp_path / "no-audio")
    without_audio = Predictor.from_pretrained(tmp_path / "no-audio", device="cpu")
    result = run_demo(without_audio, DemoInputs(**three_inputs))
    assert result.used == ["text", "image"] and list(result.refused) == ["audio"]
    assert result.refused["audio"] == "this model was trained without audio: it takes only text and image"


def test_a_face_sized_image_without_a_detected_face_is_used_whole_with_the_note(predictor, tmp_path):
    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(tmp_path / "crop.png")
    result = run_demo(predictor, DemoInputs(image=str(tmp_path / "crop.png")))
    assert result.used == ["image"] and result.face_box == (0, 0, 48, 48)
    assert result.notes == result.prediction.notes and "the whole image was used" in result.notes[0]
    assert f"**Note:** {result.notes[0]}" in inputs_report(result)


def test_nothing_usable_gives_no_answer_but_every_reason(predictor, tmp_path):
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    result = run_demo(predictor, DemoInputs(text="   ", image=str(tmp_path / "wall.png")))
    assert result.prediction is None and result.used == []
    assert result.refused["image"].startswith("wall.png: no face found")
    assert "<tr" not in modality_table_html(modality_rows(result))
    empty = page_outputs(predictor, DemoInputs())
    assert empty.probabilities is None and "No input given" in empty.report


def test_dialogue_context_is_refused_by_a_single_utterance_model_and_the_text_still_counts(predictor):
    result = run_demo(predictor, DemoInputs(text="wow, no way!", context="Ross: guess what\nMonica: what?", speaker="Joey"))
    assert result.used == ["text"] and list(result.refused) == [DIALOGUE]
    assert "single utterances" in result.refused[DIALOGUE]
    _assert_same(result.prediction.probabilities, predictor.predict(text="wow, no way!").probabilities)


def test_dialogue_context_reaches_a_context_model(tmp_path):
    EmoXFormer(EmoXFormerConfig(**TINY, text_context=2)).save_pretrained(tmp_path / "context-model")
    with_context = Predictor.from_pretrained(tmp_path / "context-model", device="cpu")
    turns = ["Ross: guess what", "Monica: what?"]
    result = run_demo(with_context, DemoInputs(text="wow, no way!", context="\n".join(turns) + "\n\n", speaker=" Joey "))
    assert result.used == ["text", DIALOGUE] and not result.refused
    expected = with_context.predict(text="wow, no way!", context=turns, speaker="Joey")
    _assert_same(result.prediction.probabilities, expected.probabilities)
    assert expected.probabilities != with_context.predict(text="wow, no way!").probabilities  # the context mattered


def test_a_video_uses_its_own_track_and_frames(predictor, three_inputs, tmp_path):
    voice = synthesize_voice(np.random.default_rng(1), 3, actor=2, seconds=1.2, rate=16_000)
    video = str(write_video(tmp_path / "clip.mp4", draw_face(np.random.default_rng(2), "happy", side=144), voice, 16_000))
    result = run_demo(predictor, DemoInputs(**three_inputs, video=video))
    assert result.used == ["text", "video"]
    assert result.refused == {"audio": VIDEO_OVERRIDES, "image": VIDEO_OVERRIDES}
    expected = predictor.predict(text=three_inputs["text"], video=video)
    _assert_same(result.prediction.probabilities, expected.probabilities)
    assert [row["input"] for row in modality_rows(result)] == ["text alone", "audio alone", "face alone", FUSED_ROW]


def test_an_unusable_video_lets_the_other_files_count(predictor, three_inputs, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    result = run_demo(predictor, DemoInputs(**three_inputs, video=str(tmp_path / "broken.mp4")))
    assert result.used == ["text", "audio", "image"] and list(result.refused) == ["video"]
    assert result.refused["video"].startswith("broken.mp4")


def test_a_video_over_time_gives_the_plot_and_the_table_of_the_timeline(predictor, tmp_path):
    voice = synthesize_voice(np.random.default_rng(1), 3, actor=2, seconds=3.0, rate=16_000)
    video = str(write_video(tmp_path / "talk.mp4", draw_face(np.random.default_rng(2), "happy", side=144), voice, 16_000,
                            seconds=3.0))
    shown = timeline_outputs(predictor, video, window=2, hop=1)
    expected = predictor.timeline(video, window=2, hop=1)
    assert shown.table["emotion"].tolist() == expected["label"].tolist() and len(shown.table) == 2
    assert list(shown.table.columns) == ["from (s)", "to (s)", "emotion", "confidence", "face", "voice", "text", "notes"]
    assert shown.plot.ndim == 3 and shown.plot.shape[2] == 3 and shown.plot.shape[1] > 800
    assert shown.report.startswith("2 windows of 2 s, one every 1 s")
    (tmp_path / "talk.srt").write_text("1\n00:00:01 --> 00:00:02\nhi\n")
    refused = timeline_outputs(predictor, video, transcript=str(tmp_path / "talk.srt"))
    assert refused.plot is None and refused.report.startswith("**Refused:** talk.srt, line 2: expected a cue time range")
    assert timeline_outputs(predictor, None).report == "Upload a video to see its emotion over time."


# ----------------------------------------------------------------------------- the face box
def test_the_face_box_is_the_predictors_crop_drawn_in_green(predictor, examples):
    photo = examples[2].image
    pixels = np.asarray(Image.open(photo))
    detected = find_largest_face(pixels)
    result = run_demo(predictor, DemoInputs(image=photo))
    box = result.face_box
    assert box == predictor.locate_face(photo).box == margin_box(detected, pixels.shape)  # the Predictor's margin
    assert box[2] > detected[2] and box[2] < pixels.shape[1] / 2  # the face with its margin, not the whole photo
    np.testing.assert_array_equal(result.face.face, crop_face(pixels, detected))  # the pixels the model was given
    whole = run_demo(predictor, DemoInputs(image=photo, detect_faces=False)).face_box
    assert whole == (0, 0, pixels.shape[1], pixels.shape[0])
    drawn = draw_face_box(pixels, box)
    x, y, w, h = box
    assert drawn.shape == pixels.shape[:2] + (3,)
    assert tuple(drawn[y, x + w // 2]) == (0, 200, 80) and tuple(drawn[y + h - 1, x + w // 2]) == (0, 200, 80)
    assert tuple(drawn[y + h // 2, x + w // 2]) != (0, 200, 80)
    assert (drawn[0, 0] == pixels[0, 0]).all()  # away from the box the photo is unchanged
    shown = page_outputs(predictor, DemoInputs(image=photo))
    assert shown.face_image is not None and (shown.face_image == drawn).all()


def test_a_request_decodes_the_image_and_looks_for_its_face_once(predictor, three_inputs, monkeypatch):
    """The image alone, the fused answer and the drawn box all use the one face the Predictor located."""
    import PIL.Image

    from emoxformer import faces

    opened, searched = [], []
    open_image, cascade = PIL.Image.open, faces._cascade()

    class CountingCascade:
        def detectMultiScale(self, *args, **kwargs):
            searched.append(1)
            return cascade.detectMultiScale(*args, **kwargs)

    monkeypatch.setattr(PIL.Image, "open", lambda path, *a, **k: opened.append(str(path)) or open_image(path, *a, **k))
    monkeypatch.setattr(faces, "_cascade", CountingCascade)
    shown = page_outputs(predictor, DemoInputs(**three_inputs))
    assert shown.face_image is not None and "face alone" in shown.table_html
    assert opened.count(str(three_inputs["image"])) == 1 and len(searched) == 1, (opened, searched)


# ----------------------------------------------------------------------------- examples
def test_examples_are_generated_and_each_is_usable(predictor, examples):
    assert [e.title for e in examples] == ["text: happy", "speech: surprise", "face photo: sad", "all three: anger"]
    for example in examples:
        result = run_demo(predictor, DemoInputs(example.text, example.audio, example.image))
        given = [name for name in ("text", "audio", "image") if getattr(example, name)]
        assert result.used == given and not result.refused, example.title
