"""The LightningModule: one stage of training (loss, optimiser, scheduler, per-dataset validation metrics)."""
from __future__ import annotations

import math

import lightning as L
import torch

from ..metrics import metrics_by_dataset
from ..model.losses import build_loss
from ..model.modeling import EmoXFormer
from .optimizer import keep_kernel_choice, use_fused_adamw
from .pairs import label_matched_rows, pair_labels


class EmoXFormerModule(L.LightningModule):
    def __init__(self, model: EmoXFormer, dataset_names: list[str], train_config, stage_config):
        super().__init__()
        self.model = model
        self.train_config, self.stage_config = train_config, stage_config
        self.loss_fn = build_loss(train_config.loss, train_config.focal_gamma)
        self.dataset_indices = {name: index for index, name in enumerate(dataset_names)}  # as the datamodule numbers them
        weights = getattr(train_config, "dataset_weights", None) or {}
        self.sample_loss_fn = build_loss(train_config.loss, train_config.focal_gamma, reduction="none") if weights else None
        # Per dataset index, then 1 for paired examples (index -1 reads the last entry).
        self.register_buffer("dataset_weights", torch.tensor([float(weights.get(n, 1.0)) for n in dataset_names] + [1.0]),
                             persistent=False)
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch).logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        weight = self.train_config.fusion_pairs
        pair_rows = label_matched_rows(batch["labels"], batch["present"]) if weight > 0 and len(self.model.modalities) > 1 else {}
        output = self.model(batch, fusion="model", pair_rows=pair_rows or None)
        logits = output.logits
        loss = self.training_loss(logits, batch["labels"], batch["dataset"])
        accuracy = (logits.argmax(-1) == batch["labels"]).float().mean()
        size = len(batch["labels"])
        if output.pair_logits is not None:
            pair_loss = self.loss_fn(output.pair_logits, pair_labels(batch["labels"], pair_rows))
            self.log("train/pair_loss", pair_loss, on_step=False, on_epoch=True, batch_size=len(output.pair_logits))
            loss = loss + weight * pair_loss
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train/acc", accuracy, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def training_loss(self, logits: torch.Tensor, labels: torch.Tensor, dataset: torch.Tensor) -> torch.Tensor:
        """The loss, each sample weighted by its dataset's `train.dataset_weights` (a weighted mean)."""
        if self.sample_loss_fn is None:
            return self.loss_fn(logits, labels)
        weights = self.dataset_weights[dataset]
        return (self.sample_loss_fn(logits, labels) * weights).sum() / weights.sum()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.model(batch).logits
        self.log("val/loss", self.loss_fn(logits, batch["labels"]), on_epoch=True, batch_size=len(batch["labels"]))
        self._val_outputs.append((logits.argmax(-1), batch["labels"], batch["dataset"]))

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        # Validation loaders are not sharded: every rank sees the whole validation set and computes the same metrics.
        preds, labels, dataset = (torch.cat(parts) for parts in zip(*self._val_outputs))
        self._val_outputs.clear()
        metrics = metrics_by_dataset(preds.cpu(), labels.cpu(), dataset.cpu(), self.dataset_indices)
        for name, values in metrics.items():
            for key in ("accuracy", "weighted_f1", "macro_f1", "uar"):
                self.log(f"val/{name}/{key}", values[key])
        score = sum(m["weighted_f1"] for m in metrics.values()) / max(len(metrics), 1)
        self.log("val/score", score, prog_bar=True)
        # Each dataset weighted by its validation size: a small split (RAVDESS's 120 clips) cannot outvote a large one.
        samples = sum(m["n"] for m in metrics.values())
        self.log("val/score_by_size", sum(m["weighted_f1"] * m["n"] for m in metrics.values()) / max(samples, 1))

    def configure_optimizers(self):
        groups = self.parameter_groups()
        device = next((p.device for group in groups for p in group["params"]), torch.device("cpu"))
        optimizer = torch.optim.AdamW(groups, lr=self.stage_config.lr, weight_decay=self.train_config.weight_decay,
                                      fused=use_fused_adamw(device.type, self.train_config))
        if self.stage_config.schedule == "cosine":
            total = max(1, int(self.trainer.estimated_stepping_batches))
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, int(self.stage_config.warmup * total)))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.train_config.plateau_factor, patience=self.train_config.plateau_patience,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"}}

    def lr_scheduler_step(self, scheduler, metric) -> None:
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):  # stepped in on_train_epoch_end
            scheduler.step()

    def on_train_epoch_end(self) -> None:
        # The plateau schedule steps here, before the end-of-epoch checkpoint (callbacks.SaveLastCheckpoint) is
        # written, not after it as Lightning would: a resumed stage does not replay that step, and would count its
        # epochs one behind an uninterrupted one. The next epoch's learning rate is the same either way.
        for config in self.trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                value = self.trainer.callback_metrics.get(config.monitor)
                if value is not None:
                    config.scheduler.step(float(value))

    def on_train_start(self) -> None:
        # After Lightning restored a resumed stage's optimiser state, whose groups carry the kernel they were saved with.
        for optimizer in self.trainer.optimizers:
            keep_kernel_choice(optimizer)

    def parameter_groups(self) -> list[dict]:
        """Trainable parameters, grouped by learning rate: each encoder named in the stage's `encoder_lr` at its
        own rate, everything else at the stage's `lr`."""
        encoder_lr = self.stage_config.encoder_lr
        groups, taken = [], set()
        for modality, lr in encoder_lr.items():
            if modality not in self.model.encoders:
                continue
            params = [p for p in self.model.encoders[modality].parameters() if p.requires_grad]
            taken.update(id(p) for p in params)
            if params:
                groups.append({"params": params, "lr": float(lr), "name": f"encoder.{modality}"})
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) not in taken]
        return [{"params": rest, "lr": self.stage_config.lr, "name": "model"}] + groups


def warmup_cosine(total_steps: int, warmup_steps: int):
    """LambdaLR factor: linear from ~0 to 1 over `warmup_steps`, then cosine down to 0 at `total_steps`."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
