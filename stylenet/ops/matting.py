"""The Matting Laplacian (Levin, Lischinski, Weiss 2008) and Luan et al.'s photorealism loss.

    python -m stylenet.optimize photo.jpg --style ref.jpg --photorealistic

Deep Photo Style Transfer (Luan, Paris, Shechtman, Bala, CVPR 2017) adds sum_c V_c^T L V_c to the
style objective, where V_c is a channel of the output and L the Matting Laplacian of the photo:
the term is small when the output is, in every 3x3 window, an affine function of the photo's
colours, so edges stay where they are and no new texture appears.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from numpy.lib.stride_tricks import sliding_window_view

EPS = 1e-7  # Luan et al.'s epsilon, for [0, 1] RGB


def matting_laplacian(img: np.ndarray, eps: float = EPS, radius: int = 1) -> sp.csr_matrix:
    """L (N x N, N = H*W pixels in row-major order) of an (H, W, 3) image in [0, 1].

    L_ij = sum over the (2 radius + 1)^2 windows w holding i and j of
    delta_ij - (1 + (I_i - mu_w)^T (Sigma_w + eps/|w| Id)^-1 (I_j - mu_w)) / |w|.
    Symmetric, positive semidefinite, L @ 1 = 0. All windows at once (no loop over pixels).
    """
    h, w, _ = img.shape
    k = (2 * radius + 1) ** 2
    n = h * w
    index = np.arange(n).reshape(h, w)
    win = sliding_window_view(index, (2 * radius + 1,) * 2).reshape(-1, k)  # (windows, k)
    colors = img.reshape(n, 3).astype(np.float64)[win]  # (windows, k, 3)
    d = colors - colors.mean(1, keepdims=True)
    cov = d.transpose(0, 2, 1) @ d / k
    inv = np.linalg.inv(cov + (eps / k) * np.eye(3))
    affinity = (1 + d @ inv @ d.transpose(0, 2, 1)) / k  # (windows, k, k)
    rows = np.repeat(win, k, axis=1).ravel()
    cols = np.tile(win, (1, k)).ravel()
    a = sp.coo_matrix((affinity.ravel(), (rows, cols)), shape=(n, n)).tocsr()
    # each row of the affinity sums to the number of windows holding that pixel (the delta part)
    return (sp.diags(np.asarray(a.sum(1)).ravel()) - a).tocsr()


def to_torch(lap: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """A scipy sparse matrix as a float32 torch sparse CSR tensor (CSR @ dense is ~30x faster
    than COO @ dense here)."""
    lap = lap.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": CSR @ dense is what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(lap.indptr).long(),
            torch.from_numpy(lap.indices).long(),
            torch.from_numpy(lap.data).float(),
            size=lap.shape,
            device=device,
            check_invariants=True,
        )


class _QuadraticForm(torch.autograd.Function):
    """sum_c V_c^T L V_c for V (N, C) and a symmetric sparse L; the gradient is 2 L V."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, lap: torch.Tensor) -> torch.Tensor:
        lv = lap @ v
        ctx.save_for_backward(lv)
        return (v * lv).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (lv,) = ctx.saved_tensors
        return 2 * grad * lv, None


def photorealism_loss(y: torch.Tensor, lap: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of sum_c V_c^T L V_c for one image y (1, 3, H, W) and its photo's L.

    Divided by the number of pixels so that one weight means the same at every image size.
    """
    _, c, h, w = y.shape
    v = y.reshape(c, h * w).t().float()
    return _QuadraticForm.apply(v, lap) / (h * w)
