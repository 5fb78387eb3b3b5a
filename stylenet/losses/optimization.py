"""Gatys et al.'s optimization of the pixels against the objective, its presets and the
photorealistic regularizer; used by python -m stylenet.optimize and by evaluate's comparison."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from stylenet.losses.loss_net import IMAGENET_STD, LossNet
from stylenet.losses.objective import StyleObjective
from stylenet.ops.matting import EPS, matting_laplacian, photorealism_loss, to_torch

PRESETS: dict[str, dict] = {
    "johnson": {
        "arch": "vgg16",
        "content_layers": {"relu2_2": 1.0},
        "style_layers": {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0},
        "content_weight": 1.0,  # relative errors, as configs/style/*.yaml (normalize)
        "style_weight": 5.0,
        "tv_weight": 0.0,
        "normalize": True,
        "convert": None,
        "vgg_weights": "imagenet",
        "convention": None,  # the weights' own
        "steps": 500,
        "size": 256,
        "init": "photo",
    },
    "gatys": {
        "arch": "vgg19",
        "content_layers": {"conv4_2": 0.5, "conv5_2": 0.5},
        "style_layers": {f"conv{b}_1": 0.2 for b in range(1, 6)},
        "content_weight": 1.0,
        "style_weight": 500.0,
        "tv_weight": 0.0,
        "normalize": False,
        "convert": "paper",
        "vgg_weights": "imagenet",
        "convention": None,
        "steps": 3000,
        "size": 450,
        "init": "mix",
    },
}
# the gatys preset in the design document's own formulas and network (see seed_layer_weights)
PRESETS["seed"] = {
    **PRESETS["gatys"],
    "convert": "seed",
    "vgg_weights": "original",
    "convention": "mean128",
}
PRESETS["luan"] = {
    "arch": "vgg19",
    "content_layers": {"conv4_2": 1.0},
    "style_layers": {f"conv{b}_1": 0.2 for b in range(1, 6)},
    "content_weight": 1.0,  # relative errors (normalize)
    "style_weight": 10.0,
    "tv_weight": 0.0,
    "normalize": True,
    "convert": None,
    "vgg_weights": "original",
    "convention": None,
    "steps": 1000,
    "size": 512,
    "init": "photo",
}
PHOTO_WEIGHT = 1e4  # --photo-weight: see the README, "Photorealistic transfer"
INITS = ("photo", "noise", "mix")
OPTIMIZERS = ("lbfgs", "adam")
# Caffe VGG (the papers') sees 0-255 inputs minus the mean; torchvision's VGG sees (x - mean) / std
# with x in [0, 1]. Feature maps of the first layers scale by about 255 * std between the two.
CAFFE_SCALE = 255.0 * sum(IMAGENET_STD) / 3


def paper_layer_weights(
    loss_net: LossNet,
    image: torch.Tensor,
    content_layers: dict[str, float],
    style_layers: dict[str, float],
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-layer weights that turn our losses into Gatys et al.'s at this image size.

    Ours: content = mean (F-P)^2 and style = mean (G/(N*M) - A/(N*M))^2 over N x N entries.
    Paper: content = 1/2 sum (F-P)^2 and style = sum (G-A)^2 / (4 N^2 M^2), with Caffe inputs.
    So content * N*M/2 * s^2 and style * N^2/4 * s^4 (N channels, M = H*W). Exact (s = 1) when
    the loss net already sees 0-255 inputs (the original weights, Caffe or mean128 convention);
    with torchvision's convention s = CAFFE_SCALE, an approximation: torchvision's and Caffe's
    VGG weights are different trainings.
    """
    with torch.no_grad():
        feats = loss_net(image, dict.fromkeys([*content_layers, *style_layers]))
    s = CAFFE_SCALE if getattr(loss_net, "convention", "torchvision") == "torchvision" else 1.0
    content = {}
    for k, w in content_layers.items():
        _, n, h, m = feats[k].shape
        content[k] = w * n * h * m / 2 * s**2
    style = {k: w * feats[k].shape[1] ** 2 / 4 * s**4 for k, w in style_layers.items()}
    return content, style


