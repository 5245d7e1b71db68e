"""Evaluation of a trained model: predictions on a split, per-dataset metrics, temperature calibration, the paired
test and the report text."""
from __future__ import annotations

import itertools
import os
import random
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import registry
from ..data.datamodule import EmoDataModule
from ..data.datasets import TrainingSet, merge_samples
from ..data.multimodal import MULTI
from ..data.pairing import label_matched_examples
from ..labels import EMOTIONS
from ..errors import ConfigError, no_cuda_gpu
from ..metrics import classification_metrics, format_metrics_table, metrics_by_dataset
from ..model.batching import logits_in_batches, move_to
from ..model.config import MODALITIES
from ..model.modeling import FUSIONS, EmoXFormer

SUBSET_NAMES = {"text": "t", "audio": "a", "vision": "v"}


def evaluation_device(train_config) -> torch.device:
    """The GPU of this process when there is one and the accelerator allows it, else the CPU; ConfigError when a GPU
    is asked for and there is none (the CPU would answer the same, hours later, without saying so)."""
    if train_config.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if train_config.accelerator in ("gpu", "cuda"):
        raise ConfigError(no_cuda_gpu(f"accelerator {train_config.accelerator}", "cpu or auto"))
    return torch.device("cpu")


@torch.no_grad()
def predict(model: EmoXFormer, datamodule: EmoDataModule, split: str, train_config, progress: bool = False) -> dict:
    """Logits and calibrated probabilities for every sample of a split (all chosen datasets), in loader order.

    Runs in this process on one device (rank 0 evaluates after distributed training)."""
    device = evaluation_device(train_config)
    was_training = model.training
    model.to(device).eval()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16 if "bf16" in str(train_config.precision) else torch.float16,
                              enabled=device.type == "cuda" and "mixed" in str(train_config.precision))
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    outputs = []
    for batch in tqdm(loader, desc=f"predicting {split}", disable=not progress, leave=False):
        with autocast:
            logits = model(move_to(batch, device)).logits.float()
        outputs.append({"logits": logits.cpu(), "probabilities": model.probabilities(logits, batch["present"]).cpu(),
                        "labels": batch["labels"], "dataset": batch["dataset"], "present": batch["present"].cpu(),
                        "ids": batch["ids"]})
    model.train(was_training)
    return {
        "logits": torch.cat([o["logits"] for o in outputs]),
        "probabilities": torch.cat([o["probabilities"] for o in outputs]),
        "labels": torch.cat([o["labels"] for o in outputs]),
        "dataset": torch.cat([o["dataset"] for o in outputs]),
        "present": torch.cat([o["present"] for o in outputs]),
        "ids": [i for o in outputs for i in o["ids"]],
    }


def evaluate_predictions(predictions: dict, datamodule: EmoDataModule) -> dict:
    return metrics_by_dataset(predictions["probabilities"].argmax(-1), predictions["labels"], predictions["dataset"],
                              datamodule.dataset_indices)


# ---------------------------------------------------------------------- the paired test
def modality_subsets() -> list[tuple[str, ...]]:
    return [s for r in range(1, len(MODALITIES) + 1) for s in itertools.combinations(MODALITIES, r)]


def paired_test_examples(datamodule: EmoDataModule, seed: int = 0, split: str = "test") -> list[dict]:
    """One example per label-matched tuple of `split` samples, one per modality (no sample used twice), with a
    fixed seed."""
    # A multimodal corpus's rows are real pairs, scored as they are (recording_metrics), not matched by label.
    names = single_modality_datasets(datamodule)
    parts = [datamodule.splits[name][split] for name in names]
    labels = [np.array([r.label for r in part.records]) for part in parts]
    modalities = [registry.dataset_modality(name, datamodule.data_config) for name in names]
    examples = label_matched_examples(labels, np.random.default_rng(seed), cycle=False, modality_per_part=modalities)
    tests = TrainingSet(parts)  # the same global indexing the examples use; evaluation splits are never augmented
    return [merge_samples([tests[index] for index in example]) for example in examples]


def single_modality_datasets(datamodule: EmoDataModule) -> list[str]:
    return [n for n in datamodule.names if registry.dataset_modality(n, datamodule.data_config) != MULTI]


def recording_metrics(model: EmoXFormer, datamodule: EmoDataModule, train_config, split: str = "test",
                      batch_size: int = 64) -> dict[str, dict]:
    """Per multimodal corpus of the run: per fusion, the metrics of every modality subset on the `split` rows that
    hold it (each modality alone, each pair, all), as `evaluate --manifest` scores such a corpus."""
    results = {}
    for name in datamodule.names:
        if registry.dataset_modality(name, datamodule.data_config) != MULTI:
            continue
        rows = datamodule.splits[name][split]
        results[name] = row_subset_metrics(model, [rows[i] for i in range(len(rows))], datamodule.collate,
                                           train_config, batch_size)
    return results


