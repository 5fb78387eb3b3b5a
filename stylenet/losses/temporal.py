"""The temporal loss: steady video learned from still photos (`style.temporal_weight`).

A photo and a copy of it moved by a known small motion (shift, zoom, rotation, with a little noise
and a brightness change) stand in for two video frames. The motion is known exactly, so the first
output warped by it should equal the second output: no video data and no optical flow are needed,
and inference stays one pass per frame. Published methods (ReCoNet, Lai et al. 2018) train the same
kind of loss on the optical flow of real videos.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Motion:
    """The largest random motion between the two frames of a pair."""

    shift: float = 0.04  # fraction of the image size
    zoom: float = 0.04  # relative scale change
    rotate: float = 2.0  # degrees
    noise: float = 0.01  # standard deviation of added pixel noise
    brightness: float = 0.03  # relative brightness change


def random_affine(
    n: int,
    motion: Motion,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, 2, 3) affine maps in the normalized coordinates of F.affine_grid."""
    u = torch.rand(n, 4, device=device, generator=generator) * 2 - 1
    scale = 1 + motion.zoom * u[:, 0]
    angle = math.radians(motion.rotate) * u[:, 1]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    shift = 2 * motion.shift * u[:, 2:]  # the normalized image spans 2
    return torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )


def warp(images: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(warped images, mask): output pixel p samples images at theta(p); mask (N, 1, H, W) is 1
    where that point lies inside the image (outside, the warped image repeats its border)."""
    grid = F.affine_grid(theta.float(), list(images.shape), align_corners=False)
    warped = F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    inside = (grid.abs() <= 1).all(dim=-1, keepdim=True).permute(0, 3, 1, 2)
    return warped.to(images.dtype), inside.to(images.dtype)


def moved_pair(
    photos: torch.Tensor, motion: Motion, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(moved photos, theta, mask): the second frame of each pair and the motion that made it."""
    n = len(photos)
    theta = random_affine(n, motion, photos.device, generator)
    moved, mask = warp(photos, theta)
    u = torch.rand(n, 1, 1, 1, device=photos.device, generator=generator)
    gain = 1 + motion.brightness * (2 * u - 1)
    noise = motion.noise * torch.randn(moved.shape, device=photos.device, generator=generator)
    return (moved * gain + noise).clamp(0, 1), theta, mask


def temporal_loss(
    first: torch.Tensor, second: torch.Tensor, theta: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean squared change of the output once the motion is undone, over the pixels both frames
    see (float32): first is the output for the photos, second for the moved photos."""
    expected, _ = warp(first.float(), theta)
    sq = (second.float() - expected).square() * mask.float()
    return sq.sum() / (mask.float().sum() * first.shape[1]).clamp_min(1)


def with_temporal(
    parts: dict[str, torch.Tensor],
    photos: torch.Tensor,
    outputs: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor],
    weight: float,
    motion: Motion,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """A training step's loss parts with "temporal_loss" added and weight times it in "loss":
    forward (the net) runs once more, on a moved copy of photos, whose outputs it already gave."""
    moved, theta, mask = moved_pair(photos, motion, generator)
    t = temporal_loss(outputs, forward(moved), theta, mask)
    return {**parts, "temporal_loss": t, "loss": parts["loss"] + weight * t}
