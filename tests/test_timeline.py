"""Emotion over time in a video: `Predictor.timeline` and `emoxformer predict --video --timeline --plot`, the
subtitle parser, and the bad inputs (no sound, windows without a face, a subtitle file that does not parse)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from emoxformer.cli import main
from emoxformer.data.sample_data import draw_face, synthesize_voice
from emoxformer.errors import InputError
from emoxformer.inference import Predictor
from emoxformer.faces import crop_face, find_largest_face
from emoxformer.inference.media import VideoStream
from emoxformer.inference.processor import EmoXFormerProcessor
from emoxformer.inference.subtitles import Cue, parse_subtitles, read_subtitles, text_between
from emoxformer.inference.timeline import WindowReader, timeline_columns
from emoxformer.labels import EMOTIONS
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer
from media_factory import write_scenes

TINY = dict(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1)
RATE = 16_000


def _face(emotion: str, seed: int = 0) -> np.ndarray:
    return draw_face(np.random.default_rng(seed), emotion)


def _voice(emotion_code: int, seconds: float, seed: int = 0) -> np.ndarray:
    return synthesize_voice(np.random.default_rng(seed), emotion_code, actor=1, seconds=seconds, rate=RATE)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine the threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    model = EmoXFormer(EmoXFormerConfig(**TINY))
    return Predictor(model, EmoXFormerProcessor.for_model(model), device="cpu")


@pytest.fixture(scope="module")
def face_model(tmp_path_factory):
    """A tiny model whose face expert tells a happy cartoon face from a surprised one, trained on faces cut from
    frames as the timeline cuts them. Its voice and text experts answer uniformly (their last layers are zero),
    so the fused answer is the face's."""
    torch.manual_seed(0)
    model = EmoXFormer(EmoXFormerConfig(**TINY))
    for name in ("audio", "text"):
        torch.nn.init.zeros_(model.heads[name][-1].weight)
        torch.nn.init.zeros_(model.heads[name][-1].bias)
    processor = EmoXFormerProcessor.for_model(model)
    samples = []
    for seed in range(1, 9):
        for emotion in ("happy", "surprise"):
            frame = np.full((240, 320), 90, np.uint8)
            frame[48:192, 88:232] = np.asarray(Image.fromarray(_face(emotion, seed)).resize((144, 144), Image.BICUBIC))
            frame = np.repeat(frame[..., None], 3, axis=2)
            samples.append(processor.prepare_sample(image=crop_face(frame, find_largest_face(frame)), label=emotion))
    batch = processor.collate(samples)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for module in model.modules():  # batch-norm statistics of the training faces, not of the first steps' drift
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        model(batch)
    model.eval()
    directory = tmp_path_factory.mktemp("face-model")
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def change_video(tmp_path_factory):
    """Three seconds of a happy face and voice, then three of a surprised face and voice."""
    path = tmp_path_factory.mktemp("videos") / "change.mp4"
    return write_scenes(path, [(3.0, _face("happy", 11), _voice(3, 3.0, 1)), (3.0, _face("surprise", 12), _voice(8, 3.0, 2))])


# ----------------------------------------------------------------------------- the timeline
def test_the_label_changes_in_the_window_where_the_face_changes(face_model, change_video):
    timeline = Predictor.from_pretrained(face_model, device="cpu").timeline(change_video, window=2, hop=1)
    assert timeline["start"].tolist() == [0, 1, 2, 3, 4] and timeline["end"].tolist() == [2, 3, 4, 5, 6]
    before, after = timeline[timeline["end"] <= 3], timeline[timeline["start"] >= 3]
    assert before["label"].tolist() == ["happy", "happy"] and after["label"].tolist() == ["surprise", "surprise"]
    assert (before["image_label"] == "happy").all() and (after["image_label"] == "surprise").all()
    assert (before["p_happy"] > 0.5).all() and (after["p_surprise"] > 0.5).all()
    assert (timeline["modalities"] == "audio+image").all() and (timeline["faces"] == 4).all()
    assert timeline.attrs["notes"] == []


