"""What a trained model learns about its own answers after training: each modality's class prior in training,
each modality's softmax temperature on its own validation split, late fusion's weight per modality on real pairs,
and which fusion answers multimodal input."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..data import registry
from ..model.batching import probabilities_in_batches
from ..model.config import MODALITIES
from ..model.modeling import EmoXFormer
from .evaluate import evaluation_device, multimodal_accuracy, predict, row_samples


def training_priors(records_by_dataset: dict, num_classes: int) -> dict[str, list[float]]:
    """Each modality's class distribution over the training splits of the datasets that hold it (add-one smoothed; a
    multimodal corpus's rows count for each of its modalities)."""
    counts: dict[str, np.ndarray] = {}
    for name, records in records_by_dataset.items():
        labels = np.array([r.label for r in records.train], dtype=np.int64)
        for modality in registry.dataset_modalities(name):
            counts[modality] = counts.get(modality, np.zeros(num_classes)) + np.bincount(labels, minlength=num_classes)[:num_classes]
    return {m: ((c + 1) / (c + 1).sum()).round(6).tolist() for m, c in counts.items()}


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The softmax temperature within `bounds` that minimises validation negative log-likelihood (Guo et al., 2017).

    With b = 1/T the loss, mean(logsumexp(b z) - b z_label), is convex in b, so its derivative, mean(E_softmax(b z)[z]
    - z_label), rises with b: bisection on its sign (in log b) finds the minimum, or the bound it lies beyond, in 62
    cheap evaluations, exactly and in milliseconds. (LBFGS on log T stopped 0.1-0.4 % away from the minimum and ran
    its 125 autograd evaluations on the flat loss of a model that has not learned yet.)"""
    z = logits.detach().double().cpu()
    if not len(z) or not torch.isfinite(z).all():
        raise ValueError(f"cannot fit a temperature to {len(z)} rows of logits" + (" with NaN or inf" if len(z) else ""))
    z_label = z.gather(1, labels.detach().cpu().long()[:, None]).squeeze(1)

    def slope(log_b: float) -> float:
        probabilities = (z * math.exp(log_b)).softmax(-1)
        return float(((probabilities * z).sum(-1) - z_label).mean())

    low, high = -math.log(bounds[1]), -math.log(bounds[0])  # log b for the largest and the smallest temperature
    if slope(low) >= 0:
        return bounds[1]
    if slope(high) <= 0:
        return bounds[0]
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if slope(middle) < 0 else (low, middle)
    return float(math.exp(-(low + high) / 2))


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


def fit_modality_weights(model: EmoXFormer, real_pairs: list[dict], collate, train_config,
                         batch_size: int = 64) -> dict[str, float]:
    """Late fusion's weight per modality (each in (0, 2), 1 at the start), fitted on real pairs (prepared rows with
    several modalities of one recording: a multimodal corpus's validation rows, see evaluate.real_pair_rows) by the
    negative log-likelihood of the fused answer; a video row counts once, its faces sharing it. A modality that adds
    nothing to the others on these recordings gets a weight near 0, one that repeats what another says a weight
    below 1. {} (every weight 1) when no row holds two of the model's modalities: the modalities are then taken as
    independent given the emotion, as in label-matched pairs. Call it after the temperatures are fitted; the
    weights scale calibrated, prior-corrected log-probabilities."""
    samples, labels, shares = row_samples(real_pairs, model.modalities, several_only=True)
    if not samples:
        return {}
    device = evaluation_device(train_config)
    was_training = model.training
    model.to(device).eval()
    _, alone = probabilities_in_batches(model, samples, collate, device, batch_size, fusion="late")
    model.train(was_training)
    log_ratios = {m: values.clamp_min(1e-12).log() - model.log_prior(m, "cpu") for m, values in alone.items()
                  if not values.isnan().all()}  # a row without the modality: NaN
    return fit_product_weights(log_ratios, torch.tensor(labels), torch.tensor(shares))


def fit_product_weights(log_ratios: dict[str, torch.Tensor], labels: torch.Tensor,
                       sample_weights: torch.Tensor | None = None) -> dict[str, float]:
    """The weights w_m in (0, 2) that minimise the (sample-weighted) cross-entropy of sum_m w_m * log_ratios[m]
    ([rows, classes] each: a modality's calibrated log-probabilities less its log prior, NaN in rows without it),
    starting from 1."""
    names = [m for m in MODALITIES if m in log_ratios]
    terms = torch.stack([log_ratios[m].nan_to_num(0.0) for m in names]).float()  # [modalities, rows, classes]
    share = torch.ones(len(labels)) if sample_weights is None else sample_weights.float()
    share = share / share.sum()
    raw = torch.zeros(len(names), requires_grad=True)  # w = 2 sigmoid(raw): 1 at raw = 0
    optimizer = torch.optim.LBFGS([raw], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        fused = ((2 * raw.sigmoid())[:, None, None] * terms).sum(0)
        loss = (torch.nn.functional.cross_entropy(fused, labels, reduction="none") * share).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return {m: round(float(2 * value.sigmoid()), 4) for m, value in zip(names, raw.detach())}


def reset_calibration(model: EmoXFormer) -> None:
    """Temperatures and late fusion's weights back to 1, so the logits a fit reads are the model's own."""
    model.config.temperature = 1.0
    model.config.modality_temperatures = {}
    model.config.modality_weights = {}


def calibrate_on_validation(model: EmoXFormer, datamodule, train_config, real_pairs: list[dict] = ()) -> dict:
    """Forget any earlier calibration, then fit the temperature over every validation sample and each modality's on
    its own validation rows, then late fusion's weights on `real_pairs` (validation rows with several modalities of
    one recording, see fit_modality_weights; none: every weight 1); returns the validation predictions
    (uncalibrated logits)."""
    reset_calibration(model)
    validation = predict(model, datamodule, "val", train_config)
    model.config.temperature = fit_temperature(validation["logits"], validation["labels"])
    model.config.modality_temperatures = fit_modality_temperatures(validation, model)
    model.config.modality_weights = fit_modality_weights(model, list(real_pairs), datamodule.collate, train_config,
                                                         datamodule.eval_batch_size)
    return validation
