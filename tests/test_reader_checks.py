"""Data that would be read silently wrong: one recording in two splits (leakage), multimodal per-split files whose
default ids collide, an unreadable image found only when training, JSONL keys of the first row only, RAVDESS and
FER2013 folders that read as nothing, and RAVDESS split settings that leave a split empty."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from emoxformer.config import load_config
from emoxformer.data.fer2013 import read_fer2013
from emoxformer.data.multimodal import read_multimodal_manifest
from emoxformer.data.ravdess import read_ravdess, read_ravdess_files
from emoxformer.data.sample_data import draw_face, synthesize_voice
from emoxformer.errors import ConfigError, DataError
from test_manifest import Entry, read, write_jsonl

LENIENT = SimpleNamespace(skip_bad=True, split_seed=42)


def _voice(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, synthesize_voice(np.random.default_rng(seed), 3, 1, 0.5, rate=16_000), 16_000)
    return path


def test_a_clip_in_the_train_and_the_test_manifest_is_leakage(tmp_path):
    _voice(tmp_path / "clips" / "a.wav"), _voice(tmp_path / "clips" / "b.wav", 1)
    (tmp_path / "tr").mkdir(), (tmp_path / "te").mkdir()
    (tmp_path / "tr" / "m.csv").write_text("path,label\n../clips/a.wav,neutral\n../clips/b.wav,happy\n")
    (tmp_path / "te" / "m.csv").write_text("path,label\n../clips/./a.wav,neutral\n")  # the same file, spelled otherwise
    entry = Entry("clips", "audio", {"train": str(tmp_path / "tr" / "m.csv"), "test": str(tmp_path / "te" / "m.csv")})
    with pytest.raises(DataError, match=r"te/m.csv, row 2: .*a.wav is also in the train split \(m.csv, row 2\)"):
        read(entry)
    lenient = read(entry, skip_bad=True)  # the later row goes, counted
    assert [len(lenient[s]) for s in ("train", "test")] == [2, 0] and len(lenient.skipped) == 1


def test_a_clip_twice_in_one_split_is_not_leakage(tmp_path):
    _voice(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("path,label,split,id\na.wav,neutral,train,1\na.wav,neutral,train,2\n"
                                    "a.wav,neutral,val,3\n")
    with pytest.raises(DataError, match="a.wav is also in the train split"):
        read(Entry("c", "audio", str(tmp_path / "m.csv")))
    (tmp_path / "m.csv").write_text("path,label,split,id\na.wav,neutral,train,1\na.wav,neutral,train,2\n")
    assert len(read(Entry("c", "audio", str(tmp_path / "m.csv"))).train) == 2


def _multi_entry(manifest, **values):
    return SimpleNamespace(name="av", manifest=manifest, root=None, label_map={}, drop_unmapped=False, **values)


def test_a_recording_in_two_splits_of_a_multimodal_manifest_is_leakage(tmp_path):
    _voice(tmp_path / "a.wav"), _voice(tmp_path / "b.wav", 1)
    (tmp_path / "av.csv").write_text("text,audio,label,split\nhello there,a.wav,neutral,train\nwow,b.wav,happy,train\n"
                                     "hello again,a.wav,neutral,test\n")
    with pytest.raises(DataError, match=r"av.csv, row 4: .*a.wav is also in the train split \(av.csv, row 2\)"):
        read_multimodal_manifest(_multi_entry(str(tmp_path / "av.csv")), every_row=False)
    # evaluate --manifest scores every row as test: no split, no leak
    assert len(read_multimodal_manifest(_multi_entry(str(tmp_path / "av.csv"))).test) == 3


def test_multimodal_files_per_split_with_one_name_keep_apart(tmp_path):
    _voice(tmp_path / "a.wav"), _voice(tmp_path / "b.wav", 1)
    for split, clip, text in (("tr", "a.wav", "hello there"), ("te", "b.wav", "how sad")):
        (tmp_path / split).mkdir()
        (tmp_path / split / "av.csv").write_text(f"text,audio,label\n{text},../{clip},neutral\n")
    manifest = {"train": str(tmp_path / "tr" / "av.csv"), "test": str(tmp_path / "te" / "av.csv")}
    records = read_multimodal_manifest(_multi_entry(manifest), every_row=False)  # was: duplicate id 'av/av/2'
    assert [r.text for r in records.train] + [r.text for r in records.test] == ["hello there", "how sad"]


def test_an_unreadable_image_of_a_multimodal_row_is_found_when_the_manifest_is_read(tmp_path):
    (tmp_path / "bad.png").write_text("not a png")
    Image.fromarray(draw_face(np.random.default_rng(0), "happy")).save(tmp_path / "good.png")
    (tmp_path / "av.csv").write_text("text,image,label,split\nhello,bad.png,happy,train\nhi,good.png,sad,test\n")
    with pytest.raises(DataError, match=r"av.csv, row 2: unreadable image \(UnidentifiedImageError\) \(.*bad.png\)"):
        read_multimodal_manifest(_multi_entry(str(tmp_path / "av.csv")), every_row=False)
    lenient = read_multimodal_manifest(_multi_entry(str(tmp_path / "av.csv")), LENIENT, every_row=False)
    assert len(lenient.skipped) == 1 and [r.text for r in lenient.test] == ["hi"]


def test_jsonl_columns_are_every_rows_keys_in_any_case(tmp_path):
    rows = [{"text": "hello", "label": "neutral"}, {"text": "yay", "label": "happy", "Split": "train"},
            {"text": "grr", "label": "anger", "split": "train"}, {"text": "boo", "label": "sad", "split": "val"}]
    manifest = write_jsonl(tmp_path / "talk.jsonl", rows)
    with pytest.raises(DataError, match=r"talk.jsonl, row 1: unknown split ''"):  # was: every row read as test
        read(Entry("talk", "text", str(manifest)))
    records = read(Entry("talk", "text", str(manifest)), skip_bad=True)
    assert [len(records[s]) for s in ("train", "val", "test")] == [2, 1, 0]


def test_two_csv_columns_naming_one_column_are_refused_not_one_dropped(tmp_path):
    # "text" and "Text " are one column once stripped and lower-cased: the row mapping kept the later's values
    (tmp_path / "talk.csv").write_text("text,label,Text ,split\nhello,neutral,,train\nyay,happy,,test\n")
    with pytest.raises(DataError, match=r"talk.csv, row 1: columns 'text' and 'Text ' name one column: keep one"):
        read(Entry("talk", "text", str(tmp_path / "talk.csv")))
    _voice(tmp_path / "a.wav")
    (tmp_path / "av.csv").write_text("# label_map: {\"glad\": \"happy\"}\nAudio,label,audio ,split\na.wav,glad,a.wav,test\n")
    with pytest.raises(DataError, match=r"av.csv, row 2: columns 'Audio' and 'audio ' name one column"):
        read_multimodal_manifest(_multi_entry(str(tmp_path / "av.csv")))


def test_a_jsonl_row_with_two_keys_naming_one_column_is_a_bad_row(tmp_path):
    rows = [{"text": "hello", "label": "neutral", "split": "train"},
            {"text": "yay", "Text ": "", "label": "happy", "split": "train"}]
    manifest = write_jsonl(tmp_path / "talk.jsonl", rows)
    with pytest.raises(DataError, match=r"talk.jsonl, row 2: keys 'text' and 'Text ' name one column: keep one"):
        read(Entry("talk", "text", str(manifest)))
    assert [r.text for r in read(Entry("talk", "text", str(manifest)), skip_bad=True).train] == ["hello"]
    (tmp_path / "same.jsonl").write_text('{"text": "a", "label": "sad", "split": "train"}\n'
                                         '{"text": "a", "text": "b", "label": "sad", "split": "train"}\n')
    with pytest.raises(DataError, match=r"same.jsonl, row 2: key 'text' given twice: keep one"):  # was: "b" kept
        read(Entry("same", "text", str(tmp_path / "same.jsonl")))


def test_a_jsonl_manifest_of_bad_rows_only_names_the_rows_problem_not_missing_columns(tmp_path):
    manifest = write_jsonl(tmp_path / "talk.jsonl", [{"text": "x", "Text ": "y", "label": "happy", "split": "train"}] * 2)
    with pytest.raises(DataError, match=r"talk.jsonl, row 1: keys 'text' and 'Text ' name one column: keep one "
                                        r"\(and every other row\)"):
        read(Entry("talk", "text", str(manifest)))


def test_blank_csv_header_cells_are_no_columns_and_not_a_repeat(tmp_path):
    (tmp_path / "talk.csv").write_text("text,label,split,,\nhello,neutral,train,,\nyay,happy,test,,\n")
    records = read(Entry("talk", "text", str(tmp_path / "talk.csv")))
    assert [r.text for r in records.train + records.test] == ["hello", "yay"]


@pytest.mark.parametrize("override, message", [
    ("data.ravdess_val_actors=[30]", r"data.ravdess_val_actors holds \[30\]: RAVDESS's actors are numbered 1-24"),
    ("data.ravdess_test_actors=[]", "data.ravdess_test_actors is empty"),
    ("data.ravdess_split=random", "data.ravdess_fold names EmoBox's actor fold: it needs data.ravdess_split=actor"),
])
def test_ravdess_split_settings_that_leave_a_split_empty_or_ignored_are_refused(override, message):
    overrides = [override] + (["data.ravdess_fold=3"] if "random" in override else [])
    with pytest.raises(ConfigError, match=message):
        load_config("quickstart", overrides)


def _ravdess_clip(root, name):
    return _voice(root / f"Actor_{name[-6:-4]}" / name)


def test_ravdess_says_how_many_song_clips_it_leaves_out_and_refuses_nothing_to_read(tmp_path):
    _ravdess_clip(tmp_path, "03-02-03-01-01-01-01.wav")  # a song
    with pytest.raises(DataError, match=r"no RAVDESS speech clips .* 1 song clips \(vocal channel 02\) left out"):
        read_ravdess(tmp_path)
    _ravdess_clip(tmp_path, "03-01-03-01-01-01-01.wav")
    records = read_ravdess(tmp_path)
    assert len(records.train) == 1
    assert records.notes == ["1 song clips (vocal channel 02) left out: data.ravdess_include_song=true reads them"]


def test_ravdess_actor_folders_in_any_case_are_all_read(tmp_path):
    _ravdess_clip(tmp_path, "03-01-03-01-01-01-01.wav")
    _voice(tmp_path / "actor_02" / "03-01-04-01-01-01-02.wav", 1)  # was: this actor left out, without a word
    clips, _ = read_ravdess_files(tmp_path)
    assert sorted(c.path.parent.name for c in clips) == ["Actor_01", "actor_02"]
    _voice(tmp_path / "actor_03" / "03-01-04-01-01-01-04.wav", 2)
    with pytest.raises(DataError, match=r"actor field 04 does not match folder actor_03"):
        read_ravdess_files(tmp_path)


def _fer_folders(root, files: dict[str, list[str]]):
    face = Image.fromarray(draw_face(np.random.default_rng(0), "happy"))
    for folder, names in files.items():
        (root / folder / "happy").mkdir(parents=True)
        for name in names:
            face.save(root / folder / "happy" / name, format="PNG" if name.endswith(".png") else "WEBP")


def test_fer_folders_of_other_image_types_are_refused_not_read_as_empty(tmp_path):
    _fer_folders(tmp_path, {"train": ["a.webp", "b.webp"], "test": ["c.png"]})
    with pytest.raises(DataError, match=r"train: no face images read \(2 files that are not .* images left out \(.webp"):
        read_fer2013(tmp_path)


def test_fer_test_folder_of_public_test_files_alone_keeps_a_test_split(tmp_path):
    _fer_folders(tmp_path, {"train": [f"Training_{i}.png" for i in range(10)], "test": ["PublicTest_1.png", "PublicTest_2.png"]})
    records = read_fer2013(tmp_path)
    assert len(records.test) == 2 and len(records.val) == 1 and len(records.train) == 9  # was: test 0, val 2


def test_a_fer_csv_emotion_that_only_looks_like_a_digit_is_one_bad_row(tmp_path):
    pixels = " ".join(["80"] * 2304)
    (tmp_path / "fer2013.csv").write_text(f"emotion,pixels,Usage\n\u00b2,{pixels},Training\n3,{pixels},Training\n"
                                          f"3,{pixels},PublicTest\n3,{pixels},PrivateTest\n")
    with pytest.raises(DataError, match=r"fer2013.csv, row 2: unknown emotion '\u00b2'"):
        read_fer2013(tmp_path / "fer2013.csv")
