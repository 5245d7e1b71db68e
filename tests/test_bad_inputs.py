"""The bad-input table: every case raises the exact error class with a message naming the offending file,
and the matching command line prints one line instead of a traceback."""
from __future__ import annotations

import inspect
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from emoxformer.cli import main
from emoxformer.data.audio_io import load_audio
from emoxformer.data.fer2013 import read_fer2013
from emoxformer.data.meld import MELD_FILES, read_meld
from emoxformer.data.ravdess import read_ravdess
from emoxformer.errors import DataError, InputError, ModelLoadError
from emoxformer.inference import Predictor
from emoxformer.labels import DATASET_NAMES, EMOTIONS
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer

MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
GOOD_MELD_ROW = '1,"Hi, there",Ross,joy,positive,0,0,1,1,"00:00:01,000","00:00:02,000"\n'
PIXELS = " ".join(["80"] * 2304)


# ----------------------------------------------------------------------------- builders: each returns (root, offending file)
def meld_with(train_text: str, drop_dev: bool = False):
    def build(tmp: Path):
        data = tmp / "meld" / "data"
        data.mkdir(parents=True)
        for split, name in MELD_FILES.items():
            if not (drop_dev and split == "val"):
                (data / name).write_text(train_text if split == "train" else MELD_HEADER + GOOD_MELD_ROW)
        return tmp, data / (MELD_FILES["val"] if drop_dev else MELD_FILES["train"])
    return build


def ravdess_with(name: str, write):
    def build(tmp: Path):
        actor = tmp / "ravdess" / f"Actor_{name[-6:-4]}"
        actor.mkdir(parents=True)
        write(actor / name)
        return tmp, actor / name
    return build


def _wav(path, samples=np.zeros(4800, np.float32), rate=48_000, subtype="PCM_16"):
    sf.write(path, samples, rate, subtype=subtype)