def test_the_dataframe_has_every_column_and_windows_up_to_the_end(predictor, tmp_path):
    video = write_scenes(tmp_path / "short.mp4", [(4.5, _face("happy"), _voice(3, 4.5))])
    timeline = predictor.timeline(video, window=2, hop=1)
    assert list(timeline.columns) == timeline_columns()
    assert timeline["start"].tolist() == [0, 1, 2, 3] and timeline["end"].tolist() == [2, 3, 4, 4.5]
    for prefix in ("p_", "image_p_", "audio_p_"):
        sums = timeline[[f"{prefix}{e}" for e in EMOTIONS]].sum(axis=1)
        assert np.allclose(sums, 1, atol=1e-5), prefix
    assert timeline[[f"text_p_{e}" for e in EMOTIONS]].isna().all().all() and (timeline["text_label"] == "").all()
    assert set(timeline["label"]) <= set(EMOTIONS)
    # Each window is scored as predict(video=...) scores a clip: its faces with its sound, averaged over the faces.
    assert timeline.attrs["fusion"] == predictor.fusion
    nonoverlapping = predictor.timeline(video, window=1.5, hop=1.5)
    assert nonoverlapping["start"].tolist() == [0, 1.5, 3] and nonoverlapping["end"].tolist() == [1.5, 3, 4.5]


def test_a_window_is_scored_as_a_clip_of_it_is(predictor, tmp_path):
    """One window covering the whole video gives predict(video=...)'s answer (same frames when both take 4)."""
    video = write_scenes(tmp_path / "clip.mp4", [(2.0, _face("anger", 3), _voice(5, 2.0, 3))])
    row = predictor.timeline(video, window=2, hop=2).iloc[0]
    clip = Predictor(predictor.model, predictor.processor, device="cpu", max_video_frames=4).predict(video=video)
    assert row["label"] == clip.label and row["modalities"] == "+".join(clip.modalities)
    assert [row[f"p_{e}"] for e in EMOTIONS] == pytest.approx([clip.probabilities[e] for e in EMOTIONS], abs=0.02)
    assert [row[f"image_p_{e}"] for e in EMOTIONS] == pytest.approx([clip.per_modality["image"][e] for e in EMOTIONS], abs=0.02)


def test_windows_without_a_face_are_scored_from_their_sound(predictor, tmp_path):
    video = write_scenes(tmp_path / "away.mp4", [(2.0, _face("happy"), _voice(3, 2.0)), (2.0, None, _voice(4, 2.0, 1)),
                                                  (2.0, _face("happy"), _voice(3, 2.0, 2))])
    timeline = predictor.timeline(video, window=2, hop=1)
    away = timeline[timeline["start"] == 2].iloc[0]
    assert away["faces"] == 0 and away["modalities"] == "audio" and away["image_label"] == "" and "no face" in away["notes"]
    assert away["label"] == away["audio_label"]
    assert [away[f"p_{e}"] for e in EMOTIONS] == pytest.approx([away[f"audio_p_{e}"] for e in EMOTIONS], abs=1e-6)
    with_face = timeline[timeline["faces"] > 0]
    assert len(with_face) == 4 and (with_face["modalities"] == "audio+image").all()
    assert timeline.attrs["notes"] == ["no face in 1 of 5 windows (first at 2 s); those were scored from their sound"]


def test_a_video_without_sound_is_scored_from_the_faces_with_a_note(predictor, tmp_path):
    video = write_scenes(tmp_path / "mute.mp4", [(3.0, _face("sad"), None)])
    timeline = predictor.timeline(video, window=2, hop=1)
    assert (timeline["modalities"] == "image").all() and (timeline["audio_label"] == "").all()
    assert timeline.attrs["notes"][0] == "mute.mp4: no audio track; the windows are scored from the faces"


def test_a_whole_video_without_sound_is_answered_from_the_faces_with_a_note(predictor, tmp_path):
    video = write_scenes(tmp_path / "mute.mp4", [(1.0, _face("sad"), None)])
    prediction = predictor.predict(video=video)
    assert prediction.modalities == ("image",)
    assert prediction.notes == ["mute.mp4: no audio track; answered without the sound"]


def test_a_video_with_a_separate_audio_or_image_is_refused_not_half_used(predictor, tmp_path):
    video = write_scenes(tmp_path / "clip.mp4", [(1.0, _face("sad"), _voice(3, 1.0))])
    with pytest.raises(InputError, match="a video gives its own sound and faces: pass audio without the video"):
        predictor.predict(video=video, audio=_voice(4, 1.0), sample_rate=RATE)
    with pytest.raises(InputError, match="pass an image without the video"):
        predictor.predict(video=video, image=_face("happy"))


