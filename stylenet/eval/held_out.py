"""Held-out measures of a stylizer: the model against L-BFGS optimization on the objective it was
trained with (evaluate, summarize, format_table), the original VGG19's independent check, and a
clip's steadiness (clip_check). Used by python -m stylenet.evaluate and at the end of training."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from stylenet.files.images import ImageError, find_images, load_image, shrink
from stylenet.losses.loss_net import LossNet
from stylenet.losses.objective import StyleObjective
from stylenet.losses.optimization import PRESETS
from stylenet.losses.optimization import run as optimize
from stylenet.losses.terms import gram
from stylenet.nets.transform_net import TransformNet
from stylenet.ops.preserve_color import luminance
from stylenet.ops.warping import WarpingMeter
from stylenet.stylize.video import FlickerMeter

PARTS = ("content_loss", "style_loss", "total")
CHECK_CONTENT = "relu4_2"  # the independent check's layers (Gatys et al.'s)
CHECK_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _parts(p: dict[str, Any]) -> dict[str, float]:
    return {"content_loss": float(p["content_loss"]), "style_loss": float(p["style_loss"]),
            "total": float(p["loss"])}  # fmt: skip


def load_photos(paths: Sequence[str | Path], size: int) -> list[tuple[str, torch.Tensor]]:
    """(name, image) for files and folders (recursive), long side <= size; bad files skipped."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += find_images(p) if p.is_dir() else [p]
    photos = []
    for f in files:
        try:
            photos.append((f.name, load_image(f, max_side=size)))
        except ImageError as e:
            print(f"warning: skipped {e}", file=sys.stderr)
    return photos


def steps_to_match(curve: Sequence[float], target: float) -> int | None:
    """The first optimization step whose loss is below target (None: never)."""
    return next((k for k, c in enumerate(curve) if c < target), None)


