"""Multimodal manifests (data/multimodal.py): rows holding text, audio, image and video of one recording, scored by
`evaluate --manifest` for every modality subset and both fusions (training/multimodal_eval.py)."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from emoxformer.cli import main
from emoxformer.data.multimodal import is_multimodal_manifest, read_multimodal_manifest
from emoxformer.data.records import MultiRecord
from emoxformer.data.sample_data import SIZES, draw_face, synthesize_voice, write_av, write_av_clip
from emoxformer.errors import DataError
from emoxformer.labels import LABEL_TO_INDEX
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer
from emoxformer.training.multimodal_eval import format_multimodal_metrics

SUBSETS = ["t", "a", "v", "t+a", "t+v", "a+v", "t+a+v"]
TINY_MODEL = dict(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1)


def entry(manifest, **values):
    return SimpleNamespace(name="av", manifest=str(manifest), root=None, label_map={}, drop_unmapped=False, **values)


@pytest.fixture(scope="module")
def av_corpus(tmp_path_factory):
    """The sample-data generator's audio-visual corpus (14 recordings: mp4 clips and wav + png pairs)."""
    root = tmp_path_factory.mktemp("av-sample")
    return write_av(root, SIZES["small"], np.random.default_rng(0))


def _small_folder(tmp_path):
    """A voice, a face and a clip with and one without an audio track, for hand-written manifests."""
    rng = np.random.default_rng(1)
    voice = synthesize_voice(rng, 3, 1, 1.0, rate=16_000)
    sf.write(tmp_path / "v.wav", voice, 16_000)
    Image.fromarray(draw_face(rng, "happy")).save(tmp_path / "f.png")
    write_av_clip(tmp_path / "c.mp4", draw_face(rng, "sad"), voice)
    write_av_clip(tmp_path / "mute.mp4", draw_face(rng, "sad"), None)
    return tmp_path


def test_the_generated_corpus_is_one_multimodal_record_per_row(av_corpus):
    assert is_multimodal_manifest(av_corpus)
    records = read_multimodal_manifest(entry(av_corpus))
    assert len(records.test) == 14 and not records.train and not records.skipped and not records.notes
    first, second = records.test[:2]
    assert isinstance(first, MultiRecord) and first.cells == ("text", "video") and first.video_has_audio
    assert second.cells == ("text", "audio", "image") and second.audio.is_file() and second.image.is_file()
    assert first.id == "av/000" and first.label == LABEL_TO_INDEX["anger"] and first.speaker == "actor_1"
    assert sorted({r.label for r in records.test}) == list(range(7))


def test_bad_rows_name_the_manifest_and_row_and_a_video_without_sound_is_noted(tmp_path):
    folder = _small_folder(tmp_path)
    manifest = folder / "m.csv"
    manifest.write_text("text,audio,image,video,label\n"
                        "hello,v.wav,f.png,,happy\n"
                        ",,,mute.mp4,sad\n"
                        ",gone.wav,,,sad\n"
                        ",,f.png,c.mp4,sad\n"
                        ",,,,sad\n"
                        ",,,nothing.mp4,sad\n")
    with pytest.raises(DataError, match=r"m\.csv, row 4: audio file not found \(.*gone\.wav\)"):
        read_multimodal_manifest(entry(manifest))
    records = read_multimodal_manifest(entry(manifest), SimpleNamespace(skip_bad=True))
    assert [r.cells for r in records.test] == [("text", "audio", "image"), ("video",)]
    assert not records.test[1].video_has_audio
    assert records.notes == ["1 videos without an audio track (m.csv row 3): scored on their faces (and text) alone"]
    skipped = "\n".join(records.skipped)
    assert len(records.skipped) == 4 and "row 5: both an image and a video" in skipped
    assert "row 6: the row holds none of text, audio, image, video" in skipped
    assert "row 7: video file not found" in skipped


def test_evaluating_a_bad_row_is_one_line_naming_the_manifest_and_row(tmp_path, capsys):
    folder = _small_folder(tmp_path)
    manifest = folder / "bad.csv"
    manifest.write_text("text,video,label\nhi,c.mp4,sad\nho,lost.mp4,happy\n")
    EmoXFormer(EmoXFormerConfig(**TINY_MODEL)).save_pretrained(tmp_path / "model")
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.csv, row 3: video file not found" in err and "lost.mp4" in err


def test_a_generated_av_manifest_is_scored_for_every_subset_and_both_fusions(av_corpus, tmp_path, capsys):
    EmoXFormer(EmoXFormerConfig(**TINY_MODEL)).save_pretrained(tmp_path / "model")
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--manifest", str(av_corpus), "--accelerator", "cpu",
                 "--json", "--output", str(tmp_path / "m.json")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((tmp_path / "m.json").read_text())
    assert list(result["model"]) == list(result["late"]) == SUBSETS and result["rows"] == 14
    for fusion in ("model", "late"):
        for name in SUBSETS:
            metrics = result[fusion][name]
            assert metrics["n"] == 14 and 0 <= metrics["accuracy"] <= 1 and set(metrics) >= {"weighted_f1", "uar"}
    assert result["late"]["t"] == result["model"]["t"]  # one modality: no fusion
    table = format_multimodal_metrics(result, "av")
    assert [line.split()[0] for line in table.splitlines()[2:]] == SUBSETS and "late acc" in table


def test_a_model_without_vision_scores_text_and_speech_with_the_video_tracks(av_corpus, tmp_path, capsys):
    EmoXFormer(EmoXFormerConfig(**TINY_MODEL, modalities=["text", "audio"])).save_pretrained(tmp_path / "model")
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--manifest", str(av_corpus), "--accelerator", "cpu",
                 "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert list(result["model"]) == ["t", "a", "t+a"] and result["model"]["a"]["n"] == 14  # 7 of them video tracks
    assert "no image encoder: the image cells of 7 rows are not scored" in captured.err
    assert "no image encoder: the faces of the video cells of 7 rows are not scored" in captured.err
    assert "audio tracks" not in captured.err  # they are scored


def test_data_summary_counts_a_multimodal_manifest_by_split_and_the_single_modality_reader_points_there(av_corpus, capsys):
    assert main(["data", "summary", "--manifest", str(av_corpus), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["av"]
    # 7 training rows (the summary holds out val_fraction of them by speaker, as training would) and 7 test rows.
    assert summary["train"]["total"] + summary["val"]["total"] == 7 and summary["test"]["total"] == 7
    with pytest.raises(DataError, match="multimodal manifest: give it modality multi"):
        from emoxformer.data.manifest import read_manifest

        read_manifest(SimpleNamespace(name="av", modality="audio", manifest=str(av_corpus), root=None, label_map={},
                                      drop_unmapped=False), SimpleNamespace(skip_bad=False, split_seed=0))
