"""Paths given as command-line options are taken verbatim (only KEY=VALUE overrides are YAML), and
`evaluate --model RUN/best` reads its run's own data root."""
import json

import pytest

from emoxformer.cli import main

ODD_NAMES = ["emotion #2", "2024", "no", "a: b", "3e-3", "[x]"]


class Stop(Exception):
    pass


@pytest.fixture()
def given(monkeypatch):
    """The configs training would have started with (the trainer stops before it trains)."""
    import emoxformer.training.run as run

    configs = []

    class Recorder:
        def __init__(self, config, out, progress=True):
            configs.append(config)

        def run(self, *args, **kwargs):
            raise Stop

    import emoxformer.training.ablation as ablation

    monkeypatch.setattr(run, "TwoStageTrainer", Recorder)
    monkeypatch.setattr(ablation, "TwoStageTrainer", Recorder)  # bound at import, whichever test imported it first
    return configs


@pytest.mark.parametrize("name", ODD_NAMES)
def test_train_takes_data_paths_verbatim(tmp_path, monkeypatch, given, name):
    monkeypatch.chdir(tmp_path)
    meld = tmp_path / f"meld {name}"
    with pytest.raises(Stop):  # a folder named 2024 or no, relative to here: not a number, not False
        main(["train", "--data", name, "--meld", str(meld), "--fer2013", f"faces {name}", "--out", "run", "--no-progress"])
    assert given[-1].data.root == name and given[-1].data.meld == str(meld) and given[-1].data.fer2013 == f"faces {name}"


def test_results_and_ablate_take_the_data_root_verbatim(tmp_path, given):
    root = str(tmp_path / "emotion #2")
    with pytest.raises(Stop):
        main(["results", "--config", "quickstart", "--data", root, "--out", str(tmp_path / "r"), "--seeds", "1,",
              "--configurations", "meld", "--no-progress"])
    with pytest.raises(Stop):
        main(["ablate", "--data", root, "--out", str(tmp_path / "a"), "--grid", "modality_dropout=0", "--no-progress"])
    assert [config.data.root for config in given] == [root, root]


def test_set_overrides_stay_yaml(tmp_path, given):
    with pytest.raises(Stop):
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--set", "train.seed=7",
              "data.datasets=[meld]"])
    assert given[-1].train.seed == 7 and given[-1].data.datasets == ["meld"]


def test_evaluate_a_runs_model_without_data_reads_the_runs_data_root(sample_root, tmp_path, capsys):
    from emoxformer.config import load_config, save_config
    from emoxformer.model.config import EmoXFormerConfig
    from emoxformer.model.modeling import EmoXFormer

    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config("quickstart", [f"data.root={sample_root}", "data.datasets=[fer2013]"]), run / "config.yaml")
    EmoXFormer.from_config(EmoXFormerConfig(hidden_size=32, builtin_width=32, fusion_layers=1,
                                            modalities=["vision"])).save_pretrained(run / "best")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(run / "best"), "--accelerator", "cpu", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics) == ["fer2013"] and metrics["fer2013"]["n"] > 0