@torch.no_grad()
def paired_test_metrics(model: EmoXFormer, datamodule: EmoDataModule, train_config, seed: int = 0, batch_size: int = 64,
                        split: str = "test", fusions: Sequence[str] = FUSIONS) -> dict[str, dict]:
    """Per fusion ("model", "late"): metrics keyed by subset name ("t", "a", "v", "t+a", ..., "t+a+v") on the
    label-matched examples of `split`. Single-modality subsets are the same for both fusions."""
    examples = paired_test_examples(datamodule, seed, split)
    return subset_metrics(model, examples, datamodule.collate, train_config, batch_size, fusions)


@torch.no_grad()
def subset_metrics(model: EmoXFormer, examples: list[dict], collate, train_config, batch_size: int = 64,
                   fusions: Sequence[str] = FUSIONS) -> dict[str, dict]:
    """Per fusion: metrics of every modality subset the examples have (each subset of each example's modalities)."""
    if not examples:
        return {}
    device = evaluation_device(train_config)
    was_training = model.training
    model.to(device).eval()
    target = torch.tensor([e["label"] for e in examples])
    results: dict[str, dict] = {fusion: {} for fusion in fusions}
    for subset in modality_subsets():
        if any(all(m not in e for e in examples) for m in subset):
            continue  # a modality no chosen dataset provides
        samples = [{k: v for k, v in e.items() if k not in MODALITIES or k in subset} for e in examples]
        name = "+".join(SUBSET_NAMES[m] for m in subset)
        for fusion in fusions if len(subset) > 1 else fusions[:1]:
            preds = logits_in_batches(model, samples, collate, device, batch_size, fusion=fusion).argmax(-1)
            metrics = classification_metrics(preds, target)
            results[fusion][name] = {k: metrics[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "uar")}
        for fusion in fusions[1:] if len(subset) == 1 else ():
            results[fusion][name] = dict(results[fusions[0]][name])
    model.train(was_training)
    return results


@torch.no_grad()
def row_subset_metrics(model: EmoXFormer, rows: list[dict], collate, train_config, batch_size: int = 64,
                       fusions: Sequence[str] = FUSIONS) -> dict[str, dict]:
    """Per fusion: metrics of every modality subset (of the model's modalities) on the rows that have all of that
    subset's modalities (so `n` may differ by subset). A row is a prepared example whose `vision` may be a list (the
    faces of a video's sampled frames): it is then one sample per face, with the row's other inputs, and the row's
    answer is the mean of their calibrated probabilities, as `predict --video` answers; other rows answer with
    their calibrated probabilities. Single-modality subsets are the same for both fusions."""
    from ..model.batching import probabilities_in_batches

    if not rows:
        return {}
    device = evaluation_device(train_config)
    was_training = model.training
    model.to(device).eval()
    results: dict[str, dict] = {fusion: {} for fusion in fusions}
    for subset in modality_subsets():
        if any(m not in model.modalities for m in subset):
            continue
        chosen = [row for row in rows if all(row.get(m) is not None for m in subset)]
        if not chosen:
            continue
        samples, owners = [], []
        for number, row in enumerate(chosen):
            row_parts = row_face_samples(row, subset)
            samples.extend(row_parts)
            owners.extend([number] * len(row_parts))
        owner = torch.tensor(owners)
        counts = torch.bincount(owner, minlength=len(chosen)).clamp(min=1)[:, None].float()
        target = torch.tensor([row["label"] for row in chosen])
        name = "+".join(SUBSET_NAMES[m] for m in subset)
        for fusion in fusions if len(subset) > 1 else fusions[:1]:
            fused, _ = probabilities_in_batches(model, samples, collate, device, batch_size, fusion=fusion)
            answers = torch.zeros((len(chosen), fused.shape[1])).index_add_(0, owner, fused.float()) / counts
            metrics = classification_metrics(answers.argmax(-1), target)
            results[fusion][name] = {k: metrics[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "uar")}
        for fusion in fusions[1:] if len(subset) == 1 else ():
            results[fusion][name] = dict(results[fusions[0]][name])
    model.train(was_training)
    return results


def row_face_samples(row: dict, subset: Sequence[str]) -> list[dict]:
    """The samples of a prepared row's `subset` modalities: one, or for a video row (`vision` a list of the faces of
    its sampled frames) one per face, each with the row's other inputs."""
    faces = row["vision"] if "vision" in subset else [None]
    samples = []
    for face in faces if isinstance(faces, list) else [faces]:
        sample = {"id": row.get("id", ""), "label": row["label"], "dataset": 0,
                  **{m: row[m] for m in subset if m != "vision"}}
        if face is not None:
            sample["vision"] = face
        samples.append(sample)
    return samples


