"""The LightningModule: a transform net trained against a frozen loss network for one style.

Built by `python train.py style=<name>`; usable directly from a notebook or a test.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torchvision.utils import make_grid

from stylenet.files.images import save_image, to_pil
from stylenet.losses import temporal
from stylenet.losses.loss_net import LossNet
from stylenet.losses.objective import StyleObjective
from stylenet.nets.transform_net import TransformNet, as_seen

log = logging.getLogger(__name__)
FINITE_CHECK_EVERY = 10  # steps between host syncs that check the loss stayed finite


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message says at which step."""


class GuardedModule(pl.LightningModule):
    """Stops training on a NaN/inf loss and keeps frozen networks (`FROZEN` key prefixes) out of
    checkpoints; the base of every kind's LightningModule."""

    FROZEN: tuple[str, ...] = ("loss_net.", "objective.loss_net.")

    def __init__(self) -> None:
        super().__init__()
        # first step whose loss was not finite (-1: none); kept on the device to avoid a sync
        self.register_buffer("first_bad_step", torch.tensor(-1), persistent=False)
        self._grid_step = -1  # global step of the last validation grid saved

    def on_train_end(self) -> None:
        self.final_grid()

    def on_fit_end(self) -> None:
        """A run resumed at its last step skips the training loop and on_train_end: grid here."""
        self.final_grid()

    @torch.no_grad()
    def final_grid(self) -> None:
        """The validation grid for the last step, unless this process saved one at that step.

        Validation runs every val_check_interval steps, so without this a run whose max_steps is
        not a multiple of it would end without a picture of its final weights. Only the grid (no
        val/* metrics): Lightning's logging is closed in these hooks. Skipped when validation is
        off (limit_val_batches=0) or there is no datamodule to take the photos from. A run resumed
        at its end logs the grid again (to its new W&B run; same weights, same picture).
        """
        trainer = self.trainer
        dm = trainer.datamodule
        if self.global_rank != 0 or trainer.limit_val_batches == 0 or dm is None:
            return
        if self._grid_step == self.global_step:  # validation ran at the last step
            return
        try:
            with trainer.precision_plugin.forward_context():
                self._final_picture(next(iter(dm.val_dataloader())))
        except Exception as e:  # a picture is not worth losing the export that follows fit()
            log.warning("no final validation grid at step %d: %s", self.global_step, e)
            return
        log.info("final validation grid: %s", self._grid_path())

    def _final_picture(self, batch: object) -> None:
        """Save the validation grid of one validation batch (each kind's own picture)."""
        raise NotImplementedError

    def _grid_path(self) -> Path:
        return Path(self.trainer.default_root_dir) / "val" / f"step_{self.global_step:07d}.png"

    def track_finite(self, loss: torch.Tensor) -> None:
        """Note a non-finite training loss; raise NonFiniteLossError every few steps if so."""
        bad = ~torch.isfinite(loss.detach()) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad, self.global_step + 1, self.first_bad_step)
        if self.global_step % FINITE_CHECK_EVERY == 0:
            self.check_finite()

    def check_finite(self) -> None:
        """Raise NonFiniteLossError if any loss so far was NaN/inf (one host sync)."""
        step = int(self.first_bad_step)
        if step >= 0:
            raise NonFiniteLossError(
                f"the training loss became NaN/inf at step {step}; training stopped "
                "(lower lr or the loss weights)"
            )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.check_finite()  # never overwrite a good checkpoint with NaN weights
        sd = checkpoint["state_dict"]
        for k in [k for k in sd if k.startswith(self.FROZEN)]:
            del sd[k]


