"""Perceptual losses of Johnson et al. (2016) as pure functions of feature maps.

Scale: features come from VGG fed ImageNet-normalised [0, 1] images (torchvision convention), Gram
matrices are divided by C*H*W and losses are means. With that convention content losses are ~1e0
and style losses ~1e-5..1e-3, hence weights like content 1e5 and style 1e10 in configs/style/.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from stylenet.ops.preserve_color import rgb_to_yuv
from stylenet.stylize.precision import cpu_has_bf16

CPU_BF16 = cpu_has_bf16()


class _Gram(torch.autograd.Function):
    """f^T f for (B, N, C) features: the product in float32; the backward in f's dtype (bf16
    under mixed precision), where it runs about 3x faster and gradients need no more. A CPU
    without native bf16 runs the backward in float32: its emulated bf16 product of these shapes
    is 70x slower (1673 against 25 ms for (4, 1024, 512) @ (512, 512), AVX2)."""

    @staticmethod
    def forward(ctx, f: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(f)
        f32 = f.float()
        return torch.bmm(f32.transpose(1, 2), f32)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (f,) = ctx.saved_tensors
        g = grad + grad.transpose(1, 2)
        if f.dtype == torch.bfloat16 and f.device.type == "cpu" and not CPU_BF16:
            return torch.bmm(f.float(), g.float()).to(f.dtype)
        return torch.bmm(f, g.to(f.dtype))


def gram(features: torch.Tensor) -> torch.Tensor:
    """Batched Gram matrix (B, C, C) / (C*H*W), always computed in float32.

    Works on the (B, H*W, C) view, which is free for channels_last features.
    """
    b, c, h, w = features.shape
    f = features.permute(0, 2, 3, 1).reshape(b, h * w, c)
    with torch.autocast(f.device.type, enabled=False):
        return _Gram.apply(f) / (c * h * w)


def content_loss(
    out: Mapping[str, torch.Tensor],
    target: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Sum over layers of the mean squared feature difference (optionally weighted per layer)."""
    return sum(
        (1.0 if layer_weights is None else layer_weights[k])
        * F.mse_loss(out[k].float(), target[k].float())
        for k in target
    )


def style_loss(
    out: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Sum over layers of the squared Gram difference; targets may have batch 1 (broadcast)."""
    total = 0.0
    for k, g_target in target_grams.items():
        g = gram(out[k])
        w = 1.0 if layer_weights is None else layer_weights[k]
        total = total + w * F.mse_loss(g, g_target.expand_as(g))
    return total


def color_loss(img: torch.Tensor, photo: torch.Tensor, pool: int = 4) -> torch.Tensor:
    """Mean squared difference of the colour (U and V of YUV) of `pool` x `pool` averages.

    Colour only, and only at a coarse scale: the luminance and the fine detail stay free for the
    style, while regions keep the photo's hue (a drift of 0.05 in U gives 1.25e-3).
    """
    uv = [rgb_to_yuv(F.avg_pool2d(x.float(), pool, ceil_mode=True))[:, 1:] for x in (img, photo)]
    return F.mse_loss(uv[0], uv[1])


def tv_loss(img: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean absolute difference of neighbouring pixels."""
    dx = (img[..., :, 1:] - img[..., :, :-1]).abs().mean()
    dy = (img[..., 1:, :] - img[..., :-1, :]).abs().mean()
    return (dx + dy).float()