def evaluate(
    net: TransformNet,
    objective: StyleObjective,
    photos: Sequence[tuple[str, torch.Tensor]],
    steps: int,
    init: str = "noise",
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """The report as a plain dict (see format_table); objective losses in the training's units."""
    net = net.to(device).eval()
    objective = objective.to(device)
    rows = []
    for i, (name, photo) in enumerate(photos):
        x = photo.unsqueeze(0).to(device)
        with torch.no_grad():
            if i == 0:
                net(x)  # warm-up, so the first image's time is not the allocator's
            start = time.perf_counter()
            y = net(x).float()
            model_seconds = time.perf_counter() - start
            model = _parts(objective(y, objective.content_targets(x)))
        start = time.perf_counter()
        _, history = optimize(objective, x, steps, "lbfgs", init, progress=progress)
        opt_seconds = time.perf_counter() - start
        curve = [_parts(h) for h in history]
        rows.append(
            {
                "image": name,
                "size": list(photo.shape[-2:]),
                "model": {**model, "seconds": model_seconds},
                "optimized": {**curve[-1], "seconds": opt_seconds},
                "curve": [c["total"] for c in curve],
                "curve_parts": curve,
                "steps_to_match": steps_to_match([c["total"] for c in curve], model["total"]),
            }
        )
    return summarize(rows, steps, init)


def summarize(rows: list[dict[str, Any]], steps: int, init: str) -> dict[str, Any]:
    """Means over images, the mean loss curve and the step at which it crosses the model."""
    if not rows:
        raise ValueError("no photos to evaluate")
    n = len(rows)
    mean_model = {k: sum(r["model"][k] for r in rows) / n for k in PARTS}
    curve = [
        {k: sum(r["curve_parts"][s][k] for r in rows) / n for k in PARTS} for s in range(steps + 1)
    ]
    match = steps_to_match([c["total"] for c in curve], mean_model["total"])
    checkpoints = sorted({s for s in (0, 10, 20, 50, 100, 200, 500, 1000) if s < steps} | {steps})
    return {
        "images": n,
        "steps": steps,
        "optimizer": "lbfgs",
        "init": init,
        "model": {
            **mean_model,
            "seconds_per_image": statistics.median(r["model"]["seconds"] for r in rows),
        },
        "optimization": [{"steps": s, **curve[s]} for s in checkpoints],
        "optimization_seconds_per_image": statistics.median(
            r["optimized"]["seconds"] for r in rows
        ),
        "steps_to_match": match,
        "per_image": [{k: v for k, v in r.items() if k != "curve_parts"} for r in rows],
    }


def table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the summary table (also what goes to W&B / CSV from training)."""
    cols = ["method", "content_loss", "style_loss", "total", "seconds_per_image"]
    m = report["model"]
    rows = [["model, 1 forward pass", m["content_loss"], m["style_loss"], m["total"],
             m["seconds_per_image"]]]  # fmt: skip
    per_step = report["optimization_seconds_per_image"] / max(report["steps"], 1)
    for o in report["optimization"]:
        label = f"L-BFGS {o['steps']} steps from {report['init']}"
        rows.append([label, o["content_loss"], o["style_loss"], o["total"], o["steps"] * per_step])
    return cols, rows


def verdict(report: dict[str, Any]) -> str:
    k, n = report["steps_to_match"], report["steps"]
    src = "the photo" if report["init"] == "photo" else f"{report['init']}"
    each = ", ".join(
        f">{n}" if r["steps_to_match"] is None else str(r["steps_to_match"])
        for r in report["per_image"]
    )
    if k is None:
        return (
            f"the forward pass is worth more than {n} L-BFGS steps (from {src}; mean loss not "
            f"reached; per image: {each})"
        )
    return f"the forward pass is worth {k} L-BFGS steps (from {src}; mean loss; per image: {each})"


def format_table(report: dict[str, Any]) -> str:
    cols, rows = table_rows(report)
    head = f"{cols[0]:<32} {'content':>11} {'style':>11} {'total':>11} {'s/image':>9}"
    lines = [f"{report['images']} held-out photo(s); losses are means, unweighted parts", head]
    for r in rows:
        lines.append(f"{r[0]:<32} {r[1]:>11.4g} {r[2]:>11.4g} {r[3]:>11.4g} {r[4]:>9.3g}")
    return "\n".join([*lines, verdict(report)])


@torch.no_grad()
def judge(
    art: torch.Tensor, grey: bool, device: str | torch.device = "cpu"
) -> tuple[Callable[[torch.Tensor], float], Callable[[torch.Tensor, torch.Tensor], float]]:
    """(style distance, content error) on the original VGG19 for images (N, 3, H, W): the mean
    over CHECK_STYLE of the relative Frobenius distance ||G(x) - G(art)|| / ||G(art)|| (on grey
    images when `grey`), and the CHECK_CONTENT error of y to x, mean squared difference over x's
    mean square."""
    vgg = LossNet([CHECK_CONTENT, *CHECK_STYLE], "original", "vgg19").to(device)
    see = luminance if grey else (lambda x: x)
    target = {k: gram(v) for k, v in vgg(see(art[None].to(device)), CHECK_STYLE).items()}

    def distance(x: torch.Tensor) -> float:
        f = vgg(see(x), CHECK_STYLE)
        return statistics.fmean(
            float((gram(f[k]) - target[k]).norm() / target[k].norm()) for k in CHECK_STYLE
        )

    def content_error(y: torch.Tensor, x: torch.Tensor) -> float:
        fy, fx = (vgg(v, [CHECK_CONTENT])[CHECK_CONTENT] for v in (y, x))
        return float(F.mse_loss(fy, fx) / fx.square().mean())

    return distance, content_error


@torch.no_grad()
def independent_check(
    net: torch.nn.Module,
    photos: Sequence[tuple[str, torch.Tensor]],
    art: torch.Tensor,
    grey: bool,
    device: str | torch.device = "cpu",
) -> list[dict[str, Any]]:
    """Per photo, on the original VGG19 (see judge): `content_error` of the stylized image to its
    photo and `content_error_other`, the same to the next photo (resized; two photos or more), the
    scale of "a different picture"; `style_photo` and `style_stylized`, the style distances."""
    distance, content_error = judge(art, grey, device)
    net = net.to(device).eval()
    rows = []
    for i, (name, photo) in enumerate(photos):
        x = photo[None].to(device)
        y = net(x)
        row = {"photo": name, "content_error": content_error(y, x)}
        if len(photos) > 1:
            other = photos[(i + 1) % len(photos)][1][None].to(device)
            other = F.interpolate(other, size=x.shape[-2:], mode="bilinear", antialias=True)
            row["content_error_other"] = content_error(y, other)
        rows.append({**row, "style_photo": distance(x), "style_stylized": distance(y)})
    return rows


@torch.no_grad()
def clip_check(
    net: torch.nn.Module,
    frames: Iterable[torch.Tensor],
    art: torch.Tensor,
    grey: bool,
    temporal_blend: float = 0.0,
    size: int | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """A clip's steadiness beside its per-frame quality: the warping error of the output and of
    the input frames (stylenet/ops/warping.py), the flicker figure (stylenet/stylize/video.py),
    and the mean per-frame content error and style distance (see judge). temporal_blend: infer.py's
    blend; size: frames with a longer side are shrunk to it first."""
    distance, content_error = judge(art, grey, device)
    net = net.to(device).eval()
    warping, flicker, prev = WarpingMeter(), FlickerMeter(), None
    content, style = [], []
    for frame in frames:
        x = frame[None].to(device)
        if size:
            x = shrink(x, size)
        y = net(x).float().clamp(0, 1)
        if prev is not None and temporal_blend > 0:
            y = torch.lerp(y, prev, temporal_blend)
        prev = y
        warping.update(x[0].cpu(), y[0].cpu())
        flicker.update(x[0].cpu(), y[0].cpu())
        content.append(content_error(y, x))
        style.append(distance(y))
    return {
        "frames": len(content),
        "warping_error": warping.value,
        "warping_error_input": warping.inputs,
        "flicker": flicker.value,
        "content_error": statistics.fmean(content),
        "style_distance": statistics.fmean(style),
    }


def format_clips(results: dict[str, dict[str, float]]) -> str:
    """clip_check results by clip name as a Markdown table."""
    lines = [
        "| clip | frames | warping error (input's own) | flicker | relu4_2 error | style dist. |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['frames']} | {r['warping_error']:.4f} "
            f"({r['warping_error_input']:.4f}) | {r['flicker']:.2f} | {r['content_error']:.3f} | "
            f"{r['style_distance']:.3f} |"
        )
    return "\n".join(lines)


def half_rules(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many photos keep their content (`content` of the `compared` photos that have another
    photo: error to the photo at most half that to another photo) and how many take the style
    (`style` of `photos`: Gram distance at most half the photo's own)."""
    compared = [r for r in rows if "content_error_other" in r]
    return {
        "content": sum(r["content_error"] <= 0.5 * r["content_error_other"] for r in compared),
        "compared": len(compared),
        "style": sum(r["style_stylized"] <= 0.5 * r["style_photo"] for r in rows),
        "photos": len(rows),
    }


def format_check(rows: list[dict[str, Any]], grey: bool) -> str:
    """The independent check as a Markdown table, then the half rules' counts."""
    g = " (grey)" if grey else ""
    lines = [
        "| photo | relu4_2 error to its photo | to another photo | style distance: photo | "
        "stylized |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        other = f"{r['content_error_other']:.3f}" if "content_error_other" in r else "-"
        lines.append(
            f"| {r['photo']} | {r['content_error']:.3f} | {other} | {r['style_photo']:.3f}{g} | "
            f"{r['style_stylized']:.3f}{g} |"
        )
    h = half_rules(rows)
    lines += [
        "",
        f"Error to its photo at most half that to another photo on {h['content']} of "
        f"{h['compared']} photos; style distance at most half the photo's on {h['style']} of "
        f"{h['photos']}.",
    ]
    return "\n".join(lines)


def style_image_of(meta: dict[str, Any], style: Path | None) -> torch.Tensor:
    """The artwork a checkpoint records (or `style`), at the size it was trained with."""
    t = meta.get("training", {})
    style_path = style or (Path(t["style_image"]) if t.get("style_image") else None)
    if style_path is None:
        raise ImageError("the checkpoint records no style image; pass --style <artwork>")
    if not style_path.is_file() and style is None:
        raise ImageError(f"{style_path}: style image of the checkpoint not found; pass --style")
    return load_image(style_path, max_side=t.get("style_size", 256))


def objective_from_meta(
    meta: dict[str, Any], vgg_weights: str, style: Path | None
) -> StyleObjective:
    """The training objective recorded in a checkpoint (Johnson preset where it records none)."""
    t = meta.get("training", {})
    preset = PRESETS["johnson"]
    content_layers = list(t.get("content_layers", preset["content_layers"]))
    style_layers = list(t.get("style_layers", preset["style_layers"]))
    style_image = style_image_of(meta, style)
    # the original weights exist for VGG19 only; every VGG16 layer name exists in VGG19 too
    arch = "vgg19" if vgg_weights == "original" else t.get("arch", "vgg16")
    loss_net = LossNet(content_layers + style_layers, vgg_weights, arch)
    return StyleObjective(
        loss_net,
        style_image,
        content_layers,
        style_layers,
        t.get("content_weight", preset["content_weight"]),
        t.get("style_weight", preset["style_weight"]),
        t.get("tv_weight", preset["tv_weight"]),
        style_luminance_only=bool(t.get("style_luminance_only", False)),
        normalize=bool(t.get("normalize", False)),
        color_weight=float(t.get("color_weight", 0.0)),
        cartoon_weight=float(t.get("cartoon_weight", 0.0)),
    )
