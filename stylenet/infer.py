"""Stylize photos with a trained model: `python infer.py --ckpt anime.ckpt photo.jpg more/ *.png`.

Writes <stem>_<style>.<ext> beside each input (or into -o DIR). Video files (clip.mp4 ...) are
stylized frame by frame (stylenet/stylize/video.py) with the same options. --ckpt may also be an
exported .onnx file, run by ONNX Runtime. Models load through stylenet.stylize, for every kind.
No Hydra; no VGG except AdaIN's encoder.

AdaIN models take any artwork: `python infer.py --ckpt adain.ckpt --style art.jpg photo.jpg`
(--alpha 0..1 style strength in feature space; several artworks mixed by --style-weights), and
write <stem>_<artwork stem>.<ext> (<stem>_<a>+<b>.<ext> for a mix).

A multi-style model (CIN, StyleBank) needs `--style NAME [NAME ...]`, `--style all` (one output
per style), `--style none` (StyleBank's auto-encoder: <stem>_reconstruction) or
`--mix a=0.7,b=0.3` (<stem>_mix-a0.7-b0.3).
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch

from stylenet import stylize
from stylenet.allocator import up_to_size
from stylenet.files.images import ImageError, find_images, load_image, save_image
from stylenet.nets.adain import STYLE_SIZE
from stylenet.ops.preserve_color import PRESERVE_METHODS, bare_preserve_color, blend, preserve_color
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.stylize.shipped import DamagedModelError
from stylenet.stylize.stylizer import UsageError, parse_mix
from stylenet.stylize.video import VIDEO_SUFFIXES, VideoError, find_videos, stylize_video
from stylenet.stylize.work_size import at_work_size


def expand_inputs(items: Iterable[str], skip_suffix: str | tuple[str, ...] = "") -> Iterator[Path]:
    """Files as given, image and video files inside folders (recursive) and glob matches, in order.

    Inside folders, files whose stem ends with skip_suffix (earlier outputs such as
    photo_anime.jpg) are left out. Names that match nothing are yielded as they are so the
    caller reports them.
    """
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(find_images(path) + find_videos(path))
            yield from (p for p in found if not (skip_suffix and p.stem.endswith(skip_suffix)))
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            yield from (Path(m) for m in matches) if matches else [path]
        else:
            yield path


def output_path(src: Path, style: str, out_dir: Path | None) -> Path:
    return (out_dir or src.parent) / f"{src.stem}_{style}{src.suffix.lower()}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="infer.py", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", help="image or video files, folders or glob patterns")
    p.add_argument("--ckpt", required=True, help="model file, or a bare name from checkpoints/")
    p.add_argument(
        "--style",
        nargs="+",
        metavar="NAME|ART",
        help="multi-style models: the style(s) to apply, 'all', or 'none' (StyleBank's "
        "auto-encoder); AdaIN models: artwork file(s) to take the style from. Followed directly "
        "by the inputs, --style takes one name or artwork, or one artwork per --style-weights "
        "number",
    )
    p.add_argument(
        "--mix",
        metavar="A=W,B=W",
        help="multi-style models: a convex mix, e.g. wave=0.7,scream=0.3",
    )
    p.add_argument("-o", "--output-dir", type=Path, help="write here instead of beside each input")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto: bf16 on GPUs and bf16-capable CPUs, else fp32",
    )
    p.add_argument(
        "--preserve-color",
        nargs="?",
        const="luminance",
        choices=PRESERVE_METHODS,
        help="keep the photo's colours: luminance (YUV, default) or histogram matching",
    )
    p.add_argument(
        "--style-weights",
        nargs="+",
        type=float,
        metavar="W",
        help="AdaIN: one weight per --style artwork, mixed in feature space (normalised to sum 1)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=1.0,
        help="AdaIN: style strength 0..1, interpolated in feature space (0: the photo's features "
        "decoded; default 1)",
    )
    p.add_argument(
        "--style-size",
        type=int,
        default=STYLE_SIZE,
        help=f"AdaIN: long side the artworks are read at (default {STYLE_SIZE})",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="style strength 0..1: blend of photo (0) and stylized (1) pixels (default 1)",
    )
    p.add_argument(
        "--work-size",
        type=int,
        metavar="PX",
        help="stylize photos and frames shrunk to this long side, then enlarge the result: "
        "brush strokes and outlines as large as on a photo of that size (e.g. 1024 for a "
        "12-megapixel photo; default: the photo's own size)",
    )
    p.add_argument(
        "--temporal-blend",
        type=float,
        default=0.0,
        metavar="A",
        help="videos: mix A (0..1) of the previous output frame into each one, less flicker "
        "but smeared motion (default 0)",
    )
    p.add_argument(
        "--warping-error",
        action="store_true",
        help="videos: also print the warping error (optical flow; docs/video.md)",
    )
    args = p.parse_args(bare_preserve_color(sys.argv[1:] if argv is None else argv))
    if args.style and not args.inputs:  # `--style art.jpg photo.jpg`: argparse took both
        n = len(args.style_weights) if args.style_weights else 1
        args.style, args.inputs = args.style[:n], args.style[n:]
    if not args.inputs:
        p.error("the following arguments are required: inputs")
    if not 0.0 <= args.strength <= 1.0:
        p.error(f"--strength {args.strength} must be between 0 and 1")
    if not 0.0 <= args.alpha <= 1.0:
        p.error(f"--alpha {args.alpha} must be between 0 and 1")
    if args.style_weights and (not args.style or len(args.style_weights) != len(args.style)):
        p.error("--style-weights needs one number per --style artwork")
    if args.style_weights and (min(args.style_weights) < 0 or sum(args.style_weights) <= 0):
        p.error("--style-weights must be >= 0 and not all 0")
    if args.style_size < 16:
        p.error(f"--style-size {args.style_size} is too small")
    if not 0.0 <= args.temporal_blend < 1.0:
        p.error(f"--temporal-blend {args.temporal_blend} must be at least 0 and below 1")
    if args.work_size is not None and args.work_size < 64:
        p.error(f"--work-size {args.work_size} must be at least 64 (pixels on the long side)")
    return args


def apply_controls(
    stylized: torch.Tensor, photo: torch.Tensor, preserve: str | None, strength: float
) -> torch.Tensor:
    """--preserve-color, then --strength, on a stylized image and its photo (same size)."""
    if preserve:
        stylized = preserve_color(stylized, photo, preserve)
    return blend(photo, stylized, strength) if strength < 1.0 else stylized


def check_output(src: Path, dst: Path, overwrite: bool) -> None:
    """FileExistsError unless dst may be written for src."""
    if dst.resolve() == src.resolve():
        raise FileExistsError(f"{dst}: would overwrite its input")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst}: exists (pass --overwrite to replace it)")


def report_failure(src: Path, dst: Path, e: Exception) -> None:
    """The one error line for a file that could not be done."""
    if isinstance(e, MemoryError):
        e = "not enough memory for this image"
    elif isinstance(e, OSError) and not isinstance(e, FileExistsError):
        e = f"cannot write {dst} ({e.strerror or e})"
    print(f"error: {src}: {e}" if str(src) not in str(e) else f"error: {e}", file=sys.stderr)


def summary(done: int, failed: int, what: str) -> int:
    """Exit status of a batch; says so when nothing was found or something failed."""
    if done + failed == 0:
        print(f"error: no input {what}", file=sys.stderr)
        return 1
    if failed:
        print(f"{failed} of {done + failed} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def load_runs(args: argparse.Namespace) -> list[tuple[str, Callable]]:
    """(output suffix, stylize) for each style asked for (one for a single-style or AdaIN
    model, whose --style artworks make one stylizer)."""
    stylizer = stylize.load(args.ckpt, args.device, args.precision)
    if stylizer.takes_artworks:
        bound = stylizer.bind(
            artworks=args.style,
            alpha=args.alpha,
            weights=args.style_weights,
            style_size=args.style_size,
        )
        return [(bound.label, bound)]
    adain_only = args.style_weights or args.alpha != 1.0
    if adain_only:
        stylizer.bind(weights=args.style_weights, alpha=args.alpha)  # UsageError saying why
    choices: list[dict] = []
    for style in args.style or []:
        if style != "all":
            choices.append({"style": style})
            continue
        if not stylizer.styles:
            raise CheckpointError(f"{args.ckpt}: --style all needs a multi-style model")
        choices += [{"style": s} for s in stylizer.styles if {"style": s} not in choices]
    if args.mix:
        choices.append({"mix": parse_mix(args.mix)})
    return [(b.label, b) for b in (stylizer.bind(**c) for c in choices or [{}])]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = load_runs(args)
    except (CheckpointError, UsageError, ImageError, RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, DamagedModelError) else 2
    runs = [(style, at_work_size(up_to_size(run), args.work_size)) for style, run in runs]
    done = failed = 0
    suffixes = tuple(f"_{style}" for style, _ in runs)
    jobs = (
        (src, style, run) for src in expand_inputs(args.inputs, suffixes) for style, run in runs
    )
    for src, style, run in jobs:
        dst = output_path(src, style, args.output_dir)
        try:
            check_output(src, dst, args.overwrite)
            if src.suffix.lower() in VIDEO_SUFFIXES:
                r = stylize_video(
                    src,
                    dst,
                    lambda x, run=run: apply_controls(
                        run(x), x, args.preserve_color, args.strength
                    ),
                    args.temporal_blend,
                    warping=args.warping_error,
                )
                done += 1
                print(
                    f"{src} -> {dst} ({r.frames} frames at {r.fps:.3g} fps, "
                    f"{'audio copied' if r.audio else 'no audio'}; flicker {r.flicker:.2f}: "
                    "output's mean frame-to-frame change over the input's)"
                )
                if args.warping_error:
                    print(
                        f"{dst}: warping error {r.warping:.4f} (the input clip's own "
                        f"{r.input_warping:.4f}; lower is steadier, docs/video.md)"
                    )
                continue
            photo = load_image(src)
            out = apply_controls(run(photo), photo, args.preserve_color, args.strength)
            save_image(out, dst)
        except (ImageError, VideoError, FileExistsError, OSError) as e:
            failed += 1
            report_failure(src, dst, e)
            continue
        done += 1
        print(f"{src} -> {dst}")
    return summary(done, failed, "images or videos")


if __name__ == "__main__":
    sys.exit(main())
