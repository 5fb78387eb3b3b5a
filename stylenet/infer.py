"""Stylize photos with a trained model: `python infer.py --ckpt anime.ckpt photo.jpg more/ *.png`.

Writes <stem>_<style>.<ext> beside each input (or into -o DIR). Video files (clip.mp4 ...) are
stylized frame by frame (stylenet/video.py). --ckpt may also be an exported .onnx file, run by
ONNX Runtime (stylenet/export.py). No Hydra; no VGG except AdaIN's encoder.

AdaIN models take any artwork: `python infer.py --ckpt adain.ckpt --style art.jpg photo.jpg`
(--alpha 0..1 style strength in feature space; several artworks mixed by --style-weights), and
write <stem>_<artwork stem>.<ext> (<stem>_<a>+<b>.<ext> for a mix).

ONNX Runtime (stylenet/export.py). No Hydra, no VGG.

A multi-style model (CIN, StyleBank) needs `--style NAME [NAME ...]`, `--style all` (one output
per style), `--style none` (StyleBank's auto-encoder: <stem>_reconstruction) or
`--mix a=0.7,b=0.3` (<stem>_mix-a0.7-b0.3).
"""

from __future__ import annotations

import argparse
import glob
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import torch

from stylenet.checkpoint import CheckpointError, load_model, model_kind
from stylenet.color import METHODS, bare_preserve_color, blend, preserve_color
from stylenet.export import load_onnx
from stylenet.images import ImageError, find_images, load_image, save_image
from stylenet.nets.adain import STYLE_SIZE, AdaINNet, mix_statistics
from stylenet.nets.transform_net import TransformNet
from stylenet.precision import compute_dtype
from stylenet.shipped import DamagedModelError, resolve_model
from stylenet.tiling import stylize_adain_strips, stylize_strips
from stylenet.video import VIDEO_SUFFIXES, VideoError, find_videos, stylize_video


class UsageError(ValueError):
    """Options that do not fit the model (e.g. an AdaIN model without --style)."""


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


@torch.inference_mode()
def stylize(
    net: TransformNet,
    image: torch.Tensor,
    device: torch.device | str = "cpu",
    precision: str = "auto",
) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> stylized (3, H, W) in [0, 1], float32 on CPU.

    precision: auto (bf16 where the device has it), bf16 or fp32. See stylenet/tiling.py.
    """
    x = image.unsqueeze(0).to(device)
    return stylize_strips(net, x, compute_dtype(precision, x.device))[0].cpu()


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") for n in z.namelist())


Style = str | Mapping[str, float] | None  # a style name, a mix {name: weight}, or none


def style_label(style: Style) -> str:
    """The output-name suffix of a style choice: the name, mix-a0.7-b0.3, or reconstruction."""
    if style is None or style == "none":
        return "reconstruction"
    if isinstance(style, str):
        return style
    return "mix-" + "-".join(f"{k}{w:g}" for k, w in style.items())


def parse_mix(text: str) -> dict[str, float]:
    """'a=0.7,b=0.3' -> {'a': 0.7, 'b': 0.3}; ValueError with the reason."""
    mix = {}
    for item in text.split(","):
        name, eq, w = item.strip().partition("=")
        try:
            mix[name.strip()] = float(w)
        except ValueError:
            raise ValueError(f"--mix {text}: expected name=weight,name=weight") from None
        if not eq or not name.strip():
            raise ValueError(f"--mix {text}: expected name=weight,name=weight")
    return mix


def bind_style(net, meta: dict, path: Path, style: Style):
    """The plain stylizer of a multi-style net for a style name, 'none' or a mix;
    CheckpointError naming the model's styles otherwise."""
    styles = list(meta.get("styles", []))
    listed = ", ".join(styles)
    if style is None:
        raise CheckpointError(
            f"{path}: a {meta['kind']} model with several styles; pass --style NAME, --style all "
            f"or --mix a=0.7,b=0.3 (styles: {listed})"
        )
    if style == "none":
        if meta["kind"] != "stylebank":
            raise CheckpointError(f"{path}: --style none needs a stylebank model; styles: {listed}")
        return net.bind(None)
    if isinstance(style, str) and style not in styles:
        raise CheckpointError(f"{path}: no style {style!r}; styles: {listed}")
    try:
        return net.bind(style)
    except ValueError as e:  # a mix: unknown name, negative weight, sum not 1
        raise CheckpointError(f"{path}: --mix: {e}") from None


