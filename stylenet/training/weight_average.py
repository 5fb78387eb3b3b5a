"""An exponential moving average of the trained weights (`ema_decay=`), the model a run exports.

At batch 1 each step's weights bounce around: the held-out objective of successive checkpoints of
one run differs by several percent. Their average is steadier and better (docs/speed.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class WeightAverage(Callback):
    """Keeps avg <- decay * avg + (1 - decay) * weights after every training step, for the
    module's trainable parameters. Validation and the end of training see the average (so the
    export and the final last.ckpt hold it); during training the module keeps its own weights.
    The average is saved in checkpoints and restored on resume; a run resumed from a checkpoint
    without one starts it from the restored weights."""

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay={decay}: expected a number between 0 and 1 (0: off)")
        self.decay = decay
        self.average: dict[str, torch.Tensor] | None = None

    @staticmethod
    def _trained(pl_module: pl.LightningModule) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in pl_module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any
    ) -> None:
        params = self._trained(pl_module)
        if self.average is None:
            self.average = {n: p.detach().clone() for n, p in params.items()}
            return
        for n, p in params.items():
            self.average[n].lerp_(p.detach(), 1.0 - self.decay)

    @torch.no_grad()
    def _swap(self, pl_module: pl.LightningModule) -> None:
        if self.average is None:
            return
        for n, p in self._trained(pl_module).items():
            mine = p.detach().clone()
            p.copy_(self.average[n])
            self.average[n] = mine

    @contextmanager
    def swapped_in(self, pl_module: pl.LightningModule) -> Iterator[None]:
        """The average in the module's weights for the duration (a snapshot of what the run
        would export now)."""
        self._swap(pl_module)
        try:
            yield
        finally:
            self._swap(pl_module)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swap(pl_module)  # the average in, the training weights kept aside

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._swap(pl_module)

    @torch.no_grad()
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.average is not None:
            for n, p in self._trained(pl_module).items():
                p.copy_(self.average[n])

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.average = state_dict.get("average")
