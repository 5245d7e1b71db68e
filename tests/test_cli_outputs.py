"""What the commands write: an output file is checked before the work it would hold (an existing file is replaced
only with --overwrite, a missing folder or a folder name is one line), real data is never written over, and a
batch CSV's own columns never pass for predictions."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from emoxformer.cli import main
from emoxformer.config import load_config
from emoxformer.data import sample_data
from emoxformer.data.sample_data import SAMPLE_MARKER, make_sample_data
from emoxformer.errors import ConfigError, DataError, InputError
from emoxformer.inference import Predictor
from emoxformer.labels import EMOTIONS
from emoxformer.model.config import EmoXFormerConfig
from emoxformer.model.modeling import EmoXFormer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    EmoXFormer(EmoXFormerConfig(hidden_size=16, builtin_width=16, fusion_layers=1, builtin_text_layers=1)).save_pretrained(directory)
    return directory


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("output, message", [("keep.json", "keep.json: exists; pass --overwrite to replace it, or --output another file"),
                                             ("nodir/m.json", "nodir/m.json: its folder does not exist"),
                                             ("adir", "adir: is a folder; --output takes a file name")])
def test_evaluate_checks_its_output_before_it_loads_or_evaluates(output, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.json").write_text("mine")
    (tmp_path / "adir").mkdir()
    # The model folder does not exist: the output is refused before anything is read.
    assert main(["evaluate", "--model", "no-model", "--manifest", "t.csv", "--output", output]) == 2
    assert _one_line_error(capsys).endswith(message)
    assert (tmp_path / "keep.json").read_text() == "mine"


def test_sample_data_is_never_written_over_real_data(tmp_path, capsys):
    real = tmp_path / "root" / "meld" / "data" / "train_sent_emo.csv"
    real.parent.mkdir(parents=True)
    real.write_text("my real MELD")
    assert main(["make-sample-data", str(tmp_path / "root")]) == 2
    assert "already holds meld/ without the SAMPLE_DATA.txt that make-sample-data leaves" in _one_line_error(capsys)
    assert real.read_text() == "my real MELD" and not (tmp_path / "root" / "ravdess").exists()
    # quickstart writes sample data where a dataset is missing: the same refusal, before any training
    assert main(["quickstart", "--data", str(tmp_path / "root"), "--out", str(tmp_path / "run")]) == 2
    assert real.read_text() == "my real MELD" and not (tmp_path / "run").exists()


def test_sample_data_may_be_written_again_over_sample_data(tmp_path, monkeypatch):
    make_sample_data(tmp_path / "sd", size="small", seed=0)
    assert (tmp_path / "sd" / SAMPLE_MARKER).is_file()
    meld = tmp_path / "sd" / "meld" / "data" / "train_sent_emo.csv"
    first = meld.read_text()
    meld.write_text("changed")
    for writer in ("write_ravdess", "write_fer2013", "write_av"):  # the slow ones: MELD's rows show the rewrite
        monkeypatch.setattr(sample_data, writer, lambda *args: None)
    make_sample_data(tmp_path / "sd", size="small", seed=0)
    assert meld.read_text() == first


def test_sample_data_into_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile.txt").write_text("x")
    assert main(["make-sample-data", str(tmp_path / "afile.txt")]) == 2
    assert _one_line_error(capsys).endswith("afile.txt: not a folder")
    with pytest.raises(DataError, match=r"afile.txt/below: cannot create the folder \(Not a directory\)"):
        make_sample_data(tmp_path / "afile.txt" / "below")


def test_a_labelled_batch_keeps_its_truth_apart_from_the_predictions(model_dir, tmp_path, capsys):
    source = tmp_path / "labelled.csv"
    source.write_text("Text , label ,notes\nI am so happy,happy,first\nthis is awful,sad,second\n")
    assert main(["predict", "--model", str(model_dir), "--batch", str(source), "--no-progress"]) == 0
    assert "columns label, notes written as input_label, input_notes" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "labelled_predictions.csv", keep_default_na=False)
    assert table["input_label"].tolist() == ["happy", "sad"] and table["input_notes"].tolist() == ["first", "second"]
    assert not any("." in column for column in table.columns)  # no label.1: one column a name
    # "Text " is the text column: every row was read and predicted from its text
    assert table["modalities"].tolist() == ["text", "text"] and table["label"].isin(EMOTIONS).all()
    predictor = Predictor.from_pretrained(model_dir, device="cpu")
    assert table["label"].tolist() == [predictor.predict(text=t).label for t in table["text"]]


@pytest.mark.parametrize("output, message", [("nodir/out.csv", "its folder does not exist"),
                                             ("adir", "is a folder; --output takes a file name")])
def test_a_batch_output_that_cannot_be_written_is_refused_before_predicting(output, message, model_dir, tmp_path,
                                                                            monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "rows.csv").write_text("text\nhello\n")
    predicted = []
    monkeypatch.setattr(Predictor, "predict", lambda self, **kwargs: predicted.append(kwargs))
    assert main(["predict", "--model", str(model_dir), "--batch", "rows.csv", "--output", output, "--overwrite"]) == 2
    assert _one_line_error(capsys).endswith(message) and predicted == []


def test_a_labelled_batch_with_an_input_label_column_keeps_every_column_apart(model_dir, tmp_path):
    (tmp_path / "both.csv").write_text("text,label,input_label\nhi,happy,x\n")
    assert main(["predict", "--model", str(model_dir), "--batch", str(tmp_path / "both.csv"), "--no-progress"]) == 0
    table = pd.read_csv(tmp_path / "both_predictions.csv", keep_default_na=False)
    assert (table["input_label"].tolist(), table["input_input_label"].tolist()) == (["x"], ["happy"])
    assert not any("." in column for column in table.columns)


def test_two_batch_columns_that_name_one_input_are_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "twice.csv").write_text("text,Text \nhello,world\n")
    assert main(["predict", "--model", str(model_dir), "--batch", str(tmp_path / "twice.csv")]) == 2
    assert _one_line_error(capsys).endswith("twice.csv: columns 'text' and 'Text ' both name the text column: keep one")


def test_a_batch_without_rows_is_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("text,audio\n")
    assert main(["predict", "--model", str(model_dir), "--batch", str(tmp_path / "empty.csv")]) == 2
    assert _one_line_error(capsys).endswith("empty.csv: holds a header and no rows to predict")


def test_timeline_and_plot_in_one_file_are_refused(tmp_path, capsys):
    same = str(tmp_path / "same.png")
    assert main(["predict", "--model", "no-model", "--video", "v.mp4", "--timeline", same, "--plot", same]) == 2
    assert "--timeline and --plot name the same file" in _one_line_error(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a CUDA GPU")
@pytest.mark.parametrize("device, message", [("cuda", "this machine has no CUDA GPU"), ("gpu", "not a device name")])
def test_a_device_this_machine_lacks_is_one_line(device, message, model_dir, capsys):
    with pytest.raises(InputError, match=message):
        Predictor.from_pretrained(model_dir, device=device)
    assert main(["predict", "--model", str(model_dir), "--text", "hi", "--device", device]) == 2
    assert message in _one_line_error(capsys)


@pytest.mark.parametrize("key", ["batch_size", "eval_batch_size"])
def test_batch_sizes_below_one_are_refused_when_the_config_loads(key):
    with pytest.raises(ConfigError, match=f"train.{key} must be 1 or more, got 0"):
        load_config("quickstart", [f"train.{key}=0"])


def test_evaluate_batch_size_below_one_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", "m", "--batch-size", "0"])
    assert exit_info.value.code == 2 and "must be 1 or more, got 0" in capsys.readouterr().err


def test_the_transcript_manifest_is_not_written_over_an_existing_file(tmp_path, capsys):
    (tmp_path / "tx.csv").write_text("mine")
    assert main(["data", "ravdess-transcripts", str(tmp_path / "ravdess"), "--out", str(tmp_path / "tx.csv")]) == 2
    assert _one_line_error(capsys).endswith("tx.csv: exists; pass --overwrite to replace it, or --out another file")
    assert (tmp_path / "tx.csv").read_text() == "mine"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a CUDA GPU")
def test_evaluate_on_a_gpu_this_machine_lacks_is_refused_not_run_on_the_cpu(capsys):
    assert main(["evaluate", "--model", "no-model", "--manifest", "t.csv", "--accelerator", "gpu"]) == 2
    assert "accelerator gpu: this machine has no CUDA GPU" in _one_line_error(capsys)
