"""Held-out quality of a model against optimization.

    python -m stylenet.evaluate --ckpt anime.ckpt --images photos/ [--steps 100] [--json]
    python -m stylenet.evaluate --ckpt cin-starry_night-wave.ckpt --style wave --images photos/

For each photo: the content, style and total loss of the model's single forward pass, and the same
objective along N steps of L-BFGS on that photo (Johnson et al. 2016, Fig. 5). Reports how many
L-BFGS steps the forward pass is worth (the first step at which the optimization's mean total loss
drops below the model's) and the time per image of both. The objective is the checkpoint's
training objective (loss network, layers, style image, content/style/tv weights, normalization);
`--vgg-weights original` judges any model with the original VGG19 (real ImageNet features, offline).

`--independent` measures instead what no training here optimizes, on the original VGG19: relu4_2
error to the photo (and to another photo), and the Gram distance to the artwork over relu1_1 ...
relu5_1, for the photo and for the stylized image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from stylenet import stylize
from stylenet.eval.warping import WarpingMeter
from stylenet.files.images import IMAGE_SUFFIXES, ImageError, find_images, load_image
from stylenet.losses.loss_net import LossNet, VGGWeightsError
from stylenet.losses.objective import StyleObjective
from stylenet.losses.terms import gram
from stylenet.nets.transform_net import TransformNet
from stylenet.ops.color import luminance
from stylenet.optimize import INITS, PRESETS
from stylenet.optimize import run as optimize
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.stylize.stylizer import Stylizer
from stylenet.stylize.video import FlickerMeter, VideoError, read_frames

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
                "steps_to_match": next(
                    (k for k, c in enumerate(curve) if c["total"] < model["total"]), None
                ),
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
    match = next((s for s, c in enumerate(curve) if c["total"] < mean_model["total"]), None)
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
    the input frames (stylenet/eval/warping.py), the flicker figure (stylenet/stylize/video.py),
    and the mean per-frame content error and style distance (see judge). temporal_blend: infer.py's
    blend; size: frames with a longer side are shrunk to it first."""
    distance, content_error = judge(art, grey, device)
    net = net.to(device).eval()
    warping, flicker, prev = WarpingMeter(), FlickerMeter(), None
    content, style = [], []
    for frame in frames:
        x = frame[None].to(device)
        if size and max(x.shape[-2:]) > size:
            k = size / max(x.shape[-2:])
            hw = [round(n * k) for n in x.shape[-2:]]
            x = F.interpolate(x, hw, mode="bilinear", antialias=True).clamp(0, 1)
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


def format_check(rows: list[dict[str, Any]], grey: bool) -> str:
    """The independent check as a Markdown table."""
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


