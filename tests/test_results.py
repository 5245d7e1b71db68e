"""The results command: per-seed runs kept and skipped, mean ± sd per dataset, EmoBox folds, the report."""
import json

import pytest

from emoxformer.cli import main
from emoxformer.config import save_config
from emoxformer.errors import ConfigError
from emoxformer.training.resume import recorded_as_training_would
from emoxformer.data.ravdess import EMOBOX_FOLDS
from emoxformer.training.result import TrainingResult
from emoxformer.training.results import (ResultsPlan, aggregate, choose_configurations, results_command, run_results,
                                         to_markdown)


class FakeTrainer:
    """Stands in for TwoStageTrainer: records its runs and returns test metrics that depend on the seed."""

    runs: list = []

    def __init__(self, config, out, progress=True):
        self.config, self.out = config, out

    def run(self, resume=False):
        seed, datasets = self.config.train.seed, self.config.data.datasets
        FakeTrainer.runs.append((tuple(datasets), seed, self.config.data.ravdess_fold, resume))
        self.out.mkdir(parents=True, exist_ok=True)
        if not resume:  # as TwoStageTrainer writes it: the config with what training records from the data
            save_config(recorded_as_training_would(self.config), self.out / "config.yaml")
        log = self.out / "logs" / "stage2"
        log.mkdir(parents=True)
        (log / "metrics.csv").write_text(
            "epoch,val/score," + ",".join(f"val/{n}/accuracy" for n in datasets) + "\n"
            "0,0.2," + ",".join("0.25" for _ in datasets) + "\n"
            "1,0.4," + ",".join("0.5" for _ in datasets) + "\n")
        value = 0.5 + 0.1 * (seed - 42)
        test = {n: {"accuracy": value, "weighted_f1": value - 0.05, "macro_f1": 0.3, "uar": 0.35, "n": 10} for n in datasets}
        paired = {"t+a+v": {"n": 5, "accuracy": value, "weighted_f1": value, "macro_f1": value, "uar": value}}
        return TrainingResult(
            run_dir=self.out, model_dir=self.out / "best", best_stage="stage2", selection={}, temperature=1.0,
            metrics={"stage1": {n: dict(m, accuracy=0.1) for n, m in test.items()}, "stage2": test},
            paired_test=paired if len(datasets) > 1 else None, test_predictions={}, dataset_names=tuple(datasets))


@pytest.fixture()
def fake_trainer(monkeypatch):
    import emoxformer.training.run as run_module

    FakeTrainer.runs = []
    monkeypatch.setattr(run_module, "TwoStageTrainer", FakeTrainer)
    return FakeTrainer


def plan(tmp_path, names, seeds, cv=False):
    return ResultsPlan(config="quickstart", data=str(tmp_path / "data"), seeds=seeds, out=tmp_path / "results",
                       configurations=choose_configurations(names, cv))


def test_each_seed_once_and_finished_seeds_are_skipped(tmp_path, fake_trainer):
    summary = run_results(plan(tmp_path, ["meld", "joint"], [42]), log=lambda line: None)
    assert fake_trainer.runs == [(("meld",), 42, None, False), (("meld", "ravdess", "fer2013"), 42, None, False)]
    assert summary["missing"] == {}
    fake_trainer.runs.clear()
    summary = run_results(plan(tmp_path, ["meld", "joint"], [42, 43]), log=lambda line: None)  # a second sitting
    assert [(r[0][0], r[1]) for r in fake_trainer.runs] == [("meld", 43), ("meld", 43)]
    meld = summary["configurations"]["meld"]["datasets"]["meld"]["accuracy"]
    assert meld["n"] == 2 and meld["mean"] == pytest.approx(0.55) and meld["sd"] == pytest.approx(0.0707107, rel=1e-4)
    result = json.loads((tmp_path / "results" / "runs" / "meld" / "seed43" / "result.json").read_text())
    assert result["test"]["meld"]["accuracy"] == pytest.approx(0.6)  # the best stage's, not stage 1's
    assert result["validation"] == {"meld": {"accuracy": 0.5}}
    assert result["command"].startswith("emoxformer train --config quickstart --data ") and "train.seed=43" in result["command"]
    assert result["commit"] and result["machine"]["cpus"] >= 1 and result["wall_s"] >= 0


