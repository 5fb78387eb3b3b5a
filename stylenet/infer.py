"""Stylize photos with a trained model: `python infer.py --ckpt anime.ckpt photo.jpg more/ *.png`.

Writes <stem>_<style>.<ext> beside each input (or into -o DIR). Video files (clip.mp4 ...) are
stylized frame by frame (stylenet/video.py). --ckpt may also be an exported .onnx file, run by
ONNX Runtime (stylenet/export.py). No Hydra; no VGG except AdaIN's encoder.

AdaIN models take any artwork: `python infer.py --ckpt adain.ckpt --style art.jpg photo.jpg`
(--alpha 0..1 style strength in feature space; several artworks mixed by --style-weights), and
write <stem>_<artwork stem>.<ext> (<stem>_<a>+<b>.<ext> for a mix).
"""

from __future__ import annotations

import argparse
import glob
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import torch

from stylenet.checkpoint import CheckpointError, load_model
from stylenet.color import METHODS, blend, preserve_color
from stylenet.export import load_onnx
from stylenet.images import ImageError, find_images, load_image, save_image
from stylenet.nets.adain import AdaINNet, mix_statistics
from stylenet.nets.transform_net import TransformNet
from stylenet.precision import compute_dtype
from stylenet.tiling import stylize_adain_strips, stylize_strips
from stylenet.video import VIDEO_SUFFIXES, VideoError, find_videos, stylize_video

CHECKPOINT_DIR = Path("checkpoints")
STYLE_SIZE = 512  # AdaIN: the artwork's long side when its statistics are taken (as the paper)


class UsageError(ValueError):
    """Options that do not fit the model (e.g. an AdaIN model without --style)."""


def resolve_checkpoint(name: str) -> Path:
    """A path as given; else a bare name looked up in checkpoints/ (suffix optional)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if len(path.parts) == 1:
        for candidate in (path, path.with_suffix(".ckpt"), path.with_suffix(".safetensors")):
            if (CHECKPOINT_DIR / candidate).is_file():
                return CHECKPOINT_DIR / candidate
    raise CheckpointError(f"{name}: no such checkpoint (looked here and in {CHECKPOINT_DIR}/)")


def expand_inputs(items: Iterable[str], skip_suffix: str = "") -> Iterator[Path]:
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


def load_stylizer(
    ckpt: str,
    device: torch.device | str = "cpu",
    precision: str = "auto",
    style: Sequence[str] | None = None,
    style_weights: Sequence[float] | None = None,
    alpha: float = 1.0,
    style_size: int = STYLE_SIZE,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict]:
    """(stylize, meta): stylize maps a photo (3, H, W) in [0, 1] to the stylized photo.

    A .onnx file runs in ONNX Runtime (fp32; device and precision do not apply); anything else is
    a checkpoint (see stylenet/checkpoint.py). `style`, `style_weights`, `alpha`: the artwork
    files of an AdaIN model, their mix and the style strength (UsageError for other kinds).
    For AdaIN, meta["style"] names the artworks (a+b for a mix).
    """
    path = resolve_checkpoint(ckpt)
    kind = "onnx" if path.suffix.lower() == ".onnx" else None
    if style and kind == "onnx":
        raise UsageError(f"{path}: --style is for AdaIN checkpoints, this is a one-style model")
    if path.suffix.lower() == ".onnx":
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
    if style or style_weights or alpha != 1.0:
        raise UsageError(
            f"{path}: a one-style model ({meta.get('style')}); --style, --style-weights and "
            "--alpha are for AdaIN models (--strength blends with the photo)"
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
        "--style",
        nargs="+",
        metavar="ART",
        help="AdaIN models: artwork file(s) to take the style from. Followed directly by the "
        "inputs, --style takes one artwork, or one per --style-weights number",
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
    args = p.parse_args(argv)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run, meta = load_stylizer(
            args.ckpt,
            torch.device(args.device),
            args.precision,
            style=args.style,
            style_weights=args.style_weights,
            alpha=args.alpha,
            style_size=args.style_size,
        )
    except (CheckpointError, UsageError, ImageError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    style = str(meta.get("style", "styled"))
    done = failed = 0
    for src in expand_inputs(args.inputs, skip_suffix=f"_{style}"):
        dst = output_path(src, style, args.output_dir)
        try:
            check_output(src, dst, args.overwrite)
            if src.suffix.lower() in VIDEO_SUFFIXES:
                r = stylize_video(
                    src,
                    dst,
                    lambda x: apply_controls(run(x), x, args.preserve_color, args.strength),
                    args.temporal_blend,
                )
                done += 1
                print(
                    f"{src} -> {dst} ({r.frames} frames at {r.fps:.3g} fps, "
                    f"{'audio copied' if r.audio else 'no audio'}; flicker {r.flicker:.2f}: "
                    "output's mean frame-to-frame change over the input's)"
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
