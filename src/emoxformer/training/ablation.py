"""Run a grid of configurations and tabulate per-dataset and paired-test metrics (Markdown + CSV)."""
from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
from lightning.pytorch.utilities import rank_zero_only

from ..config import ExperimentConfig, load_config
from ..config_io import field_keys, path_override
from ..errors import ConfigError
from ..io_utils import atomic_write
from .evaluate import SUBSET_NAMES, modality_subsets
from .run import TwoStageTrainer, check_run_dir

# Where a short grid key is looked up, in this order: `text_context` is data.text_context (model.text_context is
# recorded from it at training time).
SHORT_KEY_SECTIONS = ("data", "train", "model")


def full_key(key: str) -> str:
    """`pairing` -> `data.pairing`; dotted keys pass through (the loader checks them). A short key found twice in
    one section (`epochs`: train.stage1.epochs and train.stage2.epochs) is refused as ambiguous."""
    if "." in key:
        return key
    keys = field_keys(ExperimentConfig)
    for section in SHORT_KEY_SECTIONS:
        found = [k for k in keys if k.startswith(f"{section}.") and k.rsplit(".", 1)[-1] == key]
        if len(found) > 1:
            raise ConfigError(f"grid key {key!r} is ambiguous ({', '.join(found)}); use one of these dotted keys")
        if found:
            return found[0]
    raise ConfigError(f"grid key {key!r} is not a config field; use a dotted key such as data.pairing")


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    grid = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"grid entry {item!r}: expected KEY=V1,V2,...")
        key, values = item.split("=", 1)
        grid.append((full_key(key.strip()), [v.strip() for v in values.split(",") if v.strip()]))
    return grid


def run_ablation(config_path: str, data_root: str | None, grid_items: list[str], out: Path, overrides: list[str],
                 progress: bool = False, overwrite: bool = False) -> pd.DataFrame | None:
    """Train every combination of the grid, each into its own folder out/<settings>. A folder that is not empty
    is refused before any training, unless `overwrite` and it holds a run (then each run replaces the earlier one in
    its folder). Returns the table; None on the other DDP ranks (they train each run with rank 0, which writes it)."""
    grid = parse_grid(grid_items)
    combinations = list(itertools.product(*(v for _, v in grid)))
    names = ["__".join(f"{key.split('.')[-1]}={value}" for (key, _), value in zip(grid, values)) for values in combinations]
    # Every combination's config is loaded (checked and validated) before any training, so a bad value or an
    # invalid combination stops the grid at once, not after the runs before it.
    configs = [load_config(config_path, ([path_override("data.root", data_root)] if data_root else []) + overrides
                           + [f"{key}={value}" for (key, _), value in zip(grid, values)]) for values in combinations]
    # Under DDP the other ranks start once rank 0 trains the first run (into its folder): rank 0 alone checks.
    is_main = rank_zero_only.rank == 0
    for name in names if is_main else []:  # with overwrite too: a folder that holds files but no run is never emptied
        check_run_dir(out / name, overwrite)
    rows = []
    for values, name, config in zip(combinations, names, configs):
        if is_main:
            print(f"ablation run {name}", flush=True)
        trained = TwoStageTrainer(config, out / name, progress=progress).run(overwrite=overwrite)
        if trained is None:  # another DDP rank: rank 0 evaluates and writes the table
            continue
        metrics = trained.to_dict()
        final = metrics[metrics["best_stage"]]
        row = {key.split(".")[-1]: value for (key, _), value in zip(grid, values)}
        for dataset, m in final.items():
            row[f"{dataset} acc"] = m["accuracy"]
            row[f"{dataset} w-F1"] = m["weighted_f1"]
            row[f"{dataset} UAR"] = m["uar"]
        for subset in modality_subsets():
            subset_name = "+".join(SUBSET_NAMES[m] for m in subset)
            if subset_name in metrics.get("paired_test", {}):
                row[f"paired {subset_name} acc"] = metrics["paired_test"][subset_name]["accuracy"]
        rows.append(row)
    if not is_main:
        return None
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "ablation.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(out / "ablation.md", to_markdown(table) + "\n")
    return table


def to_markdown(table: pd.DataFrame) -> str:
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])
