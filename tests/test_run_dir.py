"""A run folder holds one run: a non-empty --out is refused unless --resume or --overwrite (quickstart replaces its
own earlier run; ablate checks every setting's folder before training)."""
import json

import yaml

from emoxformer.cli import main

TINY = ["model.hidden_size=32", "model.builtin_width=32", "model.fusion_layers=1", "model.builtin_text_layers=1",
        "data.samples_per_epoch=48", "train.batch_size=16", "train.stage1.epochs=1", "train.stage2.epochs=0"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("emoxformer: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def _saved_hidden_size(run) -> int:
    return yaml.safe_load((run / "config.yaml").read_text())["model"]["hidden_size"]


def test_train_refuses_a_used_run_folder_unless_overwrite(sample_root, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["train", "--data", str(sample_root), "--out", str(run), "--no-progress", *TINY]
    assert main([*common, "data.datasets=[meld,fer2013]"]) == 0
    assert (run / "confusion_stage1_meld.png").is_file()
    (run / "notes.txt").write_text("mine")
    capsys.readouterr()

    assert main([*common, "data.datasets=[fer2013]", "model.hidden_size=16"]) == 2
    err = _one_line_error(capsys)
    assert str(run) in err and "not empty" in err and "--overwrite" in err and "--resume" in err
    assert _saved_hidden_size(run) == 32  # the earlier run is untouched

    assert main([*common, "data.datasets=[fer2013]", "model.hidden_size=16", "--overwrite"]) == 0
    assert "replacing the earlier run" in capsys.readouterr().out
    assert _saved_hidden_size(run) == 16  # evaluate and --resume read the new run's config
    assert not (run / "confusion_stage1_meld.png").exists()  # nothing of the earlier run is left to mix in
    assert set(json.loads((run / "metrics.json").read_text())["stage1"]) == {"fer2013"}
    assert (run / "notes.txt").read_text() == "mine"  # files that are not the run's are left alone


def test_train_takes_resume_or_overwrite_not_both(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("{}\n")
    assert main(["train", "--resume", str(tmp_path), "--overwrite"]) == 2
    assert "pass one of them" in _one_line_error(capsys)


def test_quickstart_run_twice_replaces_its_own_run(sample_root, tmp_path, capsys):
    run = tmp_path / "quickstart"
    common = ["quickstart", "--data", str(sample_root), "--out", str(run), "--no-progress", *TINY, "data.datasets=[fer2013]"]
    assert main(common) == 0
    capsys.readouterr()
    assert main([*common, "model.hidden_size=16"]) == 0
    assert f"replacing the earlier run in {run}" in capsys.readouterr().out
    assert _saved_hidden_size(run) == 16


def test_quickstart_refuses_a_folder_that_is_not_its_run(sample_root, tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("keep me")
    assert main(["quickstart", "--data", str(sample_root), "--out", str(tmp_path), "--no-progress", *TINY]) == 2
    assert "--overwrite" in _one_line_error(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_ablate_checks_every_setting_folder_before_training(sample_root, tmp_path, capsys):
    out = tmp_path / "ablate"
    used = out / "modality_dropout=0.3"
    used.mkdir(parents=True)
    (used / "config.yaml").write_text("{}\n")
    command = ["ablate", "--data", str(sample_root), "--out", str(out), "--no-progress", "--grid", "modality_dropout=0,0.3",
               "--set", *TINY, "data.datasets=[meld,fer2013]"]
    assert main(command) == 2
    assert str(used) in _one_line_error(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["modality_dropout=0.3"]  # refused before the first setting trained
    assert main([*command, "--overwrite"]) == 0
    assert (out / "ablation.csv").is_file()
    assert yaml.safe_load((used / "config.yaml").read_text())["data"]["modality_dropout"] == 0.3


def test_overwrite_refuses_a_folder_that_holds_no_run(sample_root, tmp_path, capsys):
    """--overwrite replaces a run; a folder of other things that happen to be named like run files (logs/, best/,
    config.yaml among them is not) is left alone and refused, train, quickstart and ablate alike."""
    folder = tmp_path / "thesis"
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "week1.txt").write_text("notes")
    (folder / "best").mkdir()
    (folder / "training_curves.png").write_bytes(b"mine")
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    commands = [
        ["train", "--data", str(sample_root), "--out", str(folder), "--no-progress", "--overwrite", *TINY],
        ["quickstart", "--data", str(sample_root), "--out", str(folder), "--no-progress", "--overwrite", *TINY],
        ["ablate", "--data", str(sample_root), "--out", str(tmp_path), "--no-progress", "--overwrite",
         "--grid", "data.datasets=[fer2013]", "--set", *TINY],
    ]
    (tmp_path / "datasets=[fer2013]").mkdir()
    (tmp_path / "datasets=[fer2013]" / "logs").mkdir()
    for command in commands:
        assert main(command) == 2, command[0]
        assert "not a run directory" in _one_line_error(capsys)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    assert (tmp_path / "datasets=[fer2013]" / "logs").is_dir()
