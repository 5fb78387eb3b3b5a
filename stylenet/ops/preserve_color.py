"""Colour handling for stylized images: luminance (YUV) transfer and histogram matching.

Used by `python infer.py --preserve-color [luminance|histogram]`, by the colour-blind style loss
(`loss.style_luminance_only=true`, see stylenet/losses/objective.py) and by `--strength` blending.
Images are float RGB in [0, 1], shape (3, H, W) or (B, 3, H, W); inputs are never changed in place.
"""

from __future__ import annotations

from pathlib import Path

import torch

PRESERVE_METHODS = ("luminance", "histogram")


def bare_preserve_color(argv: list[str]) -> list[str]:
    """Command lines: `--preserve-color photo.jpg` means luminance, where argparse (nargs="?")
    would take the photo for the method. A word that is neither a method nor a path
    (`--preserve-color lab`) is left for argparse to refuse."""
    out = list(argv)
    for i in range(len(out) - 2, -1, -1):
        nxt = out[i + 1]
        is_path = Path(nxt).suffix != "" or Path(nxt).exists()
        if out[i] == "--preserve-color" and nxt not in PRESERVE_METHODS and is_path:
            out.insert(i + 1, "luminance")
    return out


# BT.601 YUV, as in Gatys et al. 2017, "Preserving color in neural artistic style transfer";
# yuv_to_rgb is the exact inverse. Written with scalars so that TorchScript compiles them.
def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = -0.14713 * r - 0.28886 * g + 0.436 * b
    v = 0.615 * r - 0.51499 * g - 0.10001 * b
    return torch.cat([y, u, v], dim=-3)


def yuv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    y, u, v = x[..., 0:1, :, :], x[..., 1:2, :, :], x[..., 2:3, :, :]
    r = 1.000000000117984 * y - 1.179838438233113e-05 * u + 1.1398345757210222 * v
    g = 1.0000039464605328 * y - 0.3946460532621068 * u - 0.5805942338343952 * v
    b = 0.9999796788806158 * y + 2.0321119384367283 * u - 1.5112980663774392e-05 * v
    return torch.cat([r, g, b], dim=-3)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """Y of an RGB image, replicated to three channels so VGG can take it (a grey image)."""
    y = rgb_to_yuv(x)[..., :1, :, :]
    return y.expand_as(x)


def transfer_luminance(stylized: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The stylized image's luminance with the photo's chrominance (U, V): the photo's colours.

    In RGB: the photo plus the difference of the luminances on every channel (YUV -> RGB maps a
    change of Y alone to an equal change of R, G and B). Written with scalars so that TorchScript
    exports it (stylenet/export.py).
    """
    photo = photo.to(stylized)
    return (photo + (_y(stylized) - _y(photo))).clamp(0, 1)


def _y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luminance, one channel."""
    return 0.299 * x[..., 0:1, :, :] + 0.587 * x[..., 1:2, :, :] + 0.114 * x[..., 2:3, :, :]


def _match_channel(src: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Monotone remap of src's values so their histogram equals ref's (quantile mapping)."""
    order = src.argsort()
    ref_sorted = ref.sort().values
    n, m = src.numel(), ref.numel()
    pos = ((torch.arange(n, device=src.device, dtype=torch.float64) + 0.5) * m / n - 0.5).clamp(
        0, m - 1
    )
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=m - 1)
    frac = (pos - lo).to(ref.dtype)
    out = torch.empty_like(src)
    out[order] = ref_sorted[lo] * (1 - frac) + ref_sorted[hi] * frac
    return out


def match_histograms(stylized: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """Per RGB channel, give the stylized image the photo's histogram (its colour distribution).

    Keeps the stylized image's spatial structure and rank order of values; both sizes may differ.
    """
    out = torch.empty_like(stylized)
    s = stylized.reshape(-1, 3, stylized.shape[-2] * stylized.shape[-1])
    p = photo.to(stylized).reshape(-1, 3, photo.shape[-2] * photo.shape[-1])
    o = out.view_as(s)
    for b in range(s.shape[0]):
        for c in range(3):
            o[b, c] = _match_channel(s[b, c], p[b % p.shape[0], c])
    return out


def preserve_color(stylized: torch.Tensor, photo: torch.Tensor, method: str) -> torch.Tensor:
    """`luminance` (YUV transfer; needs the same size) or `histogram` (colour distribution)."""
    if method == "luminance":
        return transfer_luminance(stylized, photo)
    if method == "histogram":
        return match_histograms(stylized, photo)
    raise ValueError(f"unknown colour preservation {method!r}; choose one of {PRESERVE_METHODS}")


def blend(photo: torch.Tensor, stylized: torch.Tensor, strength: float) -> torch.Tensor:
    """Style strength without retraining: (1 - strength) * photo + strength * stylized."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength {strength} must be between 0 and 1")
    return torch.lerp(photo.to(stylized), stylized, strength)
