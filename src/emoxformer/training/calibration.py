"""What a trained model learns about its own answers after training: each modality's class prior in training,
each modality's softmax temperature on its own validation split, and which fusion answers multimodal input."""
from __future__ import annotations

import numpy as np


from ..data import registry
from ..model.modeling import EmoXFormer
from .evaluate import fit_temperature, multimodal_accuracy, predict


def training_priors(records_by_dataset: dict, num_classes: int) -> dict[str, list[float]]:
    """Each modality's class distribution over the training splits of the datasets that hold it (add-one smoothed; a
    multimodal corpus's rows count for each of its modalities)."""
    counts: dict[str, np.ndarray] = {}
    for name, records in records_by_dataset.items():
        labels = np.array([r.label for r in records.train], dtype=np.int64)
        for modality in registry.dataset_modalities(name):
            counts[modality] = counts.get(modality, np.zeros(num_classes)) + np.bincount(labels, minlength=num_classes)[:num_classes]
    return {m: ((c + 1) / (c + 1).sum()).round(6).tolist() for m, c in counts.items()}


def fit_modality_temperatures(validation: dict, model: EmoXFormer) -> dict[str, float]:
    """One temperature per modality, fitted on the single-modality validation rows of that modality."""
    present = validation["present"].bool()
    single = present.sum(-1) == 1
    temperatures = {}
    for column, modality in enumerate(("text", "audio", "vision")):
        rows = single & present[:, column]
        if modality in model.modalities and rows.any():
            temperatures[modality] = fit_temperature(validation["logits"][rows], validation["labels"][rows])
    return temperatures


def choose_inference_fusion(paired_validation: dict[str, dict]) -> dict:
    """The fusion ("model" or "late") with the higher mean accuracy over the multimodal subsets of the label-matched
    validation examples; late fusion, the simpler, on a tie. Returns the choice and both scores."""
    scores = {fusion: multimodal_accuracy(values) for fusion, values in paired_validation.items()}
    if any(value is None for value in scores.values()) or not scores:
        return {"fusion": "model", "validation_accuracy": scores}
    chosen = "model" if scores.get("model", -1.0) > scores.get("late", -1.0) else "late"
    return {"fusion": chosen, "validation_accuracy": scores}


def reset_calibration(model: EmoXFormer) -> None:
    """Temperatures back to 1, so the logits a fit reads are the model's own."""
    model.config.temperature = 1.0
    model.config.modality_temperatures = {}


def calibrate_on_validation(model: EmoXFormer, datamodule, train_config) -> dict:
    """Forget any earlier calibration, then fit the temperature over every validation sample and each modality's on
    its own validation rows; returns the validation predictions (uncalibrated logits)."""
    reset_calibration(model)
    validation = predict(model, datamodule, "val", train_config)
    model.config.temperature = fit_temperature(validation["logits"], validation["labels"])
    model.config.modality_temperatures = fit_modality_temperatures(validation, model)
    return validation
