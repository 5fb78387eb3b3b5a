"""Colour transfer from a reference photo, no training: `python -m stylenet.filters photo.jpg
--filter color-transfer --reference ref.jpg --method reinhard|histogram|mkl [--strength S]`.

All three work in CIE Lab (skimage.color), where lightness and the two colour axes are nearly
decorrelated, on float RGB (H, W, 3) in [0, 1]; the output is clipped back into RGB's range.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage import color
from skimage.exposure import match_histograms

TRANSFER_METHODS = ("reinhard", "histogram", "mkl")


def lab(img: np.ndarray) -> np.ndarray:
    return color.rgb2lab(np.clip(img, 0, 1).astype(np.float64))


def reinhard(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Reinhard et al. 2001: each Lab channel shifted and scaled to the reference's mean and
    standard deviation."""
    s, r = src.reshape(-1, 3), ref.reshape(-1, 3)
    scale = r.std(0) / np.maximum(s.std(0), 1e-6)
    return ((s - s.mean(0)) * scale + r.mean(0)).reshape(src.shape)


def histogram(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each Lab channel mapped through its CDF to the reference's (exact histogram matching;
    equal values stay equal)."""
    return match_histograms(src, ref, channel_axis=-1)


def _sqrtm(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Square root and inverse square root of a symmetric positive semidefinite 3x3 matrix."""
    w, v = np.linalg.eigh(c)
    w = np.maximum(w, 1e-8 * max(w.max(), 1e-12))
    return (v * np.sqrt(w)) @ v.T, (v / np.sqrt(w)) @ v.T


def mkl(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Pitie and Kokaram 2007: the linear Monge-Kantorovich map, the affine map that gives the
    source the reference's mean and covariance while moving colours the least,
    T = S^-1/2 (S^1/2 R S^1/2)^1/2 S^-1/2 for covariances S (source) and R (reference)."""
    s, r = src.reshape(-1, 3), ref.reshape(-1, 3)
    root, inv_root = _sqrtm(np.cov(s, rowvar=False))
    t = inv_root @ _sqrtm(root @ np.cov(r, rowvar=False) @ root)[0] @ inv_root
    return ((s - s.mean(0)) @ t + r.mean(0)).reshape(src.shape)


def color_transfer(
    img: np.ndarray, reference: np.ndarray, method: str = "reinhard", strength: float = 1.0
) -> np.ndarray:
    """The photo `img` with the colours of `reference` (any size); strength 0 returns the photo,
    1 the full transfer, in between a blend in RGB."""
    if method not in TRANSFER_METHODS:
        raise ValueError(f"method must be one of {', '.join(TRANSFER_METHODS)}, not {method!r}")
    img = img.astype(np.float32)
    if strength == 0:
        return img.copy()
    fn = {"reinhard": reinhard, "histogram": histogram, "mkl": mkl}[method]
    with warnings.catch_warnings():  # colours outside sRGB's gamut are clipped, as intended
        warnings.filterwarnings("ignore", "Conversion from CIE-LAB", UserWarning)
        out = np.clip(color.lab2rgb(fn(lab(img), lab(reference))), 0, 1).astype(np.float32)
    return out if strength == 1 else (1 - strength) * img + strength * out
