"""Run a grid of configurations and tabulate per-dataset and paired-test metrics (Markdown + CSV)."""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pandas as pd

from ..config import AugmentConfig, DataConfig, TrainConfig, load_config
from ..errors import ConfigError
from ..model.config import EmoXFormerConfig
from .evaluate import SUBSET_NAMES, modality_subsets
from .run import TwoStageTrainer, prepare_run_dir

_SECTIONS = {"data": DataConfig, "train": TrainConfig, "model": EmoXFormerConfig, "data.augment": AugmentConfig}


def full_key(key: str) -> str:
    """`pairing` -> `data.pairing`; dotted keys pass through."""
    if "." in key:
        return key
    for section, cls in _SECTIONS.items():
        if key in {f.name for f in dataclasses.fields(cls)}:
            return f"{section}.{key}"
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
                 progress: bool = False, overwrite: bool = False) -> pd.DataFrame:
    """Train every combination of the grid, each into its own folder out/<settings>. A folder that is not empty
    is refused before any training, unless `overwrite` (then each run replaces the earlier one in its folder)."""
    grid = parse_grid(grid_items)
    combinations = list(itertools.product(*(v for _, v in grid)))
    names = ["__".join(f"{key.split('.')[-1]}={value}" for (key, _), value in zip(grid, values)) for values in combinations]
    if not overwrite:
        for name in names:
            prepare_run_dir(out / name)
    rows = []
    for values, name in zip(combinations, names):
        settings = [f"{key}={value}" for (key, _), value in zip(grid, values)]
        config = load_config(config_path, ([f"data.root={data_root}"] if data_root else []) + overrides + settings)
        print(f"ablation run {name}", flush=True)
        metrics = TwoStageTrainer(config, out / name, progress=progress).run(overwrite=overwrite).to_dict()
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
    table = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "ablation.csv", index=False)
    (out / "ablation.md").write_text(to_markdown(table) + "\n")
    return table


def to_markdown(table: pd.DataFrame) -> str:
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])
