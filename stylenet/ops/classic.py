"""Classic photo filters, one function each: float RGB (H, W, 3) in [0, 1] in, the same out.

No learning and no VGG; `python -m stylenet.filters` runs them on files (see stylenet/filters.py).
Outputs are float32 and have the input's size; inputs are not changed. Times for a 1024x1024
photo are in the README ("Classic filters").
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.feature import canny

from stylenet.ops import cartoon as cel
from stylenet.ops.preserve_color import rgb_to_yuv


def luma(img: np.ndarray) -> np.ndarray:
    """color.rgb_to_yuv's Y (BT.601) of an (H, W, 3) array, as (H, W) float32."""
    x = torch.from_numpy(np.ascontiguousarray(img, np.float32)).permute(2, 0, 1)
    return rgb_to_yuv(x)[0].numpy()


def gradients(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel derivatives (along x, along y) of (H, W) or (H, W, C), per channel; a 0-to-1 step
    gives 1."""
    diff, smooth = np.array([-1.0, 0.0, 1.0]), np.array([0.25, 0.5, 0.25])
    gx = ndi.correlate1d(ndi.correlate1d(a, diff, 1, mode="nearest"), smooth, 0, mode="nearest")
    gy = ndi.correlate1d(ndi.correlate1d(a, diff, 0, mode="nearest"), smooth, 1, mode="nearest")
    return gx, gy


def grey(y: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(y, 0, 1).astype(np.float32)[..., None], 3, axis=2)


def find_edges(img: np.ndarray, method: str = "sobel", strength: float = 4.0) -> np.ndarray:
    """Dark edges on white. sobel: per-channel gradient magnitude times strength (a step of
    1/strength of full contrast is drawn at full darkness, in the colour it lacks); canny: thin
    black lines where Canny (sigma 2) finds luminance edges, its hysteresis thresholds
    (0.1, 0.2 of a Sobel magnitude) divided by strength."""
    if method == "sobel":
        gx, gy = gradients(img.astype(np.float32))
        return np.clip(1 - strength * np.hypot(gx, gy), 0, 1).astype(np.float32)
    if method == "canny":
        if strength <= 0:
            return np.ones_like(img, dtype=np.float32)
        lines = canny(luma(img), 2.0, 0.1 / strength, 0.2 / strength, mode="nearest")
        return grey(1 - lines.astype(np.float32))
    raise ValueError(f"method must be sobel or canny, not {method!r}")


def contour(img: np.ndarray, levels: int = 8) -> np.ndarray:
    """Black iso-luminance lines on white: where the lightly smoothed luminance crosses
    k / (levels + 1), k = 1 .. levels."""
    q = np.floor(ndi.gaussian_filter(luma(img), 1.5) * (levels + 1))
    line = np.zeros(q.shape, bool)
    line[:-1] |= q[:-1] != q[1:]
    line[:, :-1] |= q[:, :-1] != q[:, 1:]
    return grey(1 - line)


def emboss(img: np.ndarray, angle: float = 135.0, depth: float = 3.0) -> np.ndarray:
    """Grey relief of the luminance lit from `angle` degrees (0 right, 90 top, 135 top-left):
    0.5 + depth x the slope towards the light."""
    gx, gy = gradients(luma(img))
    a = math.radians(angle)
    return grey(0.5 + depth * (gy * math.sin(a) - gx * math.cos(a)))


def warp(img: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """out[i, j] = img at (rows[i, j], cols[i, j]), bilinear, edges mirrored."""
    return np.stack(
        [ndi.map_coordinates(img[..., c], [rows, cols], order=1, mode="mirror") for c in range(3)],
        axis=2,
    ).astype(np.float32)


def ripple(img: np.ndarray, amplitude: float = 6.0, wavelength: float = 48.0) -> np.ndarray:
    """Wavy glass: rows shift sideways and columns up and down along sine waves of
    `wavelength` pixels, by up to `amplitude` pixels."""
    h, w = img.shape[:2]
    r = np.arange(h, dtype=np.float32)[:, None]
    c = np.arange(w, dtype=np.float32)[None, :]
    k = 2 * math.pi / wavelength
    return warp(img, r + amplitude * np.sin(k * c), c + amplitude * np.sin(k * r))


def bulge(
    img: np.ndarray, amount: float = 0.5, center: tuple[float, float] = (0.5, 0.5)
) -> np.ndarray:
    """Magnify (amount > 0) or pinch (amount < 0) a disc around `center` (x, y as fractions of
    width and height) whose radius is half the shorter side. amount in [-1, 1]: the centre is
    scaled by 1 / (1 - amount); the disc's rim does not move."""
    h, w = img.shape[:2]
    r = np.arange(h, dtype=np.float32)[:, None]
    c = np.arange(w, dtype=np.float32)[None, :]
    dy, dx = r - center[1] * (h - 1), c - center[0] * (w - 1)
    d = np.hypot(dx, dy) / (min(h, w) / 2)
    shift = -amount * np.square(np.clip(1 - d, 0, None))  # source = pixel + shift * offset
    return warp(img, r + shift * dy, c + shift * dx)


def _running_sums(a: np.ndarray, k: int) -> np.ndarray:
    """Sums of k consecutive rows of a, shape (n - k + 1, ...); a loop over rows, not pixels."""
    c = np.empty((a.shape[0] + 1,) + a.shape[1:], a.dtype)
    c[0] = 0
    c[1:] = a
    for i in range(1, len(c)):
        np.add(c[i], c[i - 1], out=c[i])
    return c[k:] - c[:-k]


def oil_paint(img: np.ndarray, radius: int = 4, levels: int = 20) -> np.ndarray:
    """Oil-paint histogram filter: luminance in `levels` bins; each pixel takes the mean colour
    of the most frequent bin in its (2 radius + 1)^2 neighbourhood (edges replicated).

    Window sums of every bin's count and colour come from running sums over rows, then over
    columns, in horizontal stripes so the (rows, width, levels, 4) stack stays small. Time
    grows with levels, not with radius."""
    h, w, _ = img.shape
    k = 2 * radius + 1
    stripe = max(2 * radius, (1 << 21) // ((w + 2 * radius) * levels * 4))  # 8 MB per stack
    bins = np.minimum((luma(img) * levels).astype(np.intp), levels - 1)
    pad = ((radius, radius), (radius, radius))
    bins = np.pad(bins, pad, mode="edge")[..., None, None]
    vals = np.pad(img.astype(np.float32), pad + ((0, 0),), mode="edge")
    vals = np.concatenate([np.ones_like(vals[..., :1]), vals], axis=2)[:, :, None]  # n, r, g, b
    out = np.empty((h, w, 3), np.float32)
    for y0 in range(0, h, stripe):
        y1 = min(h, y0 + stripe)
        rows = slice(y0, y1 + 2 * radius)
        stack = np.zeros((y1 - y0 + 2 * radius, w + 2 * radius, levels, 4), np.float32)
        np.put_along_axis(stack, bins[rows], vals[rows], axis=2)
        s = _running_sums(stack, k)
        s = _running_sums(np.ascontiguousarray(s.transpose(1, 0, 2, 3)), k)  # (w, rows, bins, 4)
        mode = s[..., 0].argmax(-1)[..., None, None]
        best = np.take_along_axis(s, mode, axis=2)[:, :, 0]
        out[y0:y1] = (best[..., 1:] / best[..., :1]).transpose(1, 0, 2)
    return np.clip(out, 0, 1)


_CEL = inspect.signature(cel.cartoon).parameters


def cartoon(
    img: np.ndarray,
    levels: int = _CEL["levels"].default,
    lines: float = _CEL["line_strength"].default,
) -> np.ndarray:
    """stylenet.ops.cartoon.cartoon: bilateral smoothing, `levels` soft luminance steps and dark
    DoG lines of strength `lines` (0 none, 1 full)."""
    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    y = cel.cartoon(x, levels=levels, line_strength=lines)
    return y[0].permute(1, 2, 0).contiguous().numpy()