def test_an_interrupted_run_is_continued(tmp_path, fake_trainer):
    the_plan = plan(tmp_path, ["ravdess"], [42])
    run_dir = the_plan.run_dir(the_plan.configurations[0], 42)
    run_dir.mkdir(parents=True)
    trained = recorded_as_training_would(the_plan.config_for(the_plan.configurations[0], 42))
    save_config(trained, run_dir / "config.yaml")  # an earlier sitting
    run_results(the_plan, log=lambda line: None)
    assert fake_trainer.runs == [(("ravdess",), 42, None, True)]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["resumed"] is True
    assert result["config"]["data"]["datasets"] == ["ravdess"] and result["config"]["train"]["seed"] == 42


def test_a_run_is_not_continued_with_other_settings_than_it_started_with(tmp_path, fake_trainer):
    """The rule of `train --resume`: a continued run trains with its config.yaml, which must be the plan's; one
    started with other settings (another --set, another --config) is refused naming the setting."""
    the_plan = plan(tmp_path, ["ravdess"], [42])
    run_dir = the_plan.run_dir(the_plan.configurations[0], 42)
    run_dir.mkdir(parents=True)
    earlier = ResultsPlan(**{**the_plan.__dict__, "overrides": ["model.hidden_size=16"]})
    save_config(recorded_as_training_would(earlier.config_for(the_plan.configurations[0], 42)), run_dir / "config.yaml")
    with pytest.raises(ConfigError, match=r"model\.hidden_size: 16 in its config\.yaml, \d+ in this plan"):
        run_results(the_plan, log=lambda line: None)
    assert fake_trainer.runs == [] and not (run_dir / "result.json").exists()
    run_results(earlier, log=lambda line: None)  # the plan it started with continues it
    assert fake_trainer.runs == [(("ravdess",), 42, None, True)]


def test_a_finished_run_trained_with_other_settings_is_counted_with_a_warning(tmp_path, fake_trainer):
    the_plan = plan(tmp_path, ["meld"], [42])
    run_results(ResultsPlan(**{**the_plan.__dict__, "overrides": ["train.stage2.epochs=1"]}), log=lambda line: None)
    lines = []
    summary = run_results(the_plan, log=lines.append)
    assert any(line.startswith("warning: ") and "train.stage2.epochs" in line for line in lines), lines
    assert summary["configurations"]["meld"]["seeds"] == [42] and len(fake_trainer.runs) == 1
    lines.clear()
    run_results(ResultsPlan(**{**the_plan.__dict__, "overrides": ["train.stage2.epochs=1"]}), log=lines.append)
    assert not any(line.startswith("warning: ") for line in lines)


def test_results_and_ablate_on_other_ddp_ranks_train_along_and_write_nothing(tmp_path, fake_trainer, monkeypatch):
    """TwoStageTrainer.run returns None on DDP ranks above 0: they train each run with rank 0, which alone
    writes result.json, the table and the ablation files."""
    from lightning.pytorch.utilities import rank_zero_only

    import emoxformer.training.ablation as ablation

    monkeypatch.setattr(ablation, "TwoStageTrainer", FakeTrainer)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    monkeypatch.setattr(FakeTrainer, "run", lambda self, resume=False, overwrite=False: FakeTrainer.runs.append(
        self.config.train.seed) or None)
    assert run_results(plan(tmp_path, ["meld", "ravdess"], [42, 43]), log=lambda line: None) == {}
    assert fake_trainer.runs == [42, 43, 42, 43]
    assert not list((tmp_path / "results").rglob("result.json")) and not (tmp_path / "results" / "RESULTS.md").exists()
    out = tmp_path / "ablate"
    (out / "modality_dropout=0").mkdir(parents=True)
    (out / "modality_dropout=0" / "config.yaml").write_text("{}\n")  # rank 0 has started the first run there
    assert ablation.run_ablation("quickstart", None, ["modality_dropout=0,0.3"], out, []) is None
    assert fake_trainer.runs[4:] == [42, 42] and not (out / "ablation.csv").exists()


