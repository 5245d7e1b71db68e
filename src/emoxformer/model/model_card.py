"""The model card pushed with a model (README.md): YAML front matter for the Hub, then the model, how to use it, its
training data with their licences, the test metrics per dataset and the training config."""
from __future__ import annotations

import copy

import yaml

from .config import EmoXFormerConfig

# The built-in datasets: display name, what the model learns from it, its licence (README's dataset table, and
# data/download.py's SOURCE_PAGES, which a test keeps in step) and the Hub's licence id (None: no standard one).
DATASETS = {
    "meld": ("MELD", "text: utterances of the TV series Friends", "GPL-3.0", "gpl-3.0"),
    "ravdess": ("RAVDESS", "speech: acted sentences, 24 actors", "CC BY-NC-SA 4.0", "cc-by-nc-sa-4.0"),
    "fer2013": ("FER2013", "faces: 48x48 grey photos", "research use under Kaggle's competition rules", None),
}
METRIC_COLUMNS = (("n", "n"), ("accuracy", "accuracy"), ("weighted_f1", "weighted-F1"), ("macro_f1", "macro-F1"),
                  ("uar", "UAR"))
# Local paths of a training config, left out of the card (they name the trainer's machine, not the model).
_PATH_KEYS = ("root", "meld", "ravdess", "fer2013")


def render_card(repo_id: str, config: EmoXFormerConfig, metrics: dict | None = None, training_config: dict | None = None,
                license: str | None = None) -> str:
    """README.md for the Hub repo `repo_id` of a model with `config`; `metrics` is the run's metrics.json (or
    {dataset: metrics}), `training_config` its config.yaml, `license` a Hub licence id overriding the one derived from
    the training data."""
    datasets = _datasets(metrics, training_config)
    test = _test_metrics(metrics)
    licences = {DATASETS[d][3] if d in DATASETS else None for d in datasets}
    front = {"library_name": "emoxformer"}
    if license:
        front["license"] = license
    elif len(licences) == 1 and None not in licences:
        front["license"] = licences.pop()
    else:  # no one licence covers the training data: the card's table names each
        front.update({"license": "other", "license_name": "training-data-terms"})
    front["tags"] = ["emoxformer", "emotion-recognition", "multimodal", "pytorch", "safetensors",
                     *[{"text": "text-classification", "audio": "audio-classification",
                        "vision": "image-classification"}[m] for m in config.modalities]]
    if datasets:
        front["datasets"] = datasets
    front["metrics"] = ["accuracy", "f1", "recall"]

    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", f"# {repo_id}", "",
             f"An EmoXFormer emotion classifier over "
             f"{', '.join(config.modalities)} ({len(config.labels)} classes: {', '.join(config.labels)}). "
             "Weights are safetensors; the folder follows transformers' conventions (`config.json`, `model.safetensors`).",
             "", "## Use", "", "```python", "from emoxformer import Predictor", "",
             f'predictor = Predictor.from_pretrained("{repo_id}")',
             f'print(predictor.predict({_example_input(config)}).label)', "```", "", "```bash",
             f"emoxformer predict --model {repo_id} {_example_option(config)}", "```", ""]
    lines += ["## Model", "", "| setting | value |", "|---|---|"]
    for modality in config.modalities:
        lines.append(f"| {modality} encoder | `{config.backbone(modality)}` |")
    for key in ("hidden_size", "num_heads", "fusion_layers", "head", "inference_fusion"):
        lines.append(f"| {key} | `{getattr(config, key)}` |")
    lines.append("")
    if datasets:
        lines += ["## Training data and licences", "",
                  "The weights were trained on these datasets; their terms may restrict what the model can be used "
                  "for (e.g. non-commercial use only).", "", "| dataset | what | licence |", "|---|---|---|"]
        lines += [f"| {name} | {what} | {licence} |" for name, what, licence in _dataset_rows(datasets, training_config)]
        lines.append("")
    if test:
        stage = f" (the {metrics['best_stage']} model)" if isinstance(metrics, dict) and "best_stage" in metrics else ""
        lines += ["## Test metrics", "", f"Each dataset's own test split{stage}; weighted-F1 is MELD's convention, UAR "
                  "the unweighted average recall.", "",
                  "| dataset | " + " | ".join(title for _, title in METRIC_COLUMNS) + " |",
                  "|---|" + "---:|" * len(METRIC_COLUMNS)]
        lines += [f"| {name} | " + " | ".join(_number(values.get(key)) for key, _ in METRIC_COLUMNS) + " |"
                  for name, values in test.items()]
        lines.append("")
    paired = metrics.get("paired_test") if isinstance(metrics, dict) else None
    if paired:
        lines += ["Label-matched modality subsets of the test sets (the fused answer):", "",
                  "| modalities | n | accuracy | weighted-F1 | UAR |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | " + " | ".join(_number(values.get(k)) for k in ("n", "accuracy", "weighted_f1", "uar")) + " |"
                  for name, values in paired.items() if isinstance(values, dict)]
        lines.append("")
    if training_config:
        lines += ["## Training config", "", "The run's `config.yaml` (local data paths left out):", "", "```yaml",
                  yaml.safe_dump(_without_local_paths(training_config), sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)


def _datasets(metrics: dict | None, training_config: dict | None) -> list[str]:
    data = (training_config or {}).get("data") or {}
    if data.get("datasets"):
        return list(data["datasets"])
    return list(_test_metrics(metrics))


def _test_metrics(metrics: dict | None) -> dict:
    """{dataset: metrics} of the final model: metrics.json's best stage, or `metrics` itself when it is that table."""
    if not isinstance(metrics, dict):
        return {}
    table = metrics.get(metrics.get("best_stage")) if "best_stage" in metrics else metrics
    return {name: values for name, values in (table or {}).items() if isinstance(values, dict) and "accuracy" in values}


def _dataset_rows(datasets: list[str], training_config: dict | None) -> list[tuple[str, str, str]]:
    extra = {entry.get("name"): entry for entry in ((training_config or {}).get("data") or {}).get("extra") or []
             if isinstance(entry, dict)}
    rows = []
    for name in datasets:
        if name in DATASETS:
            rows.append(DATASETS[name][:3])
        else:
            modality = extra.get(name, {}).get("modality", "?")
            rows.append((name, f"{modality}: a corpus read from a manifest", "its own terms (not recorded by the run)"))
    return rows


def _without_local_paths(training_config: dict) -> dict:
    values = copy.deepcopy(training_config)
    data = values.get("data")
    if isinstance(data, dict):
        for key in _PATH_KEYS:
            data.pop(key, None)
        for entry in data.get("extra") or []:
            if isinstance(entry, dict):
                entry.pop("manifest", None)
                entry.pop("root", None)
    return values


def _example_input(config: EmoXFormerConfig) -> str:
    return {"text": 'text="I can\'t believe it, that\'s wonderful!"', "audio": 'audio="speech.wav"',
            "vision": 'image="face.jpg"'}[config.modalities[0]]


def _example_option(config: EmoXFormerConfig) -> str:
    return {"text": '--text "I can\'t believe it, that\'s wonderful!"', "audio": "--audio speech.wav",
            "vision": "--image face.jpg"}[config.modalities[0]]


def _number(value) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.3f}"
