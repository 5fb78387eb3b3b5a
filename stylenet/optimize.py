"""Optimization-based style transfer (Gatys et al. 2016).

    python -m stylenet.optimize photo.jpg --style art.jpg [--preset johnson|gatys|seed] [-o out.png]
    python -m stylenet.optimize photo.jpg --style reference.jpg --photorealistic

Optimizes the pixels of one image against the same StyleObjective, loss network and loss functions
that training uses. Slow (hundreds of VGG passes) but needs no training; the reference that a
feed-forward model approximates. Presets:

- seed: the design document's Gatys experiment, exactly. The original Oxford VGG19 weights
  (--vgg-weights original, offline) fed 0-255 RGB minus 128 per channel (convention mean128).
  Per layer, content (1/(2MN)) sum (F-P)^2 and style (1/(4M^2N^2)) sum (G-A)^2 with unnormalised
  Grams G = F F^T (N channels, M = H*W); each kind is its layer-weighted sum divided by its number
  of layers (see seed_layer_weights for the conversion to our losses). Content conv4_2 + conv5_2
  (0.5 each), style conv1_1 ... conv5_1 (0.2 each), alpha 1, beta 500, no tv; 3000 steps, long
  side 450 (450x300 for a 3:2 photo), starting from 0.5 * noise + 0.5 * photo.
- gatys: the same layers and weights in the paper's sums (content 1/2 sum (F-P)^2, no division by
  the number of layers), converted per layer by paper_layer_weights: exact with --vgg-weights
  original (Caffe convention), an approximation of the Caffe scale with torchvision's weights.
- johnson: VGG16 as in training (configs/loss/johnson.yaml, the weights of the paintings
  in configs/style/), starting from the photo.
- luan: Deep Photo Style Transfer's layers (Luan et al. 2017: content conv4_2, style conv1_1 ...
  conv5_1) on the original VGG19 with relative errors, starting from the photo, without their
  segmentation masks. --photorealistic adds their photorealism term (stylenet/ops/matting.py) to any
  preset and makes luan the default preset.

The optimizer is L-BFGS by default: SciPy's L-BFGS-B with every pixel boxed to [0, 1]. L-BFGS is
what Gatys et al. used (one smooth, full-batch objective), and the box keeps every iterate a valid
image instead of clamping afterwards. --optimizer adam (clamped after each step) is for comparison.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from stylenet.files.images import ImageError, load_image, save_image
from stylenet.losses.loss_net import VGGWeightsError
from stylenet.losses.optimization import (
    INITS,
    OPTIMIZERS,
    PHOTO_WEIGHT,
    PRESETS,
    Photorealistic,
    preset_objective,
    run,
)
from stylenet.ops.preserve_color import PRESERVE_METHODS, bare_preserve_color, preserve_color


def output_path(photo: Path, style: Path, output: Path | None) -> Path:
    """-o FILE, -o DIR/ (existing folder), or <photo>_<style>.png beside the photo."""
    name = f"{photo.stem}_{style.stem}.png"
    if output is None:
        return photo.parent / name
    return output / name if output.is_dir() else output


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m stylenet.optimize", description=__doc__.splitlines()[0]
    )
    p.add_argument("photo", type=Path, help="content photo")
    p.add_argument("--style", type=Path, required=True, help="style image (artwork)")
    p.add_argument(
        "--preset", choices=sorted(PRESETS), help="johnson, or luan with --photorealistic"
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs")
    p.add_argument(
        "--steps", type=int, help="iterations (preset: johnson 500, luan 1000, gatys/seed 3000)"
    )
    p.add_argument("--size", type=int, help="long side of photo and style image in pixels")
    p.add_argument(
        "--init", choices=INITS, help="start image (preset: johnson, luan photo; else mix)"
    )
    p.add_argument("--content-weight", type=float)
    p.add_argument("--style-weight", type=float)
    p.add_argument("--tv-weight", type=float)
    p.add_argument(
        "--normalize",
        action="store_true",
        help="unit-free layer losses (see stylenet/losses/objective.py); weights then default "
        "to 1, 1",
    )
    p.add_argument("--lr", type=float, help="step size (lbfgs 1, adam 0.02)")
    p.add_argument(
        "--vgg-weights",
        help="imagenet | original | random | <state dict> (preset: seed original, else imagenet)",
    )
    p.add_argument(
        "--preserve-color",
        nargs="?",
        const="luminance",
        choices=PRESERVE_METHODS,
        help="keep photo colours",
    )
    p.add_argument(
        "--photorealistic",
        action="store_true",
        help="add Luan et al.'s photorealism term (Matting Laplacian of the photo)",
    )
    p.add_argument(
        "--photo-weight",
        type=float,
        help=f"weight of the photorealism term (default {PHOTO_WEIGHT:g}, relative to a "
        "normalized objective)",
    )
    p.add_argument("-o", "--output", type=Path, help="output file or existing folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(bare_preserve_color(sys.argv[1:] if argv is None else argv))
    if args.steps is not None and args.steps < 0:
        p.error(f"--steps {args.steps} must be >= 0")
    if args.size is not None and args.size < 16:
        p.error(f"--size {args.size} must be at least 16")
    if args.photo_weight is not None and not args.photorealistic:
        p.error("--photo-weight needs --photorealistic")
    if args.photo_weight is not None and not (
        args.photo_weight >= 0 and math.isfinite(args.photo_weight)
    ):
        p.error(f"--photo-weight {args.photo_weight} must be a finite number >= 0")
    args.preset = args.preset or ("luan" if args.photorealistic else "johnson")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    steps = preset["steps"] if args.steps is None else args.steps
    size = args.size or preset["size"]
    dst = output_path(args.photo, args.style, args.output)
    if dst.exists() and not args.overwrite:
        print(f"error: {dst}: exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    device = torch.device(args.device)
    try:
        photo = load_image(args.photo, max_side=size).unsqueeze(0).to(device)
        style = load_image(args.style, max_side=size).to(device)
        objective = preset_objective(
            args.preset,
            photo,
            style,
            args.vgg_weights,
            args.content_weight,
            args.style_weight,
            args.tv_weight,
            args.normalize,
        ).to(device)
        if args.photorealistic:
            weight = PHOTO_WEIGHT if args.photo_weight is None else args.photo_weight
            objective = Photorealistic(objective, photo, weight)
    except (ImageError, VGGWeightsError) as e:
        print(f"error: {str(e).replace('loss.vgg_weights=', '--vgg-weights ')}", file=sys.stderr)
        return 2
    loss_net, vgg_weights = objective.loss_net, args.vgg_weights or preset["vgg_weights"]
    h, w = photo.shape[-2:]
    print(
        f"{args.preset}: {preset['arch']}, {args.optimizer}, {steps} steps, {w}x{h}, "
        f"init {args.init or preset['init']}, vgg weights {vgg_weights} ({loss_net.convention})"
        + (f", photorealism weight {objective.weight:g}" if args.photorealistic else ""),
        file=sys.stderr,
    )
    start = time.perf_counter()
    try:
        image, history = run(
            objective,
            photo,
            steps,
            args.optimizer,
            args.init or preset["init"],
            args.lr,
            args.seed,
            progress=True,
        )
    except FloatingPointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    if args.preserve_color:
        image = preserve_color(image, photo, args.preserve_color)
    first, last = history[0], history[-1]
    print(
        f"content loss {last['content_loss']:.4g}, style loss {last['style_loss']:.4g}"
        + (f", photorealism {last['photo_loss']:.4g}" if "photo_loss" in last else "")
        + f" (unweighted); total {last['loss']:.4g} (from {first['loss']:.4g}) "
        f"in {seconds:.1f} s ({seconds / max(steps, 1):.2f} s/step)"
    )
    try:
        save_image(image[0], dst)
    except (ImageError, OSError) as e:
        print(f"error: {dst}: {e}" if str(dst) not in str(e) else f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.photo} -> {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