def test_windows_with_nothing_to_score_have_an_empty_label(predictor, tmp_path):
    video = write_scenes(tmp_path / "empty.mp4", [(2.0, _face("sad"), None), (2.0, None, None)])
    timeline = predictor.timeline(video, window=1, hop=1)
    assert timeline["label"][:2].isin(EMOTIONS).all() and timeline["label"].tolist()[2:] == ["", ""]
    assert timeline["notes"].tolist()[2:] == ["no face; nothing to score"] * 2
    assert timeline.attrs["notes"][1:] == ["no face in 2 of 4 windows (first at 2 s); they had nothing else to score",
                                           ("2 of 4 windows had nothing to score (no face, no usable sound, no "
                                            "transcript): their label is empty")]


def test_the_transcript_gives_each_window_the_lines_it_overlaps(predictor, tmp_path):
    video = write_scenes(tmp_path / "talk.mp4", [(4.0, _face("happy"), _voice(3, 4.0))])
    (tmp_path / "talk.srt").write_text("1\n00:00:00,200 --> 00:00:01,500\nI'm so happy\n\n"
                                       "2\n00:00:02,500 --> 00:00:03,900\nI miss her so much\n")
    timeline = predictor.timeline(video, window=1, hop=1, transcript=tmp_path / "talk.srt")
    assert timeline["transcript"].tolist() == ["I'm so happy", "I'm so happy", "I miss her so much", "I miss her so much"]
    assert (timeline["modalities"] == "text+audio+image").all() and timeline["text_label"].isin(EMOTIONS).all()
    alone = predictor.predict(text="I miss her so much")
    assert [timeline[f"text_p_{e}"][3] for e in EMOTIONS] == pytest.approx([alone.probabilities[e] for e in EMOTIONS], abs=1e-5)