def bind_for_evaluation(stylizer: Stylizer, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """(plain module, meta) of the model for the style under test: a multi-style model's --style
    with that style's recorded training; an AdaIN model's artwork --style (--independent only:
    its L-BFGS comparison is python -m stylenet.adain_eval, on the AdaIN paper's own losses)."""
    meta = stylizer.meta
    if stylizer.net is None:
        raise CheckpointError(
            f"{args.ckpt}: an exported model; evaluate takes .ckpt or .safetensors"
        )
    if stylizer.takes_artworks:
        if not args.style:
            raise CheckpointError(f"{args.ckpt}: an AdaIN model; pass the artwork with --style ART")
        if not (args.independent or args.video):
            raise CheckpointError(
                f"{args.ckpt}: an AdaIN model; use --independent or --video here, and python -m "
                "stylenet.adain_eval for its comparison with optimization"
            )
        return stylizer.bind(artworks=[args.style]).module, meta
    if stylizer.styles:
        if args.style not in stylizer.styles:
            what = (
                f"no style {args.style!r}"
                if args.style
                else "a multi-style model, pass --style NAME"
            )
            raise CheckpointError(f"{args.ckpt}: {what}; styles: {', '.join(stylizer.styles)}")
        training = meta.get("training", {}).get(args.style, {})
        bound = stylizer.bind(style=args.style)
        return bound.module, {**meta, "style": args.style, "training": training}
    return stylizer.bind().module, meta


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m stylenet.evaluate", description=__doc__.splitlines()[0]
    )
    p.add_argument("--ckpt", required=True, help="model file (.ckpt, .safetensors, last.ckpt)")
    p.add_argument("--images", nargs="+", help="held-out photos or folders")
    p.add_argument(
        "--video",
        nargs="+",
        metavar="CLIP",
        help="instead of photos: the warping error of clips beside their per-frame distances",
    )
    p.add_argument(
        "--temporal-blend",
        type=float,
        default=0.0,
        metavar="A",
        help="--video: measure infer.py's --temporal-blend A instead of plain frames",
    )
    p.add_argument("--steps", type=int, default=100, help="L-BFGS steps per photo (100)")
    p.add_argument(
        "--vgg-weights", default="imagenet", help="imagenet | original | random | <state dict>"
    )
    p.add_argument(
        "--style",
        help="multi-style models: the style to evaluate (its recorded objective); single-style "
        "models: a style image (default: the one the model recorded); AdaIN: the artwork",
    )
    p.add_argument("--size", type=int, default=256, help="long side of the photos (256)")
    p.add_argument("--init", choices=INITS, default="noise", help="optimization start (noise)")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="JSON to stdout or FILE")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--independent",
        action="store_true",
        help="the original VGG19's relu4_2 error and Gram distance instead (no optimization)",
    )
    args = p.parse_args(argv)
    if not args.images and not args.video:
        p.error("pass --images (photos or folders) or --video (clips)")
    if args.images and args.video:
        p.error("--images and --video measure different things: pass one of them")
    if not 0.0 <= args.temporal_blend < 1.0:
        p.error(f"--temporal-blend {args.temporal_blend} must be at least 0 and below 1")
    if args.steps < 0:
        p.error(f"--steps {args.steps} must be >= 0")
    return args


def video_report(net: Any, args: argparse.Namespace, art: torch.Tensor, grey: bool) -> int:
    """Print (or write as JSON) clip_check for each --video clip; an unreadable clip is named and
    skipped. Exit status 0, or 1 if any clip failed."""
    results, failed = {}, 0
    for clip in args.video:
        try:
            results[clip] = clip_check(
                net, read_frames(clip), art, grey, args.temporal_blend, args.size, args.device
            )
        except VideoError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
    report = {"checkpoint": str(args.ckpt), "temporal_blend": args.temporal_blend, "clips": results}
    if args.json == "-":
        print(json.dumps(report, indent=2))
    else:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(format_clips(results))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        stylizer = stylize.load(args.ckpt, args.device)
        net, meta = bind_for_evaluation(stylizer, args)
        style_image = Path(args.style) if args.style and not stylizer.styles else None
        if args.video:
            art = style_image_of(meta, style_image)
            grey = bool(meta.get("training", {}).get("style_luminance_only", False))
            return video_report(net, args, art, grey)
        for item in args.images:
            if not Path(item).exists():
                raise ImageError(f"{item}: no such file or folder")
            if Path(item).is_file() and Path(item).suffix.lower() not in IMAGE_SUFFIXES:
                raise ImageError(f"{item}: not an image file")
        photos = load_photos(args.images, args.size)
        if not photos:
            raise ImageError(f"{' '.join(args.images)}: no readable images")
        if args.independent:
            grey = bool(meta.get("training", {}).get("style_luminance_only", False))
            rows = independent_check(
                net, photos, style_image_of(meta, style_image), grey, args.device
            )
        else:
            objective = objective_from_meta(meta, args.vgg_weights, style_image)
    except (CheckpointError, ImageError, VGGWeightsError, FileNotFoundError) as e:
        print(f"error: {str(e).replace('loss.vgg_weights=', '--vgg-weights ')}", file=sys.stderr)
        return 2
    if args.independent:
        if args.json:
            text = json.dumps({"checkpoint": str(args.ckpt), "rows": rows}, indent=2)
            if args.json == "-":
                print(text)
                return 0
            Path(args.json).write_text(text + "\n")
        print(format_check(rows, grey))
        return 0
    report = evaluate(net, objective, photos, args.steps, args.init, args.device, progress=True)
    report.update(checkpoint=str(args.ckpt), style=meta.get("style"), vgg_weights=args.vgg_weights)
    if args.json == "-":
        print(json.dumps(report, indent=2))
        return 0
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