def load_stylizer(
    ckpt: str,
    device: torch.device | str = "cpu",
    precision: str = "auto",
    style: Style | Sequence[str] = None,
    style_weights: Sequence[float] | None = None,
    alpha: float = 1.0,
    style_size: int = STYLE_SIZE,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict]:
    """(stylize, meta): stylize maps a photo (3, H, W) in [0, 1] to the stylized photo.

    A .onnx file runs in ONNX Runtime (fp32; device and precision do not apply); anything else is
    a checkpoint (see stylenet/checkpoint.py). A multi-style checkpoint needs `style`: a style
    name, a mix {name: weight} (weights >= 0 summing to 1) or "none" (StyleBank's auto-encoder);
    meta["style"] is then the output-name suffix of that choice. For an AdaIN model, `style`,
    `style_weights` and `alpha` are the artwork files, their mix and the style strength, and
    meta["style"] names the artworks (a+b for a mix). UsageError for options the model lacks.
    """
    path = resolve_model(ckpt)
    options = style is not None or style_weights or alpha != 1.0
    if path.suffix.lower() == ".onnx":
        if options:
            raise UsageError(f"{path}: an exported single-style model; --style, --mix, "
                             "--style-weights and --alpha do not apply")  # fmt: skip
        return load_onnx(path)
    if _is_torchscript(path):
        raise CheckpointError(
            f"{path}: a TorchScript program (from stylenet.export); infer.py takes .ckpt, "
            ".safetensors or .onnx models, run this one with torch.jit.load"
        )
    net, meta = load_model(path)
    net.to(device)
    if isinstance(net, AdaINNet):
        controls = (style, style_weights, alpha, style_size)
        return adain_stylizer(net, meta, path, device, precision, *controls)
    if meta.get("kind") in ("cin", "stylebank") and not (style_weights or alpha != 1.0):
        net = bind_style(net, meta, path, style).to(device)
        meta = {**meta, "style": style_label(style)}
    elif options:
        raise UsageError(
            f"{path}: a single-style model ({meta.get('style')}); --style and --mix are for "
            "multi-style models, --style-weights and --alpha for AdaIN models (--strength "
            "blends with the photo)"
        )
    return (lambda photo: stylize(net, photo, device, precision)), meta


def adain_stylizer(
    net: AdaINNet,
    meta: dict,
    path: Path,
    device: torch.device | str,
    precision: str,
    style: Sequence[str] | None,
    style_weights: Sequence[float] | None,
    alpha: float,
    style_size: int,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict]:
    """The AdaIN stylizer: artworks read and their relu4_1 statistics taken once, here."""
    if not style:
        raise UsageError(f"{path}: an AdaIN model; pass the artwork(s) with --style ART [ART ...]")
    if style_weights and len(style_weights) != len(style):
        raise UsageError(
            f"--style-weights: {len(style_weights)} number(s) for {len(style)} artwork(s)"
        )
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"--alpha {alpha} must be between 0 and 1")
    stats = []
    for art in style:
        image = load_image(Path(art).expanduser(), max_side=style_size)  # ImageError names it
        stats.append(net.style_statistics(image))
    try:
        mean, std = mix_statistics(stats, style_weights)
    except ValueError as e:
        raise UsageError(f"--style-weights: {e}") from None
    dtype = compute_dtype(precision, torch.device(device))
    meta["style"] = "+".join(Path(a).stem for a in style)

    @torch.inference_mode()
    def run(photo: torch.Tensor) -> torch.Tensor:
        x = photo.unsqueeze(0).to(device)
        return stylize_adain_strips(net, x, mean, std, alpha, dtype)[0].cpu()

    return run, meta


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
        choices=METHODS,
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
    device = torch.device(args.device)
    controls = {
        "style_weights": args.style_weights,
        "alpha": args.alpha,
        "style_size": args.style_size,
    }
    path = resolve_model(args.ckpt)
    if model_kind(path) == "adain":
        run, meta = load_stylizer(str(path), device, args.precision, args.style, **controls)
        return [(str(meta["style"]), run)]
    choices: list[Style] = []
    for style in args.style or []:
        if style != "all":
            choices.append(style)
            continue
        _, meta = load_model(path)
        if "styles" not in meta:
            raise CheckpointError(f"{args.ckpt}: --style all needs a multi-style model")
        choices += [s for s in meta["styles"] if s not in choices]
    if args.mix:
        choices.append(parse_mix(args.mix))
    runs = []
    for choice in choices or [None]:
        run, meta = load_stylizer(str(path), device, args.precision, choice, **controls)
        runs.append((str(meta.get("style", "styled")), run))
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs = load_runs(args)
    except (CheckpointError, UsageError, ImageError, RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, DamagedModelError) else 2
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
