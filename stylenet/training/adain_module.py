"""Training the AdaIN decoder (Huang and Belongie 2017): `python train.py model=adain`.

loss = content_weight * |f(g(t)) - t|^2
       + style_weight * sum_l (|mu(phi_l(g(t))) - mu(phi_l(s))|^2 + |sigma(...) - sigma(...)|^2)
       + identity_weight * |g(f(c)) - c|^2       (optional; 0 is the paper's loss)
with t = AdaIN(f(c), f(s)), f the VGG19 encoder up to relu4_1, phi_l its relu1_1 ... relu4_1, and
mean squared errors as in the paper's code, on features divided by LAYER_SCALES (the scale of
the paper's normalised VGG; see stylenet/nets/adain.py). Only the decoder learns; the encoder is
frozen and left out of checkpoints.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from stylenet.files.images import save_image, to_pil
from stylenet.nets.adain import (
    ENCODER_LAYER,
    STYLE_LAYERS,
    Decoder,
    Encoder,
    adain,
    mean_std,
    to_pixels,
)
from stylenet.training.johnson_module import GuardedModule

log = logging.getLogger(__name__)


def style_distance(
    feats: dict[str, torch.Tensor],
    targets: dict[str, tuple[torch.Tensor, torch.Tensor]],
    scales: dict[str, float],
) -> torch.Tensor:
    """Sum over layers of the mean squared differences of channel means and of channel stds, each
    layer's features divided by its scale (LAYER_SCALES)."""
    total = 0.0
    for name, (mean_t, std_t) in targets.items():
        mean, std = mean_std(feats[name])
        s = scales[name]
        total = total + F.mse_loss(mean / s, mean_t / s) + F.mse_loss(std / s, std_t / s)
    return total


def content_distance(feat: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
    """Mean squared error of relu4_1 features, divided by their scale (LAYER_SCALES)."""
    return F.mse_loss(feat.float() / scale, target.float() / scale)


class AdaINModule(GuardedModule):
    """Learns the decoder from (photo, artwork) batches; a PairDataModule feeds it."""

    FROZEN = ("encoder.",)

    def __init__(
        self,
        encoder: Encoder,
        content_weight: float = 1.0,
        style_weight: float = 10.0,
        lr: float = 1e-4,
        lr_decay: float = 5e-5,
        channels_last: bool = True,
        identity_weight: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["encoder"])
        self.decoder = Decoder(encoder.scales[ENCODER_LAYER])
        self.encoder = encoder
        self.strict_loading = False  # checkpoints hold no encoder weights
        if channels_last:
            self.encoder.to(memory_format=torch.channels_last)

    def setup(self, stage: str) -> None:
        if str(self.trainer.precision).startswith("bf16"):
            self.encoder.to(torch.bfloat16)

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.hparams.channels_last else x

    def losses(
        self, photos: torch.Tensor, arts: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(decoded images, dict of the weighted total and the unweighted content, style and, with
        identity_weight, identity losses)."""
        with torch.no_grad():
            t, targets, fc = self.targets(photos, arts)
        g = self.decode(t)
        feats = self.encoder(self._layout(g), STYLE_LAYERS)
        scales = self.encoder.scales
        content = content_distance(feats[ENCODER_LAYER], t, scales[ENCODER_LAYER])
        style = style_distance(feats, targets, scales)
        hp = self.hparams
        loss = hp.content_weight * content + hp.style_weight * style
        parts = {"content": content, "style": style}
        if hp.identity_weight > 0:
            parts["identity"] = F.mse_loss(self.decode(fc).float(), photos.float())
            loss = loss + hp.identity_weight * parts["identity"]
        return g, {"loss": loss, **parts}

    def decode(self, feats: torch.Tensor) -> torch.Tensor:
        """The decoder on relu4_1 features (the encoder's may be bf16; the decoder's weights
        set the input's dtype)."""
        return self.decoder(feats.to(next(self.decoder.parameters()).dtype))

    def targets(
        self, photos: torch.Tensor, arts: torch.Tensor
    ) -> tuple[torch.Tensor, dict, torch.Tensor]:
        """AdaIN output t (the content target), the artworks' (mean, std) per style layer and the
        photos' own relu4_1 features."""
        fc = self.encoder(self._layout(photos))[ENCODER_LAYER]
        fs = self.encoder(self._layout(arts), STYLE_LAYERS)
        stats = {name: mean_std(f) for name, f in fs.items()}
        return adain(fc.float(), *stats[ENCODER_LAYER]), stats, fc

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        _, parts = self.losses(*batch)
        self.log_dict({f"train/{k}": v.detach() for k, v in parts.items()}, prog_bar=False)
        self.log("loss", parts["loss"].detach(), prog_bar=True, logger=False)
        self.track_finite(parts["loss"])
        return parts["loss"]

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        g, parts = self.losses(*batch)
        self.log_dict({f"val/{k}": v for k, v in parts.items()})
        if batch_idx == 0 and self.global_rank == 0 and not self.trainer.sanity_checking:
            self._save_grid(*batch, to_pixels(g))

    def _final_picture(self, batch: list[torch.Tensor]) -> None:
        photos, arts = (x.to(self.device) for x in batch)
        t, _, _ = self.targets(photos, arts)
        self._save_grid(photos, arts, to_pixels(self.decode(t).float()))

    def _save_grid(self, photos: torch.Tensor, arts: torch.Tensor, out: torch.Tensor) -> None:
        """Photos, artworks and outputs in three rows: PNG in <run>/val/, and for W&B."""
        arts = F.interpolate(arts.float(), size=photos.shape[-2:], mode="bilinear", antialias=True)
        rows = torch.cat([photos.float(), arts.clamp(0, 1), out.float()]).cpu()
        grid = make_grid(rows, nrow=len(photos), padding=4)
        save_image(grid, self._grid_path())
        self._grid_step = self.global_step
        for logger in self.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(
                    "val/stylized",
                    [to_pil(grid)],
                    step=self.global_step,
                    caption=[f"step {self.global_step}"],
                )

    def configure_optimizers(self) -> dict:
        """Adam with the paper code's decay lr / (1 + lr_decay * step)."""
        opt = torch.optim.Adam(self.decoder.parameters(), lr=self.hparams.lr)
        decay = self.hparams.lr_decay
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1.0 + decay * step))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