def _truncated(path):
    _wav(path, np.random.default_rng(0).normal(0, 0.1, 48_000).astype(np.float32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def fer_csv_with(row: str, header: str = "emotion,pixels,Usage"):
    def build(tmp: Path):
        path = tmp / "fer2013" / "fer2013.csv"
        path.parent.mkdir(parents=True)
        path.write_text(f"{header}\n3,{PIXELS},Training\n{row}\n")
        return tmp, path
    return build


def fer_folder_with(class_name: str, content: bytes | None = None):
    def build(tmp: Path):
        for split in ("train", "test"):
            (tmp / "fer2013" / split / "happy").mkdir(parents=True)
            Image.fromarray(np.zeros((48, 48), np.uint8)).save(tmp / "fer2013" / split / "happy" / "Training_1.png")
        path = tmp / "fer2013" / "train" / class_name / "Training_2.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if content is not None else (tmp / "fer2013" / "train" / "happy" / "Training_1.png").read_bytes())
        return tmp, (path.parent if content is None else path)
    return build


READER_CASES = {
    "meld missing column": (meld_with("Utterance,Speaker\nhi,Ross\n"), read_meld, "meld", DataError, "missing column"),
    "meld unknown label": (meld_with(MELD_HEADER + GOOD_MELD_ROW.replace("joy", "boredom")), read_meld, "meld", DataError, "row 2: unknown emotion"),
    "meld empty utterance": (meld_with(MELD_HEADER + GOOD_MELD_ROW.replace('"Hi, there"', '""')), read_meld, "meld", DataError, "empty utterance"),
    "meld whitespace utterance": (meld_with(MELD_HEADER + GOOD_MELD_ROW.replace('"Hi, there"', '"  \n "')), read_meld, "meld", DataError, "empty utterance"),
    "meld duplicated id": (meld_with(MELD_HEADER + GOOD_MELD_ROW + GOOD_MELD_ROW), read_meld, "meld", DataError, "row 3: duplicate utterance id"),
    "meld non-integer id": (meld_with(MELD_HEADER + GOOD_MELD_ROW.replace(",0,0,", ",x,0,")), read_meld, "meld", DataError, "must be integers"),
    "meld missing split file": (meld_with(MELD_HEADER + GOOD_MELD_ROW, drop_dev=True), read_meld, "meld", DataError, "file not found"),
    "meld broken quoting": (meld_with(MELD_HEADER + '1,"never closed,Ross,joy\n'), read_meld, "meld", DataError, "not a readable CSV"),
    "ravdess truncated wav": (ravdess_with("03-01-01-01-01-01-01.wav", _truncated), read_ravdess, "ravdess", DataError, "truncated WAV"),
    "ravdess zero-length wav": (ravdess_with("03-01-01-01-01-01-01.wav", lambda p: _wav(p, np.zeros(0, np.float32))), read_ravdess, "ravdess", DataError, "no samples"),
    "ravdess garbage wav": (ravdess_with("03-01-01-01-01-01-01.wav", lambda p: p.write_bytes(b"this is not a wav file at all")), read_ravdess, "ravdess", DataError, "unreadable audio"),
    "ravdess emotion outside taxonomy": (ravdess_with("03-01-09-01-01-01-01.wav", _wav), read_ravdess, "ravdess", DataError, "emotion_code field 09"),
    "ravdess malformed name": (ravdess_with("03-01-01-01-01-xx-01.wav", _wav), read_ravdess, "ravdess", DataError, "not a RAVDESS name"),
    "ravdess actor not its folder": (ravdess_with("03-01-01-01-01-01-01.wav", lambda p: _wav(p.with_name("03-01-01-01-01-01-02.wav"))), read_ravdess, "ravdess", DataError, "does not match folder"),
    "fer pixel string too short": (fer_csv_with("3,1 2 3,Training"), read_fer2013, "fer2013", DataError, "row 3: pixel string has 3 values"),
    "fer non-numeric pixels": (fer_csv_with(f"3,{PIXELS[:-2]}ab,Training"), read_fer2013, "fer2013", DataError, "row 3: pixel string holds non-numeric"),
    "fer pixel above 255": (fer_csv_with(f"3,256 {PIXELS[3:]},Training"), read_fer2013, "fer2013", DataError, "row 3: pixel value above 255"),
    "fer label outside taxonomy": (fer_csv_with(f"7,{PIXELS},Training"), read_fer2013, "fer2013", DataError, "row 3: unknown emotion '7'"),
    "fer unknown usage": (fer_csv_with(f"3,{PIXELS},Validation"), read_fer2013, "fer2013", DataError, "row 3: unknown Usage"),
    "fer missing column": (fer_csv_with(f"3,{PIXELS}", header="emotion,pixels"), read_fer2013, "fer2013", DataError, "missing column"),
    "fer unknown class folder": (fer_folder_with("bored"), read_fer2013, "fer2013", DataError, "unknown class folder"),
    "fer unreadable image": (fer_folder_with("happy", b"not a png"), read_fer2013, "fer2013", DataError, "unreadable image"),
}


@pytest.mark.parametrize("case", sorted(READER_CASES))
def test_reader_rejects_bad_data(case, tmp_path, capsys):
    build, reader, dataset, error, message = READER_CASES[case]
    root, offending = build(tmp_path)
    if case == "ravdess actor not its folder":
        offending = offending.with_name("03-01-01-01-01-01-02.wav")
    with pytest.raises(error) as info:
        reader(root / dataset)
    assert type(info.value) is error
    assert str(offending) in str(info.value) and message in str(info.value)
    assert main(["data", "summary", str(root), "--json"]) == 2  # the only dataset is broken
    assert str(offending) in capsys.readouterr().out  # reported, not a traceback


SUMMARY_CASES = {  # one dataset broken, the other two fine: what `train` stops on, `data summary` must not pass
    "meld": (meld_with(MELD_HEADER.replace("Utterance,", "") + GOOD_MELD_ROW.replace('"Hi, there",', "")),
             "missing column(s) Utterance"),
    "ravdess": (ravdess_with("03-01-01-01-01-01-01.wav", _truncated), "truncated WAV"),
    "fer2013": (fer_csv_with("3,1 2 3,Training"), "row 3: pixel string has 3 values, expected 2304"),
}


@pytest.mark.parametrize("broken", sorted(SUMMARY_CASES))
def test_data_summary_exits_2_when_any_dataset_is_broken(broken, sample_root, tmp_path, capsys):
    build, problem = SUMMARY_CASES[broken]
    root, offending = build(tmp_path)
    assert main(["data", "summary", str(sample_root), f"--{broken}", str(root / broken)]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert f"{broken}: MISSING OR BROKEN — {offending}" in captured.out and problem in captured.out
    assert {"meld", "ravdess", "fer2013"} - {broken} <= set(lines)  # the good datasets are still summarised
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emoxformer: error: 1 of 3 datasets") and broken in err[0]
    assert main(["data", "summary", str(sample_root), f"--{broken}", str(root / broken), "--json"]) == 2


def test_data_summary_reports_every_broken_dataset(sample_root, tmp_path, capsys):
    args = ["data", "summary", str(sample_root)]
    for name, (build, _) in SUMMARY_CASES.items():
        root, _ = build(tmp_path / name)
        args += [f"--{name}", str(root / name)]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert all(problem in captured.out for _, problem in SUMMARY_CASES.values())
    assert "3 of 3 datasets missing or broken: meld, ravdess, fer2013" in captured.err


def test_data_summary_of_good_data_exits_0(sample_root, capsys):
    assert main(["data", "summary", str(sample_root)]) == 0
    assert "MISSING OR BROKEN" not in capsys.readouterr().out


def test_nan_audio_is_refused_when_decoded(tmp_path):
    path = tmp_path / "nan.wav"
    _wav(path, np.array([0.1, np.nan, 0.2] * 2000, np.float32), subtype="FLOAT")
    with pytest.raises(DataError, match="NaN") as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_other_rates_and_channel_counts_are_converted_not_refused(tmp_path):
    tone = np.sin(np.arange(22_050) * 2 * np.pi * 220 / 22_050).astype(np.float32) * 0.3
    _wav(tmp_path / "a.wav", np.stack([tone, tone], axis=1), rate=22_050)
    wave = load_audio(tmp_path / "a.wav")
    assert wave.ndim == 1 and abs(len(wave) - 16_000) <= 1


# ----------------------------------------------------------------------------- predictor and model loading
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1)).save_pretrained(directory)
    return directory


# Each builder returns (predict() keyword arguments, command-line arguments, what the one-line error must name).
def _blank_text(path):
    return {"text": " \t "}, ["--text", " \t "], "text is empty"


def _silent(path):
    _wav(path, np.zeros(16_000, np.float32), rate=16_000)
    return {"audio": path}, ["--audio", str(path)], str(path)


def _no_face(path):
    path = path.with_suffix(".png")
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(path)
    return {"image": path}, ["--image", str(path)], str(path)


def _garbage_image(path):
    path = path.with_suffix(".jpg")
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    return {"image": path}, ["--image", str(path)], str(path)


def _garbage_audio(path):
    path = path.with_suffix(".mp3")
    path.write_bytes(b"ID3 not audio")
    return {"audio": path}, ["--audio", str(path)], str(path)


def _nan_audio(path):
    _wav(path, np.array([0.1, np.nan] * 8000, np.float32), rate=16_000, subtype="FLOAT")
    return {"audio": path}, ["--audio", str(path)], str(path)


def _missing_video(path):
    path = path.with_suffix(".mp4")
    return {"video": path}, ["--video", str(path)], str(path)


PREDICT_CASES = {"blank text": _blank_text, "silent audio": _silent, "image without a face": _no_face, "unreadable image": _garbage_image,
                 "unreadable audio": _garbage_audio, "NaN audio": _nan_audio, "missing video": _missing_video}


@pytest.mark.parametrize("text", ["caf\udce9 au lait", "half a pair \ud83d here"])
def test_lone_surrogates_in_text_are_replaced_not_a_traceback(text, model_dir, capsys):
    """Bytes that are not UTF-8 on a command line (Python's surrogateescape) or a JSON "\\ud83d" escape."""
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    replaced = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    assert predictor.predict(text=text).probabilities == predictor.predict(text=replaced).probabilities
    for extra in ([], ["--json"]):
        assert main(["predict", "--model", str(model_dir), "--text", text, *extra]) == 0
        assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predictor_rejects_bad_input(case, model_dir, tmp_path, capsys):
    kwargs, cli, named = PREDICT_CASES[case](tmp_path / "input.wav")
    with pytest.raises(InputError) as info:
        Predictor.from_pretrained(model_dir, device="cpu").predict(**kwargs)
    assert type(info.value) is InputError and named in str(info.value)
    assert main(["predict", "--model", str(model_dir), *cli]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0]


def _copy_model(model_dir, tmp_path):
    target = tmp_path / "copy"
    target.mkdir()
    for file in model_dir.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    return target


def _edit_config(directory, **values):
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, **values}))