class StyleTransferModule(GuardedModule):
    """Johnson et al. training: loss = content_weight*content + style_weight*style + tv_weight*tv.

    The loss network is a submodule (so it follows the device) but is left out of checkpoints.
    `channels_last` applies to the loss network and the photos fed to it; the transform net stays
    NCHW, where its instance norms and reflection pads run without layout copies (its forward and
    backward measured 1.1 s against 1.5 s channels_last per four 256 px photos on a bf16 CPU).
    """

    def __init__(
        self,
        style_image: torch.Tensor,
        loss_net: LossNet,
        style_name: str = "style",
        content_layers: Sequence[str] = ("relu2_2",),
        style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        content_weight: float = 1e5,
        style_weight: float = 1e10,
        tv_weight: float = 0.0,
        lr: float = 1e-3,
        channels: int = 32,
        num_residual: int = 5,
        output: str = "sigmoid",
        photo_colors: bool = False,
        cel: bool = False,
        channels_last: bool = True,
        style_luminance_only: bool = False,
        normalize: bool = False,
        color_weight: float = 0.0,
        cartoon_weight: float = 0.0,
        compile: bool = False,
        temporal_weight: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["style_image", "loss_net"])
        self.motion = temporal.Motion()
        self.net = TransformNet(channels, num_residual, output, photo_colors, cel)
        self.loss_net = loss_net
        self.objective = StyleObjective(
            loss_net,
            style_image,
            content_layers,
            style_layers,
            content_weight,
            style_weight,
            tv_weight,
            style_luminance_only=style_luminance_only,
            normalize=normalize,
            color_weight=color_weight,
            cartoon_weight=cartoon_weight,
        )
        self.strict_loading = False  # checkpoints hold no loss-network weights
        if channels_last:
            self.loss_net.to(memory_format=torch.channels_last)
        # a compiled forward function (not a module, so checkpoints keep their keys)
        self._net_forward = torch.compile(self.net.forward) if compile else self.net.__call__

    def setup(self, stage: str) -> None:
        """Under bf16 mixed precision the frozen VGG is stored in bf16: no weight casts per step."""
        if str(self.trainer.precision).startswith("bf16"):
            self.loss_net.to(torch.bfloat16)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last else x

    @torch.no_grad()
    def compute_style_targets(self) -> None:
        """Gram matrices of the style image, once per run, in float32."""
        self.objective.compute_style_targets()

    def on_fit_start(self) -> None:
        self.compute_style_targets()

    def losses(self, photos: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(stylized photos, dict of weighted total and unweighted parts)."""
        y = self._net_forward(photos)
        targets = self.objective.content_targets(self._layout(photos))
        return y, self.objective(self._layout(y), targets)

    def with_temporal(
        self, photos: torch.Tensor, y: torch.Tensor, parts: dict, generator=None
    ) -> dict[str, torch.Tensor]:
        """parts with the temporal loss (see stylenet/losses/temporal.py) added; its weight applied
        to the total. Skipped in training while the weight is 0, always measured in validation.
        A cel net is compared after its fixed cel stage (which training mode otherwise skips):
        most of its flicker comes from the lines and steps that stage draws."""
        weight = self.hparams.temporal_weight
        if weight <= 0 and self.training:
            return parts
        y, forward = as_seen(y, photos, self._net_forward, self.net.cel and self.net.training)
        return temporal.with_temporal(parts, photos, y, forward, weight, self.motion, generator)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        y, parts = self.losses(batch)
        parts = self.with_temporal(batch, y, parts)
        self.log_dict({f"train/{k}": v.detach() for k, v in parts.items()}, prog_bar=False)
        self.log("loss", parts["loss"].detach(), prog_bar=True, logger=False)
        self.track_finite(parts["loss"])
        return parts["loss"]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        y, parts = self.losses(batch)
        seeded = torch.Generator(batch.device).manual_seed(batch_idx)  # the same pairs each time
        parts = self.with_temporal(batch, y, parts, seeded)
        self.log_dict({f"val/{k}": v for k, v in parts.items()})
        if batch_idx == 0 and self.global_rank == 0 and not self.trainer.sanity_checking:
            self._save_grid(batch, y)

    def _final_picture(self, photos: torch.Tensor) -> None:
        was_training = self.net.training
        self.net.eval()
        try:
            photos = photos.to(self.device)
            self._save_grid(photos, self._net_forward(photos))
        finally:
            self.net.train(was_training)

    def _save_grid(self, photos: torch.Tensor, stylized: torch.Tensor) -> None:
        """Photos above, stylized below: PNG in <run>/val/, and an image for W&B-like loggers."""
        grid = make_grid(torch.cat([photos, stylized.float()]).cpu(), nrow=len(photos), padding=4)
        save_image(grid, self._grid_path())
        self._grid_step = self.global_step
        for logger in self.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(
                    "val/stylized",
                    [to_pil(grid)],  # wandb casts a float tensor to uint8 unscaled: all black
                    step=self.global_step,
                    caption=[f"step {self.global_step}"],
                )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
