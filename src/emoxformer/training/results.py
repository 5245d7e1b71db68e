"""The results table: train each configuration for several seeds (or RAVDESS folds), report mean ± sd per dataset.

Every run lives in OUT/runs/<configuration>/seed<S>/ (a normal run directory) and, once finished, holds
`result.json`: its test metrics, wall time, commit, machine and the equivalent `emoxformer train` command. A later
call skips finished runs and continues interrupted ones, so seeds can run in separate sittings; the table is
always rebuilt from every `result.json` present (OUT/RESULTS.md and OUT/results.json).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..version import __version__
from ..config import ExperimentConfig, load_config, to_dict
from ..config_io import path_override
from ..data.ravdess import EMOBOX_FOLDS
from ..errors import ConfigError
from ..io_utils import atomic_write

RESULT_FILE = "result.json"
# A run's wall time over its sittings so far ({"seconds", "sittings"}), written when a sitting ends, finished or not,
# so that a continued run reports the time of every sitting (one killed outright, SIGKILL or power, is not counted).
WALL_FILE = "wall_time.json"
METRICS = ("accuracy", "weighted_f1", "macro_f1", "uar")
DATASET_TITLES = {"meld": "MELD (text), test", "ravdess": "RAVDESS (speech), test actors", "fer2013": "FER2013 (faces), PrivateTest"}
# Published test-set figures (DESIGN.md), in percent, beside which ours are shown.
YARDSTICKS = {
    "meld": "weighted-F1 63.3 (RoBERTa-base, one utterance) to 65.6 (with dialogue context)",
    "ravdess": "actor-disjoint accuracy 55 % (frozen wav2vec2-base) to 76 % (best in EmoBox)",
    "fer2013": "PrivateTest accuracy 71.2 % (ViT-B/16) to 73.3 % (best single CNN)",
}


@dataclass
class Configuration:
    name: str
    overrides: list[str]
    description: str
    fold: int | None = None  # EmoBox fold of a cross-validation configuration
    group: str = ""  # cross-validation: the name its folds are aggregated under

    @property
    def label(self) -> str:
        return self.group or self.name


CONFIGURATIONS = {
    "meld": Configuration("meld", ["data.datasets=[meld]"], "MELD alone (text)"),
    "ravdess": Configuration("ravdess", ["data.datasets=[ravdess]"], "RAVDESS alone (speech)"),
    "fer2013": Configuration("fer2013", ["data.datasets=[fer2013]"], "FER2013 alone (faces)"),
    "joint": Configuration("joint", ["data.datasets=[meld,ravdess,fer2013]"], "all three jointly"),
    "joint-paired": Configuration("joint-paired", ["data.datasets=[meld,ravdess,fer2013]", "data.pairing=label",
                                                   "data.modality_dropout=0.3"],
                                  "all three jointly, label-matched pairing, modality dropout 0.3"),
}
DEFAULT_CONFIGURATIONS = ("meld", "ravdess", "fer2013", "joint", "joint-paired")
CV_GROUP = "ravdess-emobox"


def emobox_configurations() -> list[Configuration]:
    """RAVDESS alone on each of EmoBox's six actor folds, aggregated as one configuration."""
    return [Configuration(f"{CV_GROUP}-fold{k}", ["data.datasets=[ravdess]", f"data.ravdess_fold={k}"],
                          f"RAVDESS alone, EmoBox fold {k} (test actors {', '.join(map(str, EMOBOX_FOLDS[k - 1]))})",
                          fold=k, group=CV_GROUP)
            for k in range(1, len(EMOBOX_FOLDS) + 1)]


def choose_configurations(names: list[str] | None, cv: bool) -> list[Configuration]:
    """`names` (None: all) plus, with `cv`, EmoBox's folds; `["none"]` with `cv` is the folds alone."""
    if names == ["none"]:
        if not cv:
            raise ConfigError("--configurations none trains nothing without --cv (the EmoBox folds alone)")
        names = []
    chosen = list(DEFAULT_CONFIGURATIONS) if names is None else names
    unknown = [n for n in chosen if n not in CONFIGURATIONS]
    if unknown:
        raise ConfigError(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGURATIONS)}")
    return [CONFIGURATIONS[n] for n in chosen] + (emobox_configurations() if cv else [])