MODEL_CASES = {
    "pickle file beside the weights": (lambda d: (d / "pytorch_model.bin").write_bytes(pickle.dumps({"x": 1})), "pytorch_model.bin", "pickle"),
    "config is not JSON": (lambda d: (d / "config.json").write_text("{not json"), "config.json", "not an EmoXFormer config"),
    "config has foreign keys": (lambda d: (d / "config.json").write_text('{"architectures": ["Bert"]}'), "config.json", "not an EmoXFormer config"),
    "temperature is zero": (lambda d: _edit_config(d, temperature=0), "config.json", "temperature must be a positive number"),
    "a modality's temperature is negative": (lambda d: _edit_config(d, modality_temperatures={"text": -1.0}), "config.json",
                                             "modality_temperatures.text must be a positive number"),
    "labels reordered": (lambda d: _edit_config(d, labels=list(reversed(EMOTIONS))), "config.json",
                         "labels must be the 7 emotions in the order anger, disgust"),
    "weights are not safetensors": (lambda d: (d / "model.safetensors").write_bytes(b"\x80\x04junk"), "model.safetensors", "not a readable safetensors"),
    "weights missing": (lambda d: (d / "model.safetensors").unlink(), "model.safetensors", "missing"),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_model_loading_rejects_bad_folders(case, model_dir, tmp_path, capsys):
    corrupt, name, message = MODEL_CASES[case]
    directory = _copy_model(model_dir, tmp_path)
    corrupt(directory)
    with pytest.raises(ModelLoadError) as info:
        EmoXFormer.from_pretrained(directory)
    assert type(info.value) is ModelLoadError and str(directory) in str(info.value) and message in str(info.value)
    assert name in str(info.value)
    assert main(["predict", "--model", str(directory), "--text", "hello"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


PREDICTOR_INPUTS = ("text", "audio", "image", "video")  # what a user hands to predict()


def test_bad_input_table_covers_every_entry_point(model_dir, tmp_path):
    """Every dataset reader (FER2013 in both layouts), every predictor input and every file of a saved model."""
    assert {dataset for _, _, dataset, _, _ in READER_CASES.values()} == set(DATASET_NAMES)
    fer_layouts = set()
    for number, (build, _, dataset, _, _) in enumerate(READER_CASES.values()):
        if dataset == "fer2013":
            root, _ = build(tmp_path / str(number))
            fer_layouts.add("csv" if (root / "fer2013" / "fer2013.csv").is_file() else "folders")
    assert fer_layouts == {"csv", "folders"}
    assert set(PREDICTOR_INPUTS) <= set(inspect.signature(Predictor.predict).parameters)
    covered_inputs = {kind for build in PREDICT_CASES.values() for kind in build(tmp_path / "input.wav")[0]}
    assert covered_inputs == set(PREDICTOR_INPUTS)
    corrupted_files = {name for _, name, _ in MODEL_CASES.values()}
    assert {path.name for path in model_dir.iterdir()} <= corrupted_files


class _Exploit:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_crafted_pickle_is_refused_without_running(model_dir, tmp_path):
    marker = tmp_path / "pwned"
    directory = _copy_model(model_dir, tmp_path)
    payload = pickle.dumps(_Exploit(marker))
    (directory / "pytorch_model.bin").write_bytes(payload)
    with pytest.raises(ModelLoadError, match="pickle"):
        EmoXFormer.from_pretrained(directory)
    (directory / "pytorch_model.bin").unlink()
    (directory / "model.safetensors").write_bytes(payload)  # a pickle disguised as safetensors
    with pytest.raises(ModelLoadError, match="not a readable safetensors"):
        EmoXFormer.from_pretrained(directory)
    assert not marker.exists()
    pickle.loads(payload)  # the payload is live: loading it the unsafe way does run code
    assert marker.exists()
