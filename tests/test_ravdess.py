import numpy as np
import pytest
import soundfile as sf

from emoxformer.data.audio_io import load_audio
from emoxformer.data.ravdess import EMOBOX_FOLDS, parse_ravdess_name, read_ravdess, split_by_actor
from emoxformer.errors import ConfigError, DataError
from emoxformer.labels import LABEL_TO_INDEX


def test_real_excerpts_parse_all_fields(real_samples):
    splits = read_ravdess(real_samples / "ravdess", val_actors=(19,), test_actors=(20,))
    assert len(splits.train) == 9 and len(splits.test) == 9 and not splits.val
    record = next(r for r in splits.train if r.path.name == "03-01-02-01-01-02-01.wav")
    assert (record.modality, record.vocal_channel, record.emotion_code, record.intensity,
            record.statement, record.repetition, record.actor) == (3, 1, 2, 1, 1, 2, 1)
    assert record.label == LABEL_TO_INDEX["neutral"]  # calm -> neutral


def test_real_stereo_48k_file_is_mixed_down_and_resampled(real_samples):
    path = real_samples / "ravdess" / "Actor_01" / "03-01-02-01-01-02-01.wav"
    raw, rate = sf.read(path, always_2d=True)
    assert raw.shape[1] == 2 and rate == 48_000
    wave = load_audio(path)
    assert wave.ndim == 1 and wave.dtype == np.float32
    assert abs(len(wave) - raw.shape[0] / 3) <= 1
    assert np.isfinite(wave).all()


def test_actor_split_keeps_each_actor_in_one_split(sample_root):
    splits = read_ravdess(sample_root / "ravdess")
    actors = {split: {r.actor for r in splits[split]} for split in ("train", "val", "test")}
    assert actors["train"] == set(range(1, 19))
    assert actors["val"] == {19, 20}
    assert actors["test"] == {21, 22, 23, 24}


def test_emobox_folds_are_disjoint_and_cover_all_actors(sample_root):
    assert sorted(a for fold in EMOBOX_FOLDS for a in fold) == list(range(1, 25))
    records = read_ravdess(sample_root / "ravdess").train
    splits = split_by_actor(records, val_actors=(), test_actors=EMOBOX_FOLDS[0])
    assert not {r.actor for r in splits.train} & set(EMOBOX_FOLDS[0])


def test_random_split_only_when_asked(sample_root):
    splits = read_ravdess(sample_root / "ravdess", split="random", seed=3)
    train_actors = {r.actor for r in splits.train}
    assert {r.actor for r in splits.test} & train_actors  # the leak the default avoids
    with pytest.raises(ConfigError, match="unknown RAVDESS split"):
        read_ravdess(sample_root / "ravdess", split="files")


def test_song_files_are_excluded_by_default(tmp_path):
    actor = tmp_path / "Actor_03"
    actor.mkdir()
    sf.write(actor / "03-01-03-01-01-01-03.wav", np.zeros(4800, np.float32), 48_000)
    sf.write(actor / "03-02-03-01-01-01-03.wav", np.zeros(4800, np.float32), 48_000)
    records = read_ravdess(tmp_path, val_actors=(), test_actors=()).train
    assert [r.vocal_channel for r in records] == [1]
    with_song = read_ravdess(tmp_path, val_actors=(), test_actors=(), include_song=True).train
    assert len(with_song) == 2


def test_each_clip_is_listed_once_whatever_the_case_of_its_suffix(tmp_path, monkeypatch):
    """On a case-insensitive file system (macOS, Windows) *.wav and *.WAV match the same files."""
    import fnmatch
    from pathlib import Path

    actor = tmp_path / "Actor_03"
    actor.mkdir()
    sf.write(actor / "03-01-03-01-01-01-03.wav", np.zeros(4800, np.float32), 48_000, format="WAV")
    sf.write(actor / "03-01-04-01-01-01-03.WAV", np.zeros(4800, np.float32), 48_000, format="WAV")
    monkeypatch.setattr(Path, "glob", lambda self, pattern, **kw: sorted(
        p for p in self.iterdir() if fnmatch.fnmatch(p.name.lower(), pattern.lower())))  # as such a system globs
    records = read_ravdess(tmp_path, val_actors=(), test_actors=()).train
    assert sorted(r.path.name for r in records) == ["03-01-03-01-01-01-03.wav", "03-01-04-01-01-01-03.WAV"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("03-01-09-01-01-01-03.wav", "emotion_code field 09 outside 01..08"),
        ("03-01-01-01-01-01.wav", "not a RAVDESS name"),
        ("03-01-01-01-01-01-04.wav", "does not match folder Actor_03"),
    ],
)
def test_bad_names_name_the_file(tmp_path, name, message):
    actor = tmp_path / "Actor_03"
    actor.mkdir()
    sf.write(actor / name, np.zeros(4800, np.float32), 48_000)
    with pytest.raises(DataError) as info:
        read_ravdess(tmp_path)
    assert name in str(info.value) and message in str(info.value)