def test_memory_stays_flat_however_long_the_video(tmp_path):
    """The reader holds the open windows' sound and sampled frames only: as little for 24 s as for 4 s."""
    peaks = {}
    for seconds in (4, 24):
        video = write_scenes(tmp_path / f"{seconds}.mp4", [(seconds, None, _voice(3, seconds))])
        with VideoStream(video) as stream:
            reader = WindowReader(stream, window=2, hop=1, prepare_frame=lambda frame: "face", frames_per_window=4)
            windows = list(reader)
        assert len(windows) == seconds - 1 and all(len(w.faces) == 4 for w in windows)
        assert all(abs(len(w.audio) - 2 * RATE) <= RATE // 100 for w in windows)
        peaks[seconds] = (reader.peak_held_frames, reader.peak_held_samples)
    # A window's four sampled frames, and those of the next sampled while the sound catches up; its 2 s of sound.
    assert peaks[4][0] <= peaks[24][0] <= 4 + 2
    assert peaks[24][1] <= 3 * RATE and peaks[24][1] <= peaks[4][1] + RATE // 10


# ----------------------------------------------------------------------------- refused inputs
def test_bad_windows_and_a_model_without_text_are_one_line_errors(predictor, tmp_path):
    video = write_scenes(tmp_path / "v.mp4", [(1.0, _face("happy"), None)])
    for window, hop in ((0, 1), (2, -1), (float("nan"), 1), (1000, 1)):
        with pytest.raises(InputError):
            predictor.timeline(video, window=window, hop=hop)
    EmoXFormer(EmoXFormerConfig(**TINY, modalities=["audio", "vision"])).save_pretrained(tmp_path / "no-text")
    (tmp_path / "v.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    with pytest.raises(InputError, match="trained without text"):
        Predictor.from_pretrained(tmp_path / "no-text", device="cpu").timeline(video, transcript=tmp_path / "v.srt")
    with pytest.raises(InputError, match="video file not found"):
        predictor.timeline(tmp_path / "missing.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="broken.mp4: unreadable video"):
        predictor.timeline(tmp_path / "broken.mp4")


# ----------------------------------------------------------------------------- subtitles
SRT = ("\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> there,\r\nfriend &amp; co\r\n\r\n"
       "2\r\n00:00:03,250 --> 00:00:04,000\r\n{\\an8}Bye!\r\n")
VTT = """WEBVTT - a talk
Kind: captions

NOTE the speaker changes
half way

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:02.500 align:start position:10%
<v Ann>Hello there</v>

00:00:03.250 --> 00:00:04.000
<c.loud>Bye!</c> <00:00:03.500>again
"""


def test_srt_and_webvtt_parse_to_the_same_kind_of_cues():
    assert parse_subtitles(SRT) == [Cue(1.0, 2.5, "Hello there, friend & co"), Cue(3.25, 4.0, "Bye!")]
    assert parse_subtitles(VTT) == [Cue(1.0, 2.5, "Hello there"), Cue(3.25, 4.0, "Bye! again")]
    cues = parse_subtitles(SRT)
    assert text_between(cues, 2.0, 3.5) == "Hello there, friend & co Bye!" and text_between(cues, 2.5, 3.25) == ""


@pytest.mark.parametrize("content, problem", [
    ("just some words\nand more\n", "not a subtitle file (SRT or WebVTT)"),
    ("1\n00:00:01,000 -> 00:00:02,000\nhi\n\n2\n00:00:03,000 --> 00:00:04,000\nyo\n", "line 2: expected a cue time range"),
    ("1\n00:00:05,000 --> 00:00:02,000\nhi\n", "line 2: the cue ends before it starts"),
    ("WEBVTT\n\n00:01.000 --> 00:02.000\nfine\n\nnot a cue\nat all\n", "line 7: expected a cue time range"),
    ("WEBVTT\n", "holds no cues"),
    ("", "not a subtitle file"),
])
def test_a_subtitle_file_that_does_not_parse_is_one_line(tmp_path, content, problem):
    path = tmp_path / "talk.srt"
    path.write_text(content)
    with pytest.raises(InputError) as error:
        read_subtitles(path)
    message = str(error.value)
    assert message.startswith(str(path)) and problem in message and "\n" not in message


def test_a_missing_or_undecodable_subtitle_file(tmp_path):
    with pytest.raises(InputError, match="transcript file not found"):
        read_subtitles(tmp_path / "missing.vtt")
    (tmp_path / "latin.srt").write_bytes("1\n00:00:00,000 --> 00:00:01,000\ncaf\xe9\n".encode("cp1252"))
    assert read_subtitles(tmp_path / "latin.srt") == [Cue(0.0, 1.0, "caf\xe9")]


# ----------------------------------------------------------------------------- the command line
def test_the_command_writes_the_table_and_the_plot(face_model, change_video, tmp_path, capsys):
    csv, png = tmp_path / "talk.csv", tmp_path / "talk.png"
    assert main(["predict", "--model", str(face_model), "--video", str(change_video), "--timeline", str(csv),
                 "--plot", str(png), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "5 windows of 2 s, one every 1 s" in out
    summary = next(line for line in out.splitlines() if line.startswith("emotion over time: "))
    assert summary.startswith("emotion over time: 0:00.0-") and summary.split(", ")[0].endswith(" happy")
    assert summary.endswith("-0:06.0 surprise")
    table = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    assert list(table.columns) == timeline_columns() and table["label"].tolist()[:2] == ["happy", "happy"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(png).size[0] > 800
    assert main(["predict", "--model", str(face_model), "--video", str(change_video), "--plot", str(png), "--no-progress"]) == 2
    assert "talk.png: exists; pass --overwrite" in capsys.readouterr().err
    assert main(["predict", "--model", str(face_model), "--video", str(change_video), "--plot", str(png), "--no-progress",
                 "--overwrite", "--window", "3", "--hop", "3"]) == 0
    assert "2 windows of 3 s, one every 3 s; wrote the plot to" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--transcript", "{broken}"], "broken.srt, line 2: expected a cue time range"),
    (["--text", "hello"], "a timeline takes its text from --transcript"),
    (["--plot", "{tmp}/plot.gif"], "the plot is written as .png, .svg, .pdf or .jpg"),
    (["--timeline", "{tmp}/missing/t.csv"], "its folder does not exist"),
])
def test_bad_timeline_options_are_one_line(face_model, change_video, tmp_path, capsys, extra, message):
    (tmp_path / "broken.srt").write_text("1\n00:00:01 --> 00:00:02\nhi\n")
    extra = [a.format(broken=tmp_path / "broken.srt", tmp=tmp_path) for a in extra]
    if "--timeline" not in extra and "--plot" not in extra:
        extra += ["--timeline", str(tmp_path / "t.csv")]
    assert main(["predict", "--model", str(face_model), "--video", str(change_video), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emoxformer: error:") and message in err[0]


def test_the_command_prints_the_no_sound_note(face_model, tmp_path, capsys):
    video = write_scenes(tmp_path / "mute.mp4", [(2.0, _face("sad", 4), None)])
    assert main(["predict", "--model", str(face_model), "--video", str(video), "--timeline", str(tmp_path / "t.csv"),
                 "--no-progress"]) == 0
    assert "note: mute.mp4: no audio track; the windows are scored from the faces" in capsys.readouterr().out
    assert main(["predict", "--model", str(face_model), "--video", str(video), "--window", "1"]) == 2
    assert "--window goes with --timeline" in capsys.readouterr().err
