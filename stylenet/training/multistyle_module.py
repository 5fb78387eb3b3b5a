"""The LightningModule of the multi-style kinds: CIN and StyleBank, one net for many styles.

Built by `python train.py model=cin styles=[starry_night,wave]` (or model=stylebank); usable from
a notebook or a test. Each style keeps its own StyleObjective (its artwork's Gram targets and its
loss weights from configs/style/<name>.yaml); all share one frozen loss network.

Schedule (a function of the global step, so a resumed run continues it exactly):
- cin: the styles take turns, one style per batch (`turns`: more turns per cycle for some).
- stylebank: the T+1 schedule of Chen et al. 2017: T steps of the stylizing branch
  (encoder -> bank -> decoder, content + style + TV loss; the styles take turns), then one step of
  the auto-encoder branch (encoder -> decoder, per-pixel MSE to the photo).

`train_styles` names the styles being trained; the others, and with `freeze_shared` the shared
weights (CIN's convolutions, StyleBank's encoder and decoder), are frozen: that is how a style is
added to a trained model while the old styles' outputs stay bit-identical.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.losses.loss_net import LossNet
from stylenet.losses.objective import StyleObjective
from stylenet.losses.spikes import SpikePenalty
from stylenet.losses.temporal import Motion, with_temporal
from stylenet.nets.cin import CINNet
from stylenet.nets.stylebank import StyleBankNet
from stylenet.nets.transform_net import as_seen
from stylenet.training.johnson_module import GuardedModule, StyleTransferModule

MULTI_STYLE_KINDS = ("cin", "stylebank")


class MultiStyleModule(StyleTransferModule):
    """Shares the single-style module's validation grid, NaN stop and checkpoint hooks.

    style_settings: per style, the StyleObjective keywords (content_weight, style_weight,
    tv_weight, style_luminance_only, color_weight, cartoon_weight).
    """

    def __init__(
        self,
        net: CINNet | StyleBankNet,
        style_images: Mapping[str, torch.Tensor],
        style_settings: Mapping[str, Mapping[str, Any]],
        loss_net: LossNet,
        train_styles: Sequence[str] | None = None,
        freeze_shared: bool = False,
        content_layers: Sequence[str] = ("relu2_2",),
        style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        normalize: bool = False,
        lr: float = 1e-3,
        stylize_steps: int = 2,
        reconstruction_weight: float = 1.0,
        channels_last: bool = True,
        turns: Mapping[str, int] | None = None,
        spike_weight: float = 0.0,
    ):
        GuardedModule.__init__(self)  # StyleTransferModule's constructor builds a one-style net
        train_styles = list(train_styles or net.styles)
        if unknown := [s for s in train_styles if s not in net.styles]:
            raise ValueError(f"train_styles {unknown} not in the net's styles {net.styles}")
        if missing := [s for s in train_styles if s not in style_images]:
            raise ValueError(f"no style image for {missing}")
        turns = self.check_schedule(train_styles, stylize_steps, turns)
        self.save_hyperparameters(
            {
                "kind": net.kind,
                "styles": list(net.styles),
                "net_args": net.arch(),
                "train_styles": train_styles,
                "freeze_shared": freeze_shared,
                "content_layers": list(content_layers),
                "style_layers": list(style_layers),
                "normalize": normalize,
                "lr": lr,
                "stylize_steps": stylize_steps,
                "reconstruction_weight": reconstruction_weight,
                "channels_last": channels_last,
                "style_settings": {s: dict(style_settings[s]) for s in train_styles},
                "turns": turns,
                "spike_weight": spike_weight,
            }
        )
        self.net, self.loss_net, self.train_styles = net, loss_net, train_styles
        # one cycle of turns: every style once, then again those with more turns, and so on
        self.schedule = [
            s for r in range(max(turns.values())) for s in train_styles if turns[s] > r
        ]
        self.motion = Motion()
        # the dark-blob penalty on the net's instance norms (stylenet/losses/spikes.py)
        self.spikes = SpikePenalty(net) if spike_weight > 0 else None
        # style -> weight of the temporal loss (stylenet/losses/temporal.py); the rest is the
        # objective's
        self.temporal_weights = {
            s: style_settings[s].get("temporal_weight", 0.0) for s in train_styles
        }
        objective_settings = {
            s: {k: v for k, v in style_settings[s].items() if k != "temporal_weight"}
            for s in train_styles
        }
        self.objectives = nn.ModuleDict(
            {
                s: StyleObjective(
                    loss_net,
                    style_images[s],
                    content_layers,
                    style_layers,
                    normalize=normalize,
                    **objective_settings[s],
                )
                for s in train_styles
            }
        )
        trainable = set(map(id, net.style_parameters(train_styles)))
        for name, p in net.named_parameters():
            style_param = name.startswith(("gamma.", "beta.", "banks."))
            p.requires_grad_(id(p) in trainable or (not style_param and not freeze_shared))
        self._recent: dict[str, dict[str, torch.Tensor]] = {}  # style -> its last loss parts
        # branch -> batches it trained in this run ("autoencoder": StyleBank's), kept in the
        # checkpoint: a resumed run with other turns cannot recount them from global_step
        self.branch_steps: dict[str, int] = {}
        self.strict_loading = False
        if channels_last:
            self.loss_net.to(memory_format=torch.channels_last)
        self._net_forward = self.all_styles  # what the inherited final grid draws
        self.automatic_optimization = False  # one optimizer per branch, see configure_optimizers

    @staticmethod
    def check_schedule(
        train_styles: Sequence[str], stylize_steps: int, turns: Mapping[str, int] | None
    ) -> dict[str, int]:
        """Every trained style's turns per cycle (1 unless `turns` says more); ValueError naming
        the setting (stylize_steps or turns) that cannot be used."""
        if stylize_steps < 1:
            raise ValueError(f"stylize_steps={stylize_steps} must be >= 1")
        turns = dict.fromkeys(train_styles, 1) | dict(turns or {})
        if unknown := [s for s in turns if s not in train_styles]:
            raise ValueError(f"turns: {unknown} not among the trained styles {list(train_styles)}")
        if bad := {s: n for s, n in turns.items() if not isinstance(n, int) or n < 1}:
            raise ValueError(f"turns: {bad}; each style takes a whole number of turns >= 1")
        return turns

    @property
    def autoencoder_trained(self) -> bool:
        return isinstance(self.net, StyleBankNet) and not self.hparams.freeze_shared

    def branch(self, step: int) -> str | None:
        """The style trained at a global step; None: StyleBank's auto-encoder branch."""
        n = len(self.schedule)
        if not self.autoencoder_trained:
            return self.schedule[step % n]
        t = self.hparams.stylize_steps
        cycle, k = divmod(step, t + 1)
        return None if k == t else self.schedule[(cycle * t + k) % n]

    @torch.no_grad()
    def compute_style_targets(self) -> None:
        for objective in self.objectives.values():
            objective.compute_style_targets()

    def style_losses(self, photos: torch.Tensor, style: str, targets: dict | None = None):
        """(stylized photos, loss parts) for one style; with spike_weight, parts["spike_loss"]
        too (not in parts["loss"], the style's objective)."""
        with self.spikes.watch() if self.spikes else contextlib.nullcontext():
            y = self.net(photos, style)
        if targets is None:
            targets = self.objectives[style].content_targets(self._layout(photos))
        parts = self.objectives[style](self._layout(y), targets)
        if self.spikes:
            parts["spike_loss"] = self.spikes.total()
        return y, parts

    def reconstruction(self, photos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.net(photos, None)
        return y, F.mse_loss(y.float(), photos.float())

    def with_temporal(
        self, photos: torch.Tensor, y: torch.Tensor, parts: dict, style: str, generator=None
    ) -> dict[str, torch.Tensor]:
        """parts with the style's temporal loss added while its weight is above 0; a style with
        the cel stage is compared after it, as in StyleTransferModule.with_temporal."""
        if (weight := self.temporal_weights[style]) <= 0:
            return parts
        cel = self.net.training and style in getattr(self.net, "cel", ())  # StyleBank: none
        y, forward = as_seen(y, photos, functools.partial(self.net, style=style), cel)
        return with_temporal(parts, photos, y, forward, weight, self.motion, generator)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        style = self.branch(self.global_step)
        key = style or "autoencoder"
        self.branch_steps[key] = self.branch_steps.get(key, 0) + 1
        if style is None:
            _, mse = self.reconstruction(batch)
            loss = self.hparams.reconstruction_weight * mse
            self._recent["autoencoder"] = {"reconstruction_loss": mse.detach()}
        else:
            y, parts = self.style_losses(batch, style)
            parts = self.with_temporal(batch, y, parts, style)
            loss = parts["loss"]
            if self.spikes:
                loss = loss + self.hparams.spike_weight * parts["spike_loss"]
            self._recent[style] = {k: v.detach() for k, v in parts.items()}
        # every branch's latest losses at every step: whatever step the logger samples shows all
        logged = {f"train/{s}/{k}": v for s, ps in self._recent.items() for k, v in ps.items()}
        self.log_dict({**logged, "train/loss": loss.detach()})
        self.log("loss", loss.detach(), prog_bar=True, logger=False)
        self.track_finite(loss)
        optimizers = self.optimizers()
        optimizer = optimizers[style is None] if isinstance(optimizers, list) else optimizers
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()  # one optimizer step per batch: global_step counts batches
        return loss

    def all_styles(self, photos: torch.Tensor) -> torch.Tensor:
        """Every trained style's output (and StyleBank's reconstruction), one block per row."""
        ys = [self.net(photos, s) for s in self.train_styles]
        if isinstance(self.net, StyleBankNet):
            ys.append(self.net(photos, None))
        return torch.cat(ys)

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        ys, metrics = [], {}
        for s in self.train_styles:
            y, parts = self.style_losses(batch, s)
            ys.append(y)
            metrics.update({f"val/{s}/{k}": v for k, v in parts.items()})
        metrics["val/loss"] = sum(metrics[f"val/{s}/loss"] for s in self.train_styles)
        if isinstance(self.net, StyleBankNet):
            y, mse = self.reconstruction(batch)
            ys.append(y)
            metrics["val/autoencoder/reconstruction_loss"] = mse
        self.log_dict(metrics)
        if batch_idx == 0 and self.global_rank == 0 and not self.trainer.sanity_checking:
            self._save_grid(batch, torch.cat(ys))  # photos, then one row per style

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """Adam over the trainable weights; StyleBank's auto-encoder branch has its own Adam over
        the encoder and decoder. A shared Adam scales the branch's small MSE gradients by the style
        branch's much larger ones: measured, its held-out reconstruction MSE was 0.039 after 450
        steps against 0.025 with its own Adam (README, "Many styles in one model")."""
        params = [p for p in self.net.parameters() if p.requires_grad]
        optimizers = [torch.optim.Adam(params, lr=self.hparams.lr)]
        if self.autoencoder_trained:
            optimizers.append(torch.optim.Adam(self.net.shared_parameters(), lr=self.hparams.lr))
        return optimizers

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.check_finite()
        checkpoint["branch_steps"] = dict(self.branch_steps)
        sd = checkpoint["state_dict"]
        for k in [k for k in sd if not k.startswith("net.")]:
            del sd[k]  # the frozen VGG and style images are rebuilt from the config

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming: the batches each branch trained so far (a checkpoint from before they were
        kept: recounted with this run's turns)."""
        steps = checkpoint.get("branch_steps")
        if steps is None:
            branches = [self.branch(i) for i in range(checkpoint.get("global_step", 0))]
            steps = {b or "autoencoder": branches.count(b) for b in set(branches)}
        self.branch_steps = dict(steps)
