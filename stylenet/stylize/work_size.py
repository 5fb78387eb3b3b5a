"""Stylizing at a working size: the size of a painting's strokes and of anime's outlines.

A feed-forward net paints strokes of a fixed size in pixels, so on a 12-megapixel phone photo
they shrink to a fine texture. Stylizing the photo shrunk to a working size and enlarging the
result back gives the strokes the size they have on a photo of that size; fine detail then comes
from the enlargement, not the net.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from stylenet.files.images import shrink


def at_work_size(
    stylize: Callable[[torch.Tensor], torch.Tensor], long_side: int | None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """stylize run on (3, H, W) photos shrunk to long_side, the output enlarged (bicubic) back to
    (3, H, W); photos no larger, and long_side None or 0, go through unchanged."""
    if not long_side:
        return stylize

    def run(photo: torch.Tensor) -> torch.Tensor:
        h, w = photo.shape[-2:]
        if max(h, w) <= long_side:
            return stylize(photo)
        out = stylize(shrink(photo, long_side)).float()
        return F.interpolate(out[None], (h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)

    return run