def test_emobox_folds_are_aggregated_as_one_configuration(tmp_path, fake_trainer):
    summary = run_results(plan(tmp_path, [], [42], cv=True), log=lambda line: None)
    assert sorted(r[2] for r in fake_trainer.runs) == list(range(1, len(EMOBOX_FOLDS) + 1))
    entry = summary["configurations"]["ravdess-emobox"]
    assert entry["folds"] == [1, 2, 3, 4, 5, 6] and entry["datasets"]["ravdess"]["accuracy"]["n"] == 6
    assert entry["datasets"]["ravdess"]["accuracy"]["sd"] == pytest.approx(0.0)


def test_report_shows_yardsticks_missing_seeds_and_commands(tmp_path, fake_trainer):
    the_plan = plan(tmp_path, ["meld", "joint-paired"], [42, 43])
    run_results(ResultsPlan(**{**the_plan.__dict__, "seeds": [42]}), log=lambda line: None)
    summary = run_results(the_plan, train=False, log=lambda line: None)
    assert summary["missing"] == {"meld": [43], "joint-paired": [43]}
    text = (tmp_path / "results" / "RESULTS.md").read_text()
    assert "63.3" in text and "71.2" in text and "55 %" in text  # the published yardsticks
    assert "| meld | 1 | 50.0 | 45.0 | 30.0 | 35.0 | " in text  # one seed: no sd
    assert "| 50.0 / — |" in text  # validation accuracy from the best logged epoch (no weighted-F1 logged here)
    assert "## Not run yet" in text and "joint-paired: seeds 43" in text
    assert "data.pairing=label" in text and "data.modality_dropout=0.3" in text
    assert "t+a+v" in text
    assert json.loads((tmp_path / "results" / "results.json").read_text())["configurations"]["meld"]["seeds"] == [42]


def test_mean_and_sd_over_seeds_in_the_table():
    runs = [{"configuration": "fer2013", "group": "fer2013", "fold": None, "seed": s, "description": "d", "wall_s": 60.0,
             "test": {"fer2013": {"accuracy": a, "weighted_f1": a, "macro_f1": a, "uar": a, "n": 3}},
             "command": "c", "commit": "abc", "machine": {"cpus": 2}} for s, a in ((1, 0.6), (2, 0.7), (3, 0.8))]
    summary = aggregate(runs)
    assert "| fer2013 | 3 | 70.0 ± 10.0 | 70.0 ± 10.0 | 70.0 ± 10.0 | 70.0 ± 10.0 | 1.0 min | — / — |" in to_markdown(summary)


def test_a_run_records_the_commit_it_started_from(tmp_path, fake_trainer, monkeypatch):
    """A commit made while a long run trains is not the code that ran: result.json keeps the one at its start."""
    import emoxformer.training.results as results_module

    checkout = {"commit": "aaaaaaa"}
    monkeypatch.setattr(results_module, "git_commit", lambda: checkout["commit"])
    real_run = FakeTrainer.run

    def run_while_someone_commits(self, resume=False):
        checkout["commit"] = "bbbbbbb"
        return real_run(self, resume)

    monkeypatch.setattr(FakeTrainer, "run", run_while_someone_commits)
    run_results(plan(tmp_path, ["meld"], [42]), log=lambda line: None)
    result = json.loads((tmp_path / "results" / "runs" / "meld" / "seed42" / "result.json").read_text())
    assert result["commit"] == "aaaaaaa"


@pytest.mark.parametrize("monitor, mode, epoch_accuracy", [("val/score", "max", 0.5), ("val/loss", "min", 0.25)])
def test_the_reported_validation_is_the_epoch_the_monitor_chose(tmp_path, monitor, mode, epoch_accuracy):
    from emoxformer.training.results import best_validation

    log = tmp_path / "logs" / "stage2"
    log.mkdir(parents=True)
    (log / "metrics.csv").write_text("epoch,val/score,val/loss,val/meld/accuracy\n0,0.2,0.9,0.25\n1,0.4,1.3,0.5\n")
    assert best_validation(tmp_path, "stage2", monitor, mode) == {"meld": {"accuracy": epoch_accuracy}}


