"""A cel look without training: edge-preserving smoothing, soft luminance quantization, dark edges.

The recipe of Winnemöller, Olsen and Gooch, "Real-time video abstraction" (SIGGRAPH 2006), with
its separable approximation of the bilateral filter. `anime`'s training objective uses it as a
target (style.cartoon_weight, see stylenet/losses/objective.py) or as the fixed last stage of
its net at inference (style.cel, see stylenet/nets/transform_net.py); `python -m stylenet.filters
--filter cartoon` runs it alone. Images are float RGB in [0, 1], shape (B, 3, H, W); every step is
a fixed, differentiable filter, so the result is the same on CPU and GPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stylenet.ops.preserve_color import rgb_to_yuv, yuv_to_rgb

CEL_REFERENCE = 512  # px on the short side at which the cel stage's pixel sizes were chosen


def cel_scale(height: int, width: int) -> int:
    """The cartoon `scale` for a photo: 1 up to CEL_REFERENCE px on the short side, then in
    proportion (a 4000 x 3000 phone photo gets 6), so big photos keep flat regions and outlines."""
    return max(1, round(min(height, width) / CEL_REFERENCE))


def bilateral(x: torch.Tensor, r: int, sigma_space: float, sigma_color: float) -> torch.Tensor:
    """Separable bilateral filter (a row pass, then a column pass, each over 2r+1 pixels): averages
    neighbours of similar colour only, at 2(2r+1) instead of (2r+1)^2 shifted copies."""
    for dim in (-1, -2):
        pad = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode="replicate")
        total, norm = torch.zeros_like(x), torch.zeros_like(x[:, :1])
        for d in range(-r, r + 1):
            n = pad.narrow(dim, r + d, x.shape[dim])
            dist = (n - x).square().sum(1, keepdim=True)  # squared colour distance, then weight:
            w = torch.exp(dist * (-0.5 / sigma_color**2) - 0.5 * d * d / sigma_space**2)
            total = total + w * n
            norm = norm + w
        x = total / norm
    return x


def gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur per channel."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    c = int(x.shape[1])  # a constant when traced for export
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k, groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.transpose(2, 3), groups=c)


def quantize(y: torch.Tensor, levels: int, sharpness: float) -> torch.Tensor:
    """Soft luminance quantization: steps of 1/levels, each softened by tanh so no hard banding."""
    step = 1.0 / levels
    nearest = torch.round(y / step) * step
    return nearest + 0.5 * step * torch.tanh(sharpness * (y - nearest) / step)


def edges(y: torch.Tensor, sigma: float, tau: float = 0.98, phi: float = 200.0) -> torch.Tensor:
    """Difference-of-Gaussians line map of luminance y: 1 off lines, falling to 0 on dark lines."""
    d = gaussian(y, sigma) - tau * gaussian(y, 1.6 * sigma)
    return torch.where(d > 0, torch.ones_like(d), 1 + torch.tanh(phi * d))


def cartoon(
    img: torch.Tensor,
    smooth: int = 3,
    radius: int = 3,
    sigma_color: float = 0.1,
    levels: int = 8,
    sharpness: float = 1.5,
    line_sigma: float = 1.0,
    line_strength: float = 1.0,
    line_tau: float = 0.98,
    line_pass: int = 1,
    scale: float = 1.0,
    supersample: int = 1,
) -> torch.Tensor:
    """Cel-shaded image: `smooth` (at least 1) bilateral passes (radius, sigma_color), luminance
    in `levels` soft steps with the smoothed colour, and dark DoG lines (line_sigma: their width;
    line_strength 0 turns them off; a lower line_tau draws fewer) from bilateral pass `line_pass`
    (1: the lightly smoothed image, more texture lines; `smooth`: object outlines mostly).
    scale > 1: the smoothing and the lines are computed at 1/scale of the size and scaled back
    (the luminance steps at full size, so their borders stay crisp): a photo at scale times the
    size gets the same look (see cel_scale) at the cost of a small one. supersample > 1: the lines
    and steps are drawn at that many times the size and averaged back (anti-aliased)."""
    x = img.float()
    step = max(1, round(scale))
    if step > 1:
        x = F.interpolate(x, scale_factor=1 / step, mode="bilinear", antialias=True)
    line_src = x
    for i in range(max(smooth, 1)):
        x = bilateral(x, radius, float(radius), sigma_color)
        if i + 1 == min(max(line_pass, 1), max(smooth, 1)):
            line_src = x
    k = max(1, int(supersample))
    if step > 1 or k > 1:  # to full (k times) size; the lines are drawn there: no stair steps
        size = (img.shape[-2] * k, img.shape[-1] * k)
        x = F.interpolate(x, size=size, mode="bicubic").clamp(0, 1)
        line_src = F.interpolate(line_src, size=size, mode="bicubic").clamp(0, 1)
    lines = edges(rgb_to_yuv(line_src)[:, :1], line_sigma * step * k, line_tau)
    yuv = rgb_to_yuv(x.clamp(0, 1))
    y = quantize(yuv[:, :1], levels, sharpness)
    flat = yuv_to_rgb(torch.cat([y, yuv[:, 1:]], dim=1))
    out = (flat * (1 - line_strength * (1 - lines))).clamp(0, 1)
    return (F.avg_pool2d(out, k) if k > 1 else out).to(img.dtype)