@dataclass
class ResultsPlan:
    config: str
    data: str | None
    seeds: list[int]
    out: Path
    configurations: list[Configuration]
    overrides: list[str] = field(default_factory=list)
    progress: bool = False

    def run_dir(self, configuration: Configuration, seed: int) -> Path:
        return self.out / "runs" / configuration.name / f"seed{seed}"

    def overrides_for(self, configuration: Configuration, seed: int) -> list[str]:
        return list(self.overrides) + configuration.overrides + [f"train.seed={seed}"]

    def config_for(self, configuration: Configuration, seed: int) -> ExperimentConfig:
        """The config this plan trains the run with (paths verbatim, overrides as YAML)."""
        return load_config(self.config, ([path_override("data.root", self.data)] if self.data else [])
                           + self.overrides_for(configuration, seed))

    def train_command(self, configuration: Configuration, seed: int) -> str:
        """The `emoxformer train` call that trains this run alone."""
        words = ["emoxformer", "train", "--config", self.config]
        words += ["--data", self.data] if self.data else []
        words += ["--out", str(self.run_dir(configuration, seed)), *self.overrides_for(configuration, seed)]
        return shlex.join(words)


def run_results(plan: ResultsPlan, train: bool = True, log=print) -> dict:
    """Train every (configuration, seed) not finished yet (unless `train` is False), then write the table.

    Under DDP every process trains the same runs in turn (each decides which, and whether each continues, before
    the first trains, so a run rank 0 has just started is not taken for an interrupted one); rank 0 alone writes
    result.json and the table, and the other ranks return {}."""
    from lightning.pytorch.utilities import rank_zero_only

    is_main = rank_zero_only.rank == 0
    for configuration, seed in [(c, s) for c in plan.configurations for s in plan.seeds] if is_main else []:
        if (plan.run_dir(configuration, seed) / RESULT_FILE).is_file():
            differing = finished_run_differences(plan, configuration, seed)
            if differing:  # counted as it is: its result.json says what it trained with
                log(f"warning: {plan.run_dir(configuration, seed)} was trained with other settings than this plan's "
                    f"({', '.join(differing[:4])}{', ...' if len(differing) > 4 else ''}); it is counted as trained "
                    "(remove the folder to train it with this plan)")
    if train:
        pending = [(c, s) for c in plan.configurations for s in plan.seeds
                   if not (plan.run_dir(c, s) / RESULT_FILE).is_file()]
        resumes = [(plan.run_dir(c, s) / "config.yaml").is_file() for c, s in pending]
        if is_main:
            log(f"{len(pending)} of {len(plan.configurations) * len(plan.seeds)} runs to train"
                + (f"; finished runs in {plan.out / 'runs'} are kept" if pending else ""))
        for number, ((configuration, seed), resume) in enumerate(zip(pending, resumes), start=1):
            if is_main:
                log(f"[{number}/{len(pending)}] {configuration.name}, seed {seed}: {plan.train_command(configuration, seed)}")
            train_one(plan, configuration, seed, resume)
    if not is_main:
        return {}
    summary = aggregate(collect_results(plan.out), plan)
    write_report(summary, plan.out)
    return summary


def train_one(plan: ResultsPlan, configuration: Configuration, seed: int, resume: bool | None = None) -> dict | None:
    """Train one run (continuing it if an earlier sitting was interrupted: `resume`, default whether it has a
    config.yaml) and write its result.json; None on the other DDP ranks (rank 0 writes it)."""
    from lightning.pytorch.utilities import rank_zero_only

    from .run import TwoStageTrainer

    run_dir = plan.run_dir(configuration, seed)
    resume = (run_dir / "config.yaml").is_file() if resume is None else resume
    config = config_to_train(plan, configuration, seed, resume)
    earlier = earlier_sittings(run_dir) if resume else {"seconds": 0.0, "sittings": 0}
    started, commit = time.perf_counter(), git_commit()  # the code that trains: the checkout may change meanwhile
    try:
        trained = TwoStageTrainer(config, run_dir, progress=plan.progress).run(resume=resume)
    finally:
        wall = {"seconds": earlier["seconds"] + time.perf_counter() - started, "sittings": earlier["sittings"] + 1}
        # Only a run that can continue (it wrote config.yaml) keeps the ledger: a new run needs an empty folder.
        if rank_zero_only.rank == 0 and (run_dir / "config.yaml").is_file():
            atomic_write(run_dir / WALL_FILE, json.dumps(wall))
    if trained is None:  # another DDP rank: rank 0 evaluates and writes result.json
        return None
    result = run_result(plan, configuration, seed, config, trained.to_dict(), wall_s=wall["seconds"], resumed=resume,
                        commit=commit, sittings=wall["sittings"] if not resume or earlier["sittings"] else None)
    atomic_write(run_dir / RESULT_FILE, json.dumps(result, indent=2))
    return result