def test_the_reported_validation_is_the_epoch_the_stage_exported(tmp_path):
    from emoxformer.training.callbacks import write_best_score
    from emoxformer.training.results import best_validation

    log = tmp_path / "logs" / "stage2"
    log.mkdir(parents=True)
    (log / "metrics.csv").write_text("epoch,val/score,val/meld/accuracy\n0,0.2,0.25\n1,0.4,0.5\n2,0.3,0.75\n")
    write_best_score(tmp_path / "stage2" / "best_score.json", "val/score", "max", 0.4, epoch=2)
    assert best_validation(tmp_path, "stage2") == {"meld": {"accuracy": 0.5}}
    write_best_score(tmp_path / "stage2" / "best_score.json", "val/meld/accuracy", "max", 0.75, epoch=3)
    assert best_validation(tmp_path, "stage2") == {"meld": {"accuracy": 0.75}}  # the record's monitor, not the default


def test_the_wall_time_of_resumed_runs_says_whether_it_counts_every_sitting():
    def run(seed, resumed, **wall):
        return {"configuration": "meld", "group": "meld", "fold": None, "seed": seed, "description": "d", "wall_s": 120.0,
                "resumed": resumed, "test": {"meld": {"accuracy": 0.5, "weighted_f1": 0.5, "macro_f1": 0.5, "uar": 0.5, "n": 3}},
                "command": "c", "commit": "abc", "machine": {"cpus": 2}, **wall}

    # a result.json without "sittings" (written before the ledger) or with None: the last sitting only
    assert "| 2.0 min (1 of 2 resumed: their last sitting only) |" in to_markdown(aggregate([run(1, False), run(2, True)]))
    assert "| 2.0 min (1 of 2 resumed: their last sitting only) |" in to_markdown(
        aggregate([run(1, False, sittings=1), run(2, True, sittings=None)]))
    assert "| 2.0 min (1 of 2 in several sittings, summed) |" in to_markdown(
        aggregate([run(1, False, sittings=1), run(2, True, sittings=2)]))
    assert "| 2.0 min |" in to_markdown(aggregate([run(1, False), run(2, False)]))


def test_an_interrupted_sittings_wall_time_counts_when_the_run_continues(tmp_path, fake_trainer, monkeypatch):
    import emoxformer.training.results as results_module

    clock = iter([100.0, 160.0, 1000.0, 1030.0])  # sitting 1: 60 s, then interrupted; sitting 2: 30 s
    monkeypatch.setattr(results_module.time, "perf_counter", lambda: next(clock))
    the_plan = plan(tmp_path, ["ravdess"], [42])
    run_dir = the_plan.run_dir(the_plan.configurations[0], 42)
    finishing = FakeTrainer.run

    def interrupted(self, resume=False):
        self.out.mkdir(parents=True, exist_ok=True)
        save_config(recorded_as_training_would(self.config), self.out / "config.yaml")
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeTrainer, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_results(the_plan, log=lambda line: None)
    assert json.loads((run_dir / "wall_time.json").read_text()) == {"seconds": 60.0, "sittings": 1}
    monkeypatch.setattr(FakeTrainer, "run", finishing)
    run_results(the_plan, log=lambda line: None)
    result = json.loads((run_dir / "result.json").read_text())
    assert (result["wall_s"], result["sittings"], result["resumed"]) == (90.0, 2, True)  # was: 30 s, the last sitting