def seed_layer_weights(
    loss_net: LossNet,
    image: torch.Tensor,
    content_layers: dict[str, float],
    style_layers: dict[str, float],
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-layer weights that turn our losses into the design document's objective exactly.

    Design, per layer: content (1/(2MN)) sum (F-P)^2 and style (1/(4 M^2 N^2)) sum (G-A)^2 with
    G = F F^T; each kind is its layer-weighted sum divided by its number of layers.
    Ours (losses.py, batch 1): content sum (F-P)^2 / (N M) and, with Grams divided by N M, style
    sum (G-A)^2 / (N^4 M^2). So content w * 1/2 / n_content and style w * N^2/4 / n_style
    (N channels of that layer; M cancels). The style Gram A is taken per position and scaled to
    the output's M, which is the design's A when the style image has as many pixels as the output.
    """
    with torch.no_grad():
        feats = loss_net(image, list(style_layers))
    content = {k: w * 0.5 / len(content_layers) for k, w in content_layers.items()}
    style = {k: w * feats[k].shape[1] ** 2 / 4 / len(style_layers) for k, w in style_layers.items()}
    return content, style


class Photorealistic(torch.nn.Module):
    """An objective plus Luan et al.'s photorealism term: `weight` times the mean over pixels of
    sum_c V_c^T L V_c, L the Matting Laplacian of `photo` (1, 3, H, W), the image it is built for.

    Adds `photo_loss` (unweighted) to the parts and its weighted value to `loss`.
    """

    def __init__(self, objective: StyleObjective, photo: torch.Tensor, weight: float, eps=EPS):
        super().__init__()
        self.objective, self.weight, self.loss_net = objective, weight, objective.loss_net
        lap = matting_laplacian(photo[0].permute(1, 2, 0).double().cpu().numpy(), eps)
        self.laplacian = to_torch(lap, photo.device)

    def content_targets(self, photos: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.objective.content_targets(photos)

    def forward(self, y: torch.Tensor, targets) -> dict[str, torch.Tensor]:
        parts = self.objective(y, targets)
        parts["photo_loss"] = photorealism_loss(y, self.laplacian)
        parts["loss"] = parts["loss"] + self.weight * parts["photo_loss"]
        return parts


def initial_image(photo: torch.Tensor, init: str, seed: int = 0) -> torch.Tensor:
    """`photo`, uniform `noise`, or `mix` = 0.5 * photo + 0.5 * noise (Gatys' start)."""
    if init == "photo":
        return photo.clone()
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(photo.shape, generator=gen).to(photo)
    if init == "noise":
        return noise
    if init == "mix":
        return 0.5 * photo + 0.5 * noise
    raise ValueError(f"unknown init {init!r}; choose one of {INITS}")


def _lbfgs_b(
    loss_and_grad: Callable[[torch.Tensor], tuple[dict[str, float], torch.Tensor]],
    x0: torch.Tensor,
    steps: int,
    on_step: Callable[[dict[str, float]], None],
) -> torch.Tensor:
    """`steps` iterations of SciPy's L-BFGS-B with the box [0, 1] (pixels stay valid)."""
    from scipy.optimize import minimize

    last: dict = {}

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        x = torch.from_numpy(v).to(x0.device, torch.float32).view_as(x0)
        parts, grad = loss_and_grad(x)
        last.update(v=v.copy(), parts=parts)
        return parts["loss"], grad.double().cpu().numpy().ravel()

    def callback(v: np.ndarray) -> None:
        if not np.array_equal(v, last["v"]):  # the accepted point was not evaluated last
            fun(v)
        on_step(last["parts"])

    res = minimize(
        fun, x0.double().cpu().numpy().ravel(), jac=True, method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * x0.numel(), callback=callback,
        options={"maxiter": steps, "maxfun": 25 * steps + 25, "ftol": 0.0, "gtol": 0.0,
                 "maxcor": 20},
    )  # fmt: skip
    return torch.from_numpy(res.x).to(x0.device, torch.float32).view_as(x0)


def run(
    objective: StyleObjective,
    photo: torch.Tensor,
    steps: int,
    optimizer: str = "lbfgs",
    init: str = "photo",
    lr: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Optimize an image for `steps` iterations; returns (image (1,3,H,W), losses at 0..steps).

    L-BFGS is SciPy's L-BFGS-B with every pixel bounded to [0, 1], as in Gatys et al.'s code (one
    step = one iteration, about 1-2 loss evaluations; losses[k]["evals"] counts them). Adam
    clamps the image to [0, 1] after each step. Every recorded loss is that of a saveable image.
    If L-BFGS-B stops early (no further progress), the last loss is repeated up to `steps`.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")
    photo = photo if photo.dim() == 4 else photo.unsqueeze(0)
    targets = objective.content_targets(photo)
    x0 = initial_image(photo, init, seed)
    history: list[dict[str, float]] = []
    evals = 0
    bar = tqdm(total=steps, disable=not progress, unit="step", dynamic_ncols=True)

    def loss_and_grad(x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        nonlocal evals
        x = x.detach().requires_grad_(True)
        parts = objective(x, targets)
        parts["loss"].backward()
        evals += 1
        return {**{k: v.item() for k, v in parts.items()}, "evals": evals}, x.grad

    def on_step(parts: dict[str, float]) -> None:
        history.append(parts)
        bar.update(1)
        bar.set_postfix(loss=f"{parts['loss']:.4g}")

    with torch.no_grad():
        start = {k: v.item() for k, v in objective(x0, targets).items()}
    history.append({**start, "evals": 0})
    if optimizer == "lbfgs":
        x = _lbfgs_b(loss_and_grad, x0, steps, on_step) if steps else x0
    else:
        x = x0.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr or 0.02)
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            parts = objective(x, targets)
            parts["loss"].backward()
            evals += 1
            if i:  # the loss at the image after i steps
                history.append({**{k: v.item() for k, v in parts.items()}, "evals": evals - 1})
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss'].item():.4g}")
        x = x.detach()
    bar.close()
    x = x.clamp(0, 1)
    with torch.no_grad():
        final = {**{k: v.item() for k, v in objective(x, targets).items()}, "evals": evals}
    history = history[:steps] + [final] * (steps + 1 - len(history[:steps]))
    if not math.isfinite(final["loss"]):
        raise FloatingPointError("the optimization diverged (non-finite loss); lower --lr")
    return x, history


def preset_objective(
    name: str,
    photo: torch.Tensor,
    style: torch.Tensor,
    vgg_weights: str | None = None,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    normalize: bool = False,
) -> StyleObjective:
    """The objective of preset `name` for this photo (1,3,H,W) and style image; None = preset's.

    With `normalize` the preset's layer weights are used as they are, and the weights of a
    raw-loss preset (gatys, seed) default to 1, 1. Raises VGGWeightsError when the loss
    network's weights cannot be had.
    """
    preset = PRESETS[name]
    content_layers, style_layers = preset["content_layers"], preset["style_layers"]
    loss_net = LossNet(
        [*content_layers, *style_layers],
        vgg_weights or preset["vgg_weights"],
        preset["arch"],
        preset["convention"],
    ).to(photo.device)
    cw, sw = preset["content_weight"], preset["style_weight"]
    if normalize and not preset["normalize"]:  # the preset's weights are for raw losses
        cw, sw = 1.0, 1.0
    normalize = normalize or preset["normalize"]
    if preset["convert"] and not normalize:  # the preset's weights are the paper's: convert
        convert = seed_layer_weights if preset["convert"] == "seed" else paper_layer_weights
        content_layers, style_layers = convert(loss_net, photo, content_layers, style_layers)
    return StyleObjective(
        loss_net,
        style,
        list(content_layers),
        list(style_layers),
        cw if content_weight is None else content_weight,
        sw if style_weight is None else style_weight,
        preset["tv_weight"] if tv_weight is None else tv_weight,
        content_layer_weights=content_layers,
        style_layer_weights=style_layers,
        normalize=normalize,
    )
