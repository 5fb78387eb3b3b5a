"""Warping error (Lai et al. 2018): how much a stylized clip changes beyond the input's own motion.

For each pair of frames, the optical flow of the input frames (OpenCV's DIS) warps the previous
output onto the current one; the error is the mean squared RGB difference between the two over the
pixels both frames see (occlusions masked by a forward-backward flow check). Unlike the flicker
figure, smearing cannot lower it without showing: a smeared or frozen output keeps its error low
only by losing the style or the photo, which the per-frame distances beside it report.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

cv2.setNumThreads(1)  # flow is small next to the nets; leave the cores to torch


def _grey(frame: torch.Tensor) -> np.ndarray:
    """uint8 luminance of a (3, H, W) frame in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=frame.dtype, device=frame.device)
    y = (frame.clamp(0, 1) * w[:, None, None]).sum(0)
    return y.mul(255).round().byte().cpu().numpy()


def optical_flow(src: torch.Tensor, dst: torch.Tensor) -> np.ndarray:
    """(H, W, 2) float32 flow from frame src to frame dst: src(p) ~ dst(p + flow(p)) (DIS)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_grey(src), _grey(dst), None)


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """image (H, W, C) sampled at p + flow(p), bilinear; points outside repeat the border."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def visible_mask(flow: np.ndarray, back: np.ndarray) -> np.ndarray:
    """(H, W) bool: p + flow(p) lies in the frame and the flow back from there returns to p
    (Sundaram et al.'s check, as Lai et al. use it)."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = xs + flow[..., 0], ys + flow[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    back_at = warp_by_flow(back, flow)
    loop = np.square(flow + back_at).sum(-1)
    scale = np.square(flow).sum(-1) + np.square(back_at).sum(-1)
    return inside & (loop < 0.01 * scale + 0.5)


class WarpingMeter:
    """Feed (input frame, output frame) pairs in order; `value` is the mean warping error over
    consecutive pairs, `inputs` the same figure of the input clip itself (its floor: flow error,
    noise, new content)."""

    def __init__(self) -> None:
        self.prev: tuple[torch.Tensor, np.ndarray] | None = None
        self.errors: list[float] = []
        self.input_errors: list[float] = []

    def update(self, inp: torch.Tensor, out: torch.Tensor) -> None:
        if out.shape[-2:] != inp.shape[-2:]:
            raise ValueError(f"output {tuple(out.shape)} and input {tuple(inp.shape)} differ")
        out_np = out.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        if self.prev is not None:
            prev_inp, prev_out = self.prev
            flow = optical_flow(inp, prev_inp)  # current -> previous
            mask = visible_mask(flow, optical_flow(prev_inp, inp))
            if mask.any():
                self.errors.append(_masked_error(out_np, warp_by_flow(prev_out, flow), mask))
                cur_in = inp.detach().float().permute(1, 2, 0).cpu().numpy()
                prev_in = prev_inp.detach().float().permute(1, 2, 0).cpu().numpy()
                self.input_errors.append(_masked_error(cur_in, warp_by_flow(prev_in, flow), mask))
        self.prev = (inp.detach(), out_np)

    @property
    def value(self) -> float:
        return float(np.mean(self.errors)) if self.errors else math.nan

    @property
    def inputs(self) -> float:
        return float(np.mean(self.input_errors)) if self.input_errors else math.nan


def _masked_error(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean over the masked pixels of the squared RGB distance."""
    return float(np.square(a - b).sum(-1)[mask].mean())


def warping_error(inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> float:
    """The WarpingMeter figure for two equally long lists of frames (3, H, W) in [0, 1]."""
    meter = WarpingMeter()
    for inp, out in zip(inputs, outputs, strict=True):
        meter.update(inp, out)
    return meter.value


def camera_clip(
    photo: torch.Tensor,
    frames: int = 12,
    size: tuple[int, int] = (256, 192),
    pan: float = 0.01,
    zoom: float = 0.005,
) -> tuple[list[torch.Tensor], list[np.ndarray]]:
    """(frames, true flows): a camera panning right by `pan` of the photo's width and zooming in
    by `zoom` per frame over photo (3, H, W); W x H = size. flows[t - 1] is the exact (H, W, 2)
    flow from frame t to frame t - 1 in pixels, the reference for optical_flow."""
    w, h = size
    _, ph, pw = photo.shape
    # the window's half-size in the photo's normalized coordinates at zoom 1, aspect kept
    fit = min(pw / w, ph / h) * 0.8
    half = torch.tensor([w * fit / pw, h * fit / ph])
    ys, xs = torch.meshgrid(
        (torch.arange(h) * 2 + 1) / h - 1, (torch.arange(w) * 2 + 1) / w - 1, indexing="ij"
    )
    grid = torch.stack([xs, ys], -1)  # output pixel centres, normalized
    span = pan * 2 * (frames - 1)
    windows = []
    for t in range(frames):
        scale = half / (1 + zoom) ** t
        centre = torch.tensor([-span / 2 + pan * 2 * t, 0.0])
        windows.append((scale, centre))
    clip = []
    for scale, centre in windows:
        g = (grid * scale + centre)[None]
        f = torch.nn.functional.grid_sample(photo[None].float(), g, "bilinear", "border", False)
        clip.append(f[0].clamp(0, 1))
    flows = []
    for (s0, c0), (s1, c1) in zip(windows[:-1], windows[1:], strict=True):
        back = (grid * s1 + c1 - c0) / s0  # frame t's pixel centres in frame t - 1
        flows.append(((back - grid) * torch.tensor([w / 2, h / 2])).numpy().astype(np.float32))
    return clip, flows