def test_unreadable_and_empty_wav(tmp_path):
    actor = tmp_path / "Actor_03"
    actor.mkdir()
    (actor / "03-01-01-01-01-01-03.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    with pytest.raises(DataError, match="unreadable audio"):
        read_ravdess(tmp_path)
    with pytest.raises(DataError, match="no RAVDESS speech clips .* to read; 1 bad files skipped"):  # skipped, none left
        read_ravdess(tmp_path, skip_bad=True)
    (actor / "03-01-01-01-01-01-03.wav").unlink()
    sf.write(actor / "03-01-01-01-01-01-03.wav", np.zeros(0, np.float32), 48_000)
    with pytest.raises(DataError, match="no samples"):
        read_ravdess(tmp_path)


def test_parse_name_rejects_out_of_range_actor(tmp_path):
    with pytest.raises(DataError, match="actor field 25"):
        parse_ravdess_name(tmp_path / "03-01-01-01-01-01-25.wav")


def test_load_audio_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.1], np.float32), 16_000, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN"):
        load_audio(path)


def test_decoded_caches_are_reused_and_invalidated(tmp_path, monkeypatch):
    import os

    from emoxformer.data.modalities.audio import AudioStore
    from emoxformer.data.fer2013 import read_fer_csv
    from emoxformer.data.ravdess import read_ravdess_files
    from emoxformer.data.sample_data import make_sample_data

    monkeypatch.setenv("EMOXFORMER_CACHE", str(tmp_path / "cache"))
    root = make_sample_data(tmp_path / "data", seed=4)
    csv = root / "fer2013" / "fer2013.csv"
    first = read_fer_csv(csv)
    assert len(list((tmp_path / "cache" / "fer2013").glob("*.npz"))) == 1
    calls = []
    monkeypatch.setattr("emoxformer.data.fer2013.decode_pixel_strings", lambda *a: calls.append(1))
    again = read_fer_csv(csv)  # served from the cache: the decoder is not called
    assert not calls and all(np.array_equal(a.pixels, b.pixels) for a, b in zip(first.train, again.train))
    lines = csv.read_text().splitlines()
    lines[1] = "3," + " ".join(["0"] * 2304) + ",Training"
    csv.write_text("\n".join(lines) + "\n")
    os.utime(csv, ns=(1, 1))  # a changed file (size or mtime) must not read the stale cache
    monkeypatch.undo()
    monkeypatch.setenv("EMOXFORMER_CACHE", str(tmp_path / "cache"))
    changed = read_fer_csv(csv)
    assert (changed.train[0].pixels == 0).all() and not (first.train[0].pixels == 0).all()

    records, _ = read_ravdess_files(root / "ravdess")
    store = AudioStore(records[:10], 16_000, progress=False)
    assert len(list((tmp_path / "cache" / "audio").glob("*.npz"))) == 1
    monkeypatch.setattr("emoxformer.data.modalities.audio.load_audio", lambda *a: calls.append(1))
    cached = AudioStore(records[:10], 16_000, progress=False)
    assert not calls and all(np.array_equal(store[r.id], cached[r.id]) for r in records[:10])
    assert np.array_equal(cached[records[3].id], load_audio(records[3].path))


def test_transcript_manifest_reads_back_as_text_and_speech_pairs_of_the_same_split(sample_root, tmp_path):
    from types import SimpleNamespace

    from emoxformer.cli import main
    from emoxformer.data.multimodal import read_multimodal_manifest
    from emoxformer.data.ravdess import STATEMENTS

    out = tmp_path / "manifests" / "ravdess_tx.csv"
    assert main(["data", "ravdess-transcripts", str(sample_root / "ravdess"), "--out", str(out)]) == 0
    assert not (out.parent / "ravdess").exists()  # paths lead back to the clips, nothing is copied
    clips = read_ravdess(sample_root / "ravdess")
    rows = read_multimodal_manifest(SimpleNamespace(name="ravdess_tx", manifest=str(out), root=None, label_map=None,
                                                    drop_unmapped=False, val_fraction=0.1), every_row=False)
    for split in ("train", "val", "test"):
        expected = {r.path.resolve(): (r.label, STATEMENTS[r.statement]) for r in clips[split]}
        got = {r.audio.resolve(): (r.label, r.text) for r in rows[split]}
        assert got == expected and len(rows[split]) == len(clips[split])
    assert {r.speaker for r in rows.test} == {"actor_21", "actor_22", "actor_23", "actor_24"}


def test_transcript_manifest_refuses_bad_actor_lists_in_one_line(sample_root, tmp_path, capsys):
    from emoxformer.cli import main

    assert main(["data", "ravdess-transcripts", str(sample_root / "ravdess"), "--out", str(tmp_path / "m.csv"),
                 "--test-actors", "21,x"]) == 2
    assert "--test-actors '21,x'" in capsys.readouterr().err and not (tmp_path / "m.csv").exists()