def test_a_run_interrupted_before_its_config_leaves_no_ledger_in_its_empty_folder(tmp_path, fake_trainer, monkeypatch):
    the_plan = plan(tmp_path, ["ravdess"], [42])
    run_dir = the_plan.run_dir(the_plan.configurations[0], 42)

    def interrupted(self, resume=False):
        self.out.mkdir(parents=True, exist_ok=True)  # reading the data, before config.yaml
        raise KeyboardInterrupt

    monkeypatch.setattr(FakeTrainer, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_results(the_plan, log=lambda line: None)
    assert list(run_dir.iterdir()) == []  # a new run there needs an empty folder


def test_cli_results_bad_configuration_is_one_line(tmp_path, capsys):
    assert main(["results", "--config", "quickstart", "--out", str(tmp_path), "--configurations", "meld,nope"]) == 2
    assert "unknown configuration(s) nope" in capsys.readouterr().err


def test_cli_seeds_count_starts_at_the_config_seed(tmp_path, fake_trainer, capsys):
    assert main(["results", "--config", "quickstart", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--seeds", "2", "--configurations", "ravdess", "--no-progress", "--set", "train.seed=7"]) == 0
    assert [r[1] for r in fake_trainer.runs] == [7, 8]
    assert (tmp_path / "r" / "RESULTS.md").is_file()
    assert main(["results", "--config", "quickstart", "--out", str(tmp_path / "r"), "--seeds", "x"]) == 2


def test_cli_a_single_seed_written_as_a_count_is_refused_with_the_fix(tmp_path, fake_trainer, capsys):
    """`--seeds 42` would train 42 seeds of every configuration; the message says to write `42,`."""
    assert main(["results", "--config", "quickstart", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--seeds", "42", "--configurations", "ravdess", "--no-progress"]) == 2
    assert "--seeds 42," in capsys.readouterr().err and fake_trainer.runs == []
    assert main(["results", "--config", "quickstart", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--seeds", "42,", "--configurations", "ravdess", "--no-progress"]) == 0
    assert [r[1] for r in fake_trainer.runs] == [42]


@pytest.mark.parametrize("seeds", [[42], [42, 43, 44]])
def test_the_reported_results_command_asks_for_the_same_seeds(tmp_path, seeds):
    """The report's command must train what was trained: one seed is written `42,`, since `--seeds 42` is a count."""
    from emoxformer.cli import _seed_list

    command = results_command(plan(tmp_path, ["joint"], seeds)).split()
    assert _seed_list(command[command.index("--seeds") + 1], first=7) == seeds


def test_cli_configurations_none_runs_the_emobox_folds_alone(tmp_path, fake_trainer, capsys):
    assert main(["results", "--config", "quickstart", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--seeds", "42,", "--configurations", "none", "--cv", "--no-progress"]) == 0
    assert sorted(r[2] for r in fake_trainer.runs) == [1, 2, 3, 4, 5, 6]
    report = (tmp_path / "r" / "RESULTS.md").read_text()
    assert "--configurations none --cv" in report
    assert main(["results", "--config", "quickstart", "--out", str(tmp_path / "r"), "--configurations", "none"]) == 2
    assert "--configurations none trains nothing without --cv" in capsys.readouterr().err


def test_a_run_s_result_is_built_from_its_metrics_without_training(tmp_path):
    """The result.json record is a step of its own: from a run's metrics and this sitting's facts, no trainer."""
    from emoxformer.training.results import run_result

    results_plan = plan(tmp_path, ["joint"], [42])
    joint = results_plan.configurations[0]
    per_class = {"accuracy": 0.6, "weighted_f1": 0.5, "macro_f1": 0.4, "uar": 0.45, "n": 8, "confusion_matrix": [[1]]}
    metrics = {"best_stage": "stage1", "stage1": {"meld": per_class}, "stage2": {"meld": dict(per_class, accuracy=0.1)},
               "paired_test": {"t+a": per_class}, "inference_fusion": "late"}
    config = results_plan.config_for(joint, 42)
    result = run_result(results_plan, joint, 42, config, metrics, wall_s=12.5, resumed=True, commit="abc1234")
    reported = {k: per_class[k] for k in ("accuracy", "weighted_f1", "macro_f1", "uar", "n")}
    assert result["best_stage"] == "stage1" and result["test"] == {"meld": reported}  # the chosen stage's, no matrix
    assert result["paired_test"] == {"t+a": reported} and result["paired_test_late"] == {}
    assert "transcripts" not in result and result["inference_fusion"] == "late"
    assert (result["wall_s"], result["resumed"], result["commit"]) == (12.5, True, "abc1234")
    assert result["command"] == results_plan.train_command(joint, 42) and result["config"]["train"]["seed"] == 42
    assert result["validation"] == {}  # no log in this run folder