def earlier_sittings(run_dir: Path) -> dict:
    """The wall-time ledger of a continued run's earlier sittings ({"seconds": 0, "sittings": 0} when it has none,
    as a run interrupted before this ledger existed)."""
    try:
        ledger = json.loads((run_dir / WALL_FILE).read_text())
        return {"seconds": float(ledger["seconds"]), "sittings": int(ledger["sittings"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {"seconds": 0.0, "sittings": 0}


def config_to_train(plan: ResultsPlan, configuration: Configuration, seed: int, resume: bool) -> ExperimentConfig:
    """The plan's config for the run; a continued run trains with its own config.yaml (the rule of
    `train --resume`), which must be the plan's (ConfigError otherwise)."""
    from .resume import resume_config

    planned = plan.config_for(configuration, seed)
    if not resume:
        return planned
    return resume_config(plan.run_dir(configuration, seed), requested=planned, given="in this plan")


def run_result(plan: ResultsPlan, configuration: Configuration, seed: int, config: ExperimentConfig, metrics: dict,
               wall_s: float, resumed: bool, commit: str, sittings: int | None = 1) -> dict:
    """The result.json of a trained run: its test metrics (`metrics`: TrainingResult.to_dict()) and validation,
    how it was trained (`config`, the command) and its wall time over `sittings` (None: a continued run whose
    earlier sittings were not recorded, so `wall_s` is the last sitting's alone), commit and machine."""
    best_stage = metrics["best_stage"]
    return {
        "configuration": configuration.name, "group": configuration.label, "fold": configuration.fold, "seed": seed,
        "description": configuration.description, "best_stage": best_stage,
        "test": {name: {k: values[k] for k in (*METRICS, "n")} for name, values in metrics[best_stage].items()},
        "validation": best_validation(plan.run_dir(configuration, seed), best_stage, config.train.monitor,
                                      config.train.resolved_monitor_mode),
        "paired_test": _reported_metrics(metrics.get("paired_test", {})),
        "paired_test_late": _reported_metrics(metrics.get("paired_test_late", {})),
        **{key: _reported_metrics(metrics[key]) for key in ("transcripts", "transcripts_late") if key in metrics},
        "inference_fusion": metrics.get("inference_fusion"),
        "wall_s": wall_s, "sittings": sittings, "resumed": resumed, "command": plan.train_command(configuration, seed),
        "config": to_dict(config),  # what the run trained with (its config.yaml), whatever a later plan says
        "commit": commit, "machine": machine(), "finished": _now(),
    }


def _reported_metrics(by_subset: dict[str, dict]) -> dict[str, dict]:
    """Per subset, the table's metrics and the sample count (the per-class figures and confusion matrix left out)."""
    return {subset: {k: v for k, v in values.items() if k in METRICS or k == "n"} for subset, values in by_subset.items()}


def finished_run_differences(plan: ResultsPlan, configuration: Configuration, seed: int) -> list[str]:
    """The settings in which a finished run's config.yaml differs from the plan's (none when it has no config.yaml
    or it cannot be read)."""
    from .resume import config_differences, stored_config

    try:
        trained = stored_config(plan.run_dir(configuration, seed))
    except ConfigError:
        return []
    return list(config_differences(trained, plan.config_for(configuration, seed)))


def best_validation(run_dir: Path, stage: str, monitor: str = "val/score", mode: str = "max") -> dict:
    """Per-dataset validation metrics of the final model: the logged epoch whose weights `stage` exported (the
    epoch in its best_score.json); for a stage trained before that file was kept, the epoch with the best
    `monitor` (highest, or lowest with mode "min")."""
    import pandas as pd

    from .callbacks import BEST_SCORE, read_best_score

    log = run_dir / "logs" / stage / "metrics.csv"
    if not log.is_file():
        return {}
    record = read_best_score(run_dir / stage / BEST_SCORE)
    epochs = pd.read_csv(log).dropna(subset=[record["monitor"] if record else monitor])
    if record:
        epochs = epochs[epochs["epoch"] == record["epoch"] - 1]  # the log counts epochs from 0, the record from 1
    if epochs.empty:
        return {}
    best = epochs.iloc[0] if record else epochs.loc[epochs[monitor].idxmin() if mode == "min" else epochs[monitor].idxmax()]
    values: dict = {}
    for column, value in best.items():
        parts = str(column).split("/")
        if len(parts) == 3 and parts[0] == "val" and parts[2] in METRICS and pd.notna(value):
            values.setdefault(parts[1], {})[parts[2]] = float(value)
    return values


def collect_results(out: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((out / "runs").glob(f"*/seed*/{RESULT_FILE}"))]


def mean_sd(values: list[float]) -> dict:
    """Mean and sample sd (None for fewer than two values; mean None for none)."""
    return {"mean": statistics.fmean(values) if values else None, "sd": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values), "values": values}


def aggregate(results: list[dict], plan: ResultsPlan | None = None) -> dict:
    """Per configuration (folds of a cross-validation together) and dataset: mean ± sd of each metric over runs."""
    groups: dict[str, list[dict]] = {}
    for result in results:
        groups.setdefault(result["group"], []).append(result)
    table = {}
    for group, runs in groups.items():
        datasets = sorted({name for run in runs for name in run["test"]})
        entry = {
            "description": runs[0]["description"] if runs[0]["fold"] is None else "RAVDESS alone, EmoBox's 6 actor folds",
            "runs": [{"configuration": r["configuration"], "seed": r["seed"], "fold": r["fold"]} for r in runs],
            "seeds": sorted({r["seed"] for r in runs}),
            "folds": sorted({r["fold"] for r in runs if r["fold"] is not None}),
            "wall_s": mean_sd([r["wall_s"] for r in runs]),
            "resumed": sum(bool(r.get("resumed")) for r in runs),  # continued in a later sitting
            # continued runs whose earlier sittings were not recorded: their wall_s is the last sitting's alone
            "last_sitting_only": sum(bool(r.get("resumed")) and not r.get("sittings") for r in runs),
            "datasets": {name: {metric: mean_sd([r["test"][name][metric] for r in runs if name in r["test"]])
                                for metric in METRICS} for name in datasets},
            "validation": {name: {metric: mean_sd([r["validation"][name][metric] for r in runs
                                                   if metric in r.get("validation", {}).get(name, {})])
                                  for metric in METRICS} for name in datasets},
            "commands": [r["command"] for r in runs],
            "commits": sorted({r["commit"] for r in runs}),
            "machines": sorted({json.dumps(r["machine"], sort_keys=True) for r in runs}),
        }
        for key in ("paired_test", "paired_test_late", "transcripts", "transcripts_late"):
            subsets = sorted({s for r in runs for s in r.get(key, {})}, key=lambda s: (len(s), s))
            if subsets:
                entry[key] = {s: {metric: mean_sd([r[key][s][metric] for r in runs if s in r.get(key, {})])
                                  for metric in METRICS} for s in subsets}
        choices = [r["inference_fusion"] for r in runs if r.get("inference_fusion")]
        if choices:
            entry["inference_fusion"] = {choice: choices.count(choice) for choice in sorted(set(choices))}
        table[group] = entry
    expected = {}
    if plan is not None:
        for configuration in plan.configurations:
            done = {r["seed"] for r in results if r["configuration"] == configuration.name}
            missing = [s for s in plan.seeds if s not in done]
            if missing:
                expected[configuration.name] = missing
    return {"configurations": table, "missing": expected, "written": _now(), "emoxformer": __version__,
            "commit": git_commit(), "yardsticks": YARDSTICKS,
            "command": results_command(plan) if plan is not None else None}


def results_command(plan: ResultsPlan) -> str:
    words = ["emoxformer", "results", "--config", plan.config]
    words += ["--data", plan.data] if plan.data else []
    seeds = ",".join(map(str, plan.seeds)) + ("," if len(plan.seeds) == 1 else "")  # `--seeds 42` is a count
    words += ["--seeds", seeds, "--out", str(plan.out)]
    plain = [c.name for c in plan.configurations if c.fold is None]
    if tuple(plain) != DEFAULT_CONFIGURATIONS:
        words += ["--configurations", ",".join(plain) or "none"]
    if any(c.fold is not None for c in plan.configurations):
        words.append("--cv")
    return shlex.join(words + (["--set", *plan.overrides] if plan.overrides else []))


def _cell(stats: dict, percent: bool = True) -> str:
    if not stats["n"]:
        return "—"
    scale = 100.0 if percent else 1.0
    text = f"{stats['mean'] * scale:.1f}"
    if stats["sd"] is not None:
        text += f" ± {stats['sd'] * scale:.1f}"
    return text


def to_markdown(summary: dict) -> str:
    configurations = summary["configurations"]
    lines = ["# Results on the real datasets", ""]
    lines += [f"Written {summary['written']} by emoxformer {summary['emoxformer']} (commit {summary['commit']}). "
              "Test splits, mean ± sd over runs (seeds; for the EmoBox row, folds × seeds), in percent.", ""]
    for dataset in ("meld", "ravdess", "fer2013"):
        rows = [(name, entry) for name, entry in configurations.items() if dataset in entry["datasets"]]
        if not rows:
            continue
        lines += [f"## {DATASET_TITLES[dataset]}", "", f"Published: {YARDSTICKS[dataset]}.", ""]
        lines += ["| configuration | runs | acc | w-F1 | m-F1 | UAR | wall time per run | validation acc / w-F1 |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, entry in rows:
            stats = entry["datasets"][dataset]
            runs = f"{stats['accuracy']['n']}" + (f" ({len(entry['folds'])} folds)" if entry["folds"] else "")
            wall = f"{entry['wall_s']['mean'] / 60:.1f} min"
            if entry.get("last_sitting_only"):
                wall += f" ({entry['last_sitting_only']} of {len(entry['runs'])} resumed: their last sitting only)"
            elif entry.get("resumed"):
                wall += f" ({entry['resumed']} of {len(entry['runs'])} in several sittings, summed)"
            validation = entry["validation"][dataset]
            lines.append(f"| {name} | {runs} | " + " | ".join(_cell(stats[m]) for m in METRICS)
                         + f" | {wall} | {_cell(validation['accuracy'])} / {_cell(validation['weighted_f1'])} |")
        lines.append("")
    paired = [(name, entry) for name, entry in configurations.items() if entry.get("paired_test")]
    if paired:
        lines += ["## Paired test (label-matched examples from the three test splits)", "",
                  "The model's fused answer beside late fusion (the product of its calibrated single-modality answers, "
                  "each dataset's training prior divided out); single modalities are the same for both.", "",
                  "| configuration | modalities | acc | w-F1 | m-F1 | UAR | late fusion acc | late fusion w-F1 |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, entry in paired:
            late = entry.get("paired_test_late", {})
            for subset, stats in entry["paired_test"].items():
                late_cells = [_cell(late[subset][m]) if subset in late else "—" for m in ("accuracy", "weighted_f1")]
                lines.append(f"| {name} | {subset} | " + " | ".join(_cell(stats[m]) for m in METRICS) + " | "
                             + " | ".join(late_cells) + " |")
            if entry.get("inference_fusion"):
                chosen = ", ".join(f"{fusion} in {count}" for fusion, count in entry["inference_fusion"].items())
                lines.append(f"| {name} | default fusion (chosen on validation) | {chosen} runs | | | | | |")
        lines.append("")
    lines += ["## Runs", ""]
    for name, entry in configurations.items():
        lines += [f"- **{name}**: {entry['description']}; seeds {', '.join(map(str, entry['seeds']))}"
                  + (f"; folds {', '.join(map(str, entry['folds']))}" if entry["folds"] else "")
                  + f"; commit {', '.join(entry['commits'])}"]
        for machine_json in entry["machines"]:
            lines.append(f"  - machine: {_machine_line(json.loads(machine_json))}")
        lines += [f"  - `{command}`" for command in entry["commands"]]
    if summary.get("command"):
        lines += ["", f"All of it: `{summary['command']}` (finished runs are kept; re-running continues the rest)."]
    if summary["missing"]:
        lines += ["", "## Not run yet", ""]
        lines += [f"- {name}: seeds {', '.join(map(str, seeds))}" for name, seeds in summary["missing"].items()]
    return "\n".join(lines) + "\n"


def _machine_line(info: dict) -> str:
    device = info.get("gpu") or "no GPU"
    return f"{info.get('platform')}, {info.get('cpus')} CPU cores ({info.get('processor') or 'unknown CPU'}), {device}, torch {info.get('torch')}"


def write_report(summary: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.json", json.dumps(summary, indent=2))
    atomic_write(out / "RESULTS.md", to_markdown(summary))


def git_commit() -> str:
    """The commit of the checkout emoxformer runs from (`+dirty` with uncommitted changes), or 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"platform": platform.platform(), "processor": _cpu_name(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "gpu": gpu, "torch": torch.__version__, "python": platform.python_version()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
