"""Running a model over prepared samples in batches, on any device."""
from __future__ import annotations

import torch

from .modeling import EmoXFormer


@torch.no_grad()
def logits_in_batches(model: EmoXFormer, samples: list[dict], collate, device: torch.device, batch_size: int) -> torch.Tensor:
    """Logits [n, classes] (float, on the host) for prepared samples, collated and run `batch_size` at a time."""
    return torch.cat([model(move_to(collate(samples[start:start + batch_size]), device)).logits.float().cpu()
                      for start in range(0, len(samples), batch_size)])


def move_to(batch: dict, device: torch.device) -> dict:
    """A collated batch on `device` (nested dicts of tensors; ids stay on the host)."""
    if device.type == "cpu":
        return batch
    return {k: move_to(v, device) if isinstance(v, dict) else v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}
