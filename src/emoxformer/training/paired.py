"""The paired test: label-matched multimodal test examples, scored for every subset of modalities."""
from __future__ import annotations

import itertools

import numpy as np
import torch

from ..data.datamodule import EmoDataModule
from ..data.datasets import TrainingSet, merge_samples
from ..data.pairing import label_matched_examples
from ..evaluation import classification_metrics
from ..model.config import MODALITIES
from ..model.modeling import EmoXFormer
from .run import evaluation_device, logits_in_batches

SUBSET_NAMES = {"text": "t", "audio": "a", "vision": "v"}


def modality_subsets() -> list[tuple[str, ...]]:
    return [s for r in range(1, len(MODALITIES) + 1) for s in itertools.combinations(MODALITIES, r)]


def paired_test_examples(datamodule: EmoDataModule, seed: int = 0) -> list[dict]:
    """One example per label-matched tuple of test samples (no sample used twice), with a fixed seed."""
    parts = [datamodule.splits[name]["test"] for name in datamodule.names]
    labels = [np.array([r.label for r in part.records]) for part in parts]
    examples = label_matched_examples(labels, np.random.default_rng(seed), cycle=False)
    tests = TrainingSet(parts)  # the same global indexing the examples use; test splits are never augmented
    return [merge_samples([tests[index] for index in example]) for example in examples]

@torch.no_grad()
def paired_test_metrics(model: EmoXFormer, datamodule: EmoDataModule, train_config, seed: int = 0, batch_size: int = 64) -> dict:
    """Metrics keyed by subset name ("t", "a", "v", "t+a", ..., "t+a+v") on the paired test examples."""
    examples = paired_test_examples(datamodule, seed)
    if not examples:
        return {}
    device = evaluation_device(train_config)
    was_training = model.training
    model.to(device).eval()
    target = torch.tensor([e["label"] for e in examples])
    results = {}
    for subset in modality_subsets():
        if any(all(m not in e for e in examples) for m in subset):
            continue  # a modality no chosen dataset provides
        samples = [{k: v for k, v in e.items() if k not in MODALITIES or k in subset} for e in examples]
        preds = logits_in_batches(model, samples, datamodule.collate, device, batch_size).argmax(-1)
        name = "+".join(SUBSET_NAMES[m] for m in subset)
        metrics = classification_metrics(preds, target)
        results[name] = {k: metrics[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "uar")}
    model.train(was_training)
    return results


def format_paired_table(paired: dict) -> str:
    lines = ["paired test (label-matched examples from the three test splits)",
             f"{'modalities':<12}{'n':>6}{'acc':>8}{'w-F1':>8}{'UAR':>8}"]
    for name, m in paired.items():
        lines.append(f"{name:<12}{m['n']:>6}{m['accuracy']:>8.3f}{m['weighted_f1']:>8.3f}{m['uar']:>8.3f}")
    return "\n".join(lines)
