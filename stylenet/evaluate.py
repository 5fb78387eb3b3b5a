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
import sys
from pathlib import Path
from typing import Any

import torch

from stylenet import stylize
from stylenet.eval.held_out import (
    clip_check,
    evaluate,
    format_check,
    format_clips,
    format_table,
    half_rules,
    independent_check,
    load_photos,
    objective_from_meta,
    style_image_of,
)
from stylenet.files.images import IMAGE_SUFFIXES, ImageError
from stylenet.losses.loss_net import VGGWeightsError
from stylenet.losses.optimization import INITS
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.stylize.shipped import to_stderr
from stylenet.stylize.stylizer import Stylizer
from stylenet.stylize.video import VideoError, read_frames


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
        stylizer = stylize.load(args.ckpt, args.device, announce=to_stderr)  # stdout: --json
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
            report = {"checkpoint": str(args.ckpt), "rows": rows, "half_rules": half_rules(rows)}
            text = json.dumps(report, indent=2)
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
