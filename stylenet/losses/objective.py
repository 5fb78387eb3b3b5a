"""The style-transfer objective that training, `stylenet.optimize` and `stylenet.evaluate` share.

loss = content_weight * content + style_weight * style + tv_weight * tv + color_weight * color
       + cartoon_weight * cartoon,
with the pure functions of stylenet/losses/terms.py on features of one LossNet (colour: the photo's
coarse U and V, see losses.color_loss; cartoon: the content loss, on the content layers and as a
relative error, to the photo's cel-shaded version from stylenet/ops/cartoon.py, which gives flat
regions and dark outlines a target that Gram statistics cannot). Two options change what "style"
means:

- style_luminance_only: the style Grams are taken on the luminance (a grey image) of both the
  style image and the output, so the style loss is colour-blind and the content loss keeps the
  photo's colours.
- normalize: every layer's loss becomes a relative error: each content layer's loss is divided by
  the mean square of its target features, each style layer's by the mean square of the style
  image's Gram matrix. Both are unit-free and fixed by the photo and the artwork, so one set of
  weights means the same on VGG16 and VGG19, with any input convention, in training, evaluation
  and optimization (a style weight of 5 weighs a 10% Gram error like a 50% content error).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.losses.loss_net import LossNet
from stylenet.losses.terms import color_loss, content_loss, gram, style_loss, tv_loss
from stylenet.ops.cartoon import cartoon
from stylenet.ops.preserve_color import luminance

PHOTO = "photo"  # key of the photos in content_targets' dict
CARTOON = "cartoon"  # key of their cel-shaded versions (when cartoon_weight is on)


class StyleObjective(nn.Module):
    """Holds the loss network, the style's Gram targets and the weights; returns the loss parts.

    Parts: `content_loss` and `style_loss` unweighted (raw, comparable across runs), `tv_loss`,
    and `loss`, the weighted total that is optimized (normalized when `normalize` is on).
    """

    def __init__(
        self,
        loss_net: LossNet,
        style_image: torch.Tensor,
        content_layers: Sequence[str] = ("relu2_2",),
        style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        content_weight: float = 1e5,
        style_weight: float = 1e10,
        tv_weight: float = 0.0,
        content_layer_weights: Mapping[str, float] | None = None,
        style_layer_weights: Mapping[str, float] | None = None,
        style_luminance_only: bool = False,
        normalize: bool = False,
        color_weight: float = 0.0,
        cartoon_weight: float = 0.0,
    ):
        super().__init__()
        self.color_weight, self.cartoon_weight = color_weight, cartoon_weight
        self.loss_net = loss_net
        self.content_layers, self.style_layers = list(content_layers), list(style_layers)
        self.content_weight, self.style_weight, self.tv_weight = (
            content_weight,
            style_weight,
            tv_weight,
        )
        self.content_layer_weights = dict(
            content_layer_weights or dict.fromkeys(content_layers, 1.0)
        )
        self.style_layer_weights = dict(style_layer_weights or dict.fromkeys(style_layers, 1.0))
        self.style_luminance_only, self.normalize = style_luminance_only, normalize
        image = style_image if style_image.dim() == 4 else style_image.unsqueeze(0)
        self.register_buffer("style_image", image, persistent=False)
        self.style_grams: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def compute_style_targets(self) -> None:
        """Gram matrices of the style image, in float32 (call again after moving devices)."""
        with torch.autocast(self.style_image.device.type, enabled=False):
            x = self.style_image.float()
            if self.style_luminance_only:
                x = luminance(x)
            feats = self.loss_net(x, self.style_layers)
        self.style_grams = {k: gram(v) for k, v in feats.items()}

    @torch.no_grad()
    def content_targets(self, photos: torch.Tensor) -> dict[str, torch.Tensor]:
        """Content features of the photos, the photos themselves (PHOTO, for colour) and, when
        cartoon_weight is on, their cel-shaded versions (CARTOON)."""
        targets = {**self.loss_net(photos, self.content_layers), PHOTO: photos}
        if self.cartoon_weight:
            targets[CARTOON] = cartoon(photos)
            feats = self.loss_net(targets[CARTOON], self.content_layers)
            targets.update({f"{CARTOON}/{k}": v for k, v in feats.items()})
        return targets

    def features(self, y: torch.Tensor) -> tuple[dict, dict]:
        """(content features, style features) of the output y."""
        if self.style_luminance_only:
            return self.loss_net(y, self.content_layers), self.loss_net(
                luminance(y), self.style_layers
            )
        feats = self.loss_net(y, dict.fromkeys(self.style_layers + self.content_layers))
        return feats, feats

    def forward(
        self, y: torch.Tensor, targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Loss parts of output images y against content targets (from content_targets)."""
        if not self.style_grams or next(iter(self.style_grams.values())).device != y.device:
            self.compute_style_targets()
        c_feats, s_feats = self.features(y)
        # each layer's loss once; the raw and the normalized totals only weight them differently
        c_layer = {k: content_loss({k: c_feats[k]}, {k: targets[k]}) for k in self.content_layers}
        s_layer = {k: style_loss({k: s_feats[k]}, {k: g}) for k, g in self.style_grams.items()}
        parts = {
            "content_loss": weighted_sum(c_layer, self.content_layer_weights),
            "style_loss": weighted_sum(s_layer, self.style_layer_weights),
            "tv_loss": tv_loss(y),
        }
        if self.color_weight:
            parts["color_loss"] = color_loss(y, targets[PHOTO])
        if self.cartoon_weight:
            parts["cartoon_loss"] = sum(
                w * relative_error(c_feats[k], targets[f"{CARTOON}/{k}"])
                for k, w in self.content_layer_weights.items()
            )
        content, style = parts["content_loss"], parts["style_loss"]
        if self.normalize:
            content = weighted_sum(c_layer, self._content_norm_weights(targets))
            style = weighted_sum(s_layer, self._style_norm_weights())
            parts["style_loss_normalized"] = style.detach()
            parts["content_loss_normalized"] = content.detach()
        parts["loss"] = (
            self.content_weight * content
            + self.style_weight * style
            + self.tv_weight * parts["tv_loss"]
        )
        if self.color_weight:
            parts["loss"] = parts["loss"] + self.color_weight * parts["color_loss"]
        if self.cartoon_weight:
            parts["loss"] = parts["loss"] + self.cartoon_weight * parts["cartoon_loss"]
        return parts

    def _content_norm_weights(self, targets: Mapping[str, torch.Tensor]) -> dict:
        return {
            k: w / targets[k].float().square().mean().clamp_min(1e-12)
            for k, w in self.content_layer_weights.items()
        }

    def _style_norm_weights(self) -> dict:
        """Per-layer weights divided by the mean square of the style's Gram matrix."""
        return {
            k: w / self.style_grams[k].square().mean().clamp_min(1e-30)
            for k, w in self.style_layer_weights.items()
        }


def relative_error(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference over the mean square of the target."""
    target = target.float()
    return F.mse_loss(x.float(), target) / target.square().mean().clamp_min(1e-12)


def weighted_sum(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Sum of weights[k] * losses[k], in the order of losses."""
    return sum(weights[k] * v for k, v in losses.items())
