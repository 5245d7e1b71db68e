"""Running a model over prepared samples in batches, on any device."""
from __future__ import annotations

import torch

from .config import MODALITIES
from .modeling import EmoXFormer


@torch.no_grad()
def logits_in_batches(model: EmoXFormer, samples: list[dict], collate, device: torch.device, batch_size: int,
                      fusion: str | None = None) -> torch.Tensor:
    """Logits [n, classes] (float, on the host) for prepared samples, collated and run `batch_size` at a time."""
    return torch.cat([model(move_to(collate(samples[start:start + batch_size]), device), fusion=fusion).logits.float().cpu()
                      for start in range(0, len(samples), batch_size)])


@torch.no_grad()
def probabilities_in_batches(model: EmoXFormer, samples: list[dict], collate, device: torch.device, batch_size: int,
                             fusion: str | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Calibrated probabilities [n, classes] of prepared samples and, per modality, each modality's own calibrated
    probabilities on the samples that have it (other rows NaN); on the host."""
    fused, alone = [], {m: [] for m in model.modalities}
    for start in range(0, len(samples), batch_size):
        batch = move_to(collate(samples[start:start + batch_size]), device)
        output = model(batch, fusion=fusion)
        fused.append(model.probabilities(output.logits, batch["present"]).cpu())
        for column, modality in enumerate(MODALITIES):
            if modality not in alone:
                continue
            rows = batch["present"][:, column].cpu()
            values = torch.full_like(fused[-1], float("nan"))
            if modality in output.modality_logits:
                calibrated = (output.modality_logits[modality].float() / model.modality_temperature(modality)).softmax(-1)
                values[rows] = calibrated.cpu()[rows]
            alone[modality].append(values)
    return torch.cat(fused), {m: torch.cat(parts) for m, parts in alone.items()}


def move_to(batch: dict, device: torch.device) -> dict:
    """A collated batch on `device` (nested dicts of tensors; ids stay on the host)."""
    if device.type == "cpu":
        return batch
    return {k: move_to(v, device) if isinstance(v, dict) else v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}