def row_samples(rows: list[dict], modalities: Sequence[str], several_only: bool = False
                ) -> tuple[list[dict], list[int], list[float]]:
    """Every row's samples over the `modalities` it has (row_face_samples), their labels and their share of their
    row (1 / the row's samples: a video row counts once, whatever its faces); `several_only`: rows with two or more
    of them only."""
    samples, labels, shares = [], [], []
    for row in rows:
        has = [m for m in modalities if row.get(m) is not None]
        if not has or (several_only and len(has) < 2):
            continue
        parts = row_face_samples(row, has)
        samples.extend(parts)
        labels.extend([row["label"]] * len(parts))
        shares.extend([1.0 / len(parts)] * len(parts))
    return samples, labels, shares


def real_pair_rows(datamodule: EmoDataModule, split: str = "val") -> list[dict]:
    """The rows of `split` that hold modalities of one recording: the multimodal corpora's rows."""
    rows = []
    for name in datamodule.names:
        if registry.dataset_modality(name, datamodule.data_config) == MULTI:
            part = datamodule.splits[name][split]
            rows.extend(part[i] for i in range(len(part)))
    return rows


def transcript_examples(datamodule: EmoDataModule, processor, split: str = "test") -> list[dict]:
    """RAVDESS clips of `split` with the sentence each speaks as its text (a real text + speech pair), prepared as
    the Predictor prepares typed text."""
    from ..data.ravdess import transcript

    clips = datamodule.splits["ravdess"][split]
    examples = []
    for index, record in enumerate(clips.records):
        sample = dict(clips[index])
        sample["text"] = processor.prepare_text(transcript(record), None, None, [])
        examples.append(sample)
    return examples


@torch.no_grad()
def transcript_metrics(model: EmoXFormer, datamodule: EmoDataModule, processor, train_config,
                       split: str = "test") -> dict[str, dict]:
    """Per fusion: text alone, speech alone and both on RAVDESS `split` clips with their spoken sentences ({} when
    the model lacks text or speech, or RAVDESS is not in the run)."""
    if "ravdess" not in datamodule.names or not {"text", "audio"} <= set(model.modalities):
        return {}
    return subset_metrics(model, transcript_examples(datamodule, processor, split), datamodule.collate, train_config)


def multimodal_accuracy(paired: dict) -> float | None:
    """The mean accuracy over the subsets of two or more modalities (None when there are none)."""
    values = [m["accuracy"] for name, m in paired.items() if "+" in name]
    return sum(values) / len(values) if values else None


# ---------------------------------------------------------------------- report text
def format_report(metrics: dict, stages: Sequence[str]) -> str:
    """The test-metrics table of each of `stages` found in a run's metrics, and the paired-test table."""
    tables = [format_metrics_table(metrics[s], f"test metrics, best {s} model") for s in stages if s in metrics]
    if metrics.get("paired_test"):
        tables.append(format_paired_table(metrics["paired_test"], metrics.get("paired_test_late"),
                                          metrics.get("inference_fusion")))
    if metrics.get("transcripts"):
        tables.append(format_paired_table(metrics["transcripts"], metrics.get("transcripts_late"),
                                          title="RAVDESS test clips with the sentence each speaks (text + speech of one recording)"))
    for name, per_fusion in (metrics.get("recordings") or {}).items():
        tables.append(format_paired_table(per_fusion["model"], per_fusion.get("late"),
                                          title=f"{name} test rows (multimodal recordings), each modality subset"))
    return "\n\n".join(tables)


def format_paired_table(paired: dict, late: dict | None = None, chosen: str | None = None,
                        title: str = "paired test (label-matched examples from the test splits)") -> str:
    """One row per modality subset: the model's fused answer and, when given, late fusion's beside it."""
    header = f"{'modalities':<12}{'n':>6}{'acc':>8}{'w-F1':>8}{'UAR':>8}"
    if late:
        header += f"{'late acc':>10}{'late w-F1':>11}"
    lines = [title + (f"; the model answers with {chosen} fusion by default (it validated better)" if chosen else ""), header]
    for name, m in paired.items():
        line = f"{name:<12}{m['n']:>6}{m['accuracy']:>8.3f}{m['weighted_f1']:>8.3f}{m['uar']:>8.3f}"
        if late and name in late:
            line += f"{late[name]['accuracy']:>10.3f}{late[name]['weighted_f1']:>11.3f}"
        lines.append(line)
    return "\n".join(lines)


def example_lines(predictions: dict, dataset_names: Sequence[str], count: int = 5, seed: int = 0) -> list[str]:
    """The reference code's 'Sample k: True = Happy, Pred = Happy' lines for random test samples."""
    rng = random.Random(seed)
    chosen = rng.sample(range(len(predictions["ids"])), min(count, len(predictions["ids"])))
    lines = []
    for k, i in enumerate(chosen, start=1):
        true = EMOTIONS[int(predictions["labels"][i])].capitalize()
        pred = EMOTIONS[int(predictions["probabilities"][i].argmax())].capitalize()
        name = dataset_names[int(predictions["dataset"][i])]
        lines.append(f"Sample {k}: True = {true:<8} Pred = {pred:<8} ({name}: {predictions['ids'][i]})")
    return lines
