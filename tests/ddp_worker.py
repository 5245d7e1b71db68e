"""Train on the sample data in one process or under torchrun, recording each rank's draws of the first epoch.

Usage: python ddp_worker.py OUT DATA [KEY=VALUE ...]   (run by tests/test_distributed.py)
"""
import json
import sys
from pathlib import Path

import lightning as L

from emoxformer.config import load_config
from emoxformer.training.run import TwoStageTrainer


class DrawRecorder(L.Callback):
    def __init__(self, out: Path):
        self.out, self.stage = out, 0

    def on_train_start(self, trainer, pl_module):
        self.stage += 1
        self.ids = []
        self.draws = trainer.train_dataloader.sampler.epoch_draws()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0:
            self.ids.extend(batch["ids"])

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            record = {"world_size": trainer.world_size, "draws": self.draws, "ids": self.ids}
            (self.out / f"draws_stage{self.stage}_rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    out, data, overrides = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    out.mkdir(parents=True, exist_ok=True)
    config = load_config("quickstart", [f"data.root={data}", *overrides])
    TwoStageTrainer(config, out, progress=False, extra_callbacks=[DrawRecorder(out)]).run()
