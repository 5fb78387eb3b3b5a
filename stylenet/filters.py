"""Classic photo filters: `python -m stylenet.filters photo.jpg more/ --filter oil-paint`.

Writes <stem>_<filter>.<ext> beside each input (or into -o DIR), with the input's size, like
infer.py. Filters: find-edges, contour, emboss, ripple, bulge, oil-paint, cartoon (the functions
are in stylenet/ops/classic.py; each option belongs to the filters whose function takes it) and
color-transfer (stylenet/ops/color_transfer.py: --reference ref.jpg --method
reinhard|histogram|mkl).
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from stylenet.files.images import ImageError, load_pil, save_image
from stylenet.gallery import _font
from stylenet.infer import check_output, expand_inputs, output_path, report_failure, summary
from stylenet.ops import classic as ops
from stylenet.ops.color_transfer import TRANSFER_METHODS, color_transfer

FILTERS: dict[str, Callable[..., np.ndarray]] = {
    "find-edges": ops.find_edges,
    "contour": ops.contour,
    "emboss": ops.emboss,
    "ripple": ops.ripple,
    "bulge": ops.bulge,
    "oil-paint": ops.oil_paint,
    "cartoon": ops.cartoon,
    "color-transfer": color_transfer,
}
FILTER_METHODS = {"find-edges": ("sobel", "canny"), "color-transfer": TRANSFER_METHODS}


def options(name: str) -> dict[str, object]:
    """The filter's options and their defaults, from its function's signature."""
    params = list(inspect.signature(FILTERS[name]).parameters.values())[1:]
    return {p.name: p.default for p in params}


def number(
    kind: type, low: float | None = None, high: float | None = None, above: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite int or float within [low, high] (above: strictly over low)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            name = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be finite")
        if low is not None and (value <= low if above else value < low):
            raise argparse.ArgumentTypeError(f"{text} must be {'>' if above else '>='} {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be <= {high}")
        return value

    return parse


def point(text: str) -> tuple[float, float]:
    """X,Y as fractions of width and height, each in [0, 1]."""
    parts = text.split(",")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y (e.g. 0.5,0.4)") from None
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise argparse.ArgumentTypeError(f"{text}: X and Y must be fractions between 0 and 1")
    return x, y


OPTIONS = {  # option: (argparse type, help); defaults come from the filter functions
    "method": (
        str,
        "find-edges: sobel (colour gradient) or canny (thin black lines); "
        "color-transfer: reinhard (Lab means and deviations), histogram (Lab CDFs) or mkl "
        "(Lab covariance, Monge-Kantorovich)",
    ),
    "strength": (
        number(float, 0),
        "find-edges: edge gain (sobel: a step of 1/strength is black); color-transfer: 0..1",
    ),
    "levels": (
        number(int, 1, 256),
        "contour: iso-lines; oil-paint: intensity bins; cartoon: steps; 1..256",
    ),
    "angle": (number(float), "emboss: light direction in degrees, 0 right, 90 top"),
    "depth": (number(float, 0), "emboss: relief height"),
    "amplitude": (number(float, 0), "ripple: displacement in pixels"),
    "wavelength": (number(float, 0, above=True), "ripple: wave length in pixels"),
    "amount": (number(float, -1, 1), "bulge: -1..1, negative pinches"),
    "center": (point, "bulge: centre X,Y as fractions of width and height"),
    "radius": (number(int, 1), "oil-paint: neighbourhood radius in pixels"),
    "lines": (number(float, 0, 1), "cartoon: line strength 0..1"),
    "reference": (Path, "color-transfer: the image whose colours the photos take"),
}


def defaults(option: str) -> str:
    """'(default: contour 8, oil-paint 20)' from the signatures of the filters that take it."""
    found = [(f, options(f)[option]) for f in FILTERS if option in options(f)]
    if all(d is inspect.Parameter.empty for _, d in found):
        return "(required)"
    found = [(f, ",".join(map(str, d)) if isinstance(d, tuple) else d) for f, d in found]
    if len({str(d) for _, d in found}) == 1:
        return f"(default: {found[0][1]})"
    return "(default: " + ", ".join(f"{f} {d}" for f, d in found) + ")"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m stylenet.filters",
        usage="%(prog)s INPUT [INPUT ...] --filter NAME [options] [-o DIR] [--overwrite]",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("inputs", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--filter", required=True, choices=FILTERS, help="the filter to apply")
    p.add_argument("-o", "--output-dir", type=Path, help="write here instead of beside each input")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    for name, (kind, text) in OPTIONS.items():
        extra = {"choices": sum(FILTER_METHODS.values(), ())} if name == "method" else {}
        p.add_argument(f"--{name}", type=kind, help=f"{text} {defaults(name)}", **extra)
    args = p.parse_args(argv)
    allowed = options(args.filter)
    for name in OPTIONS:
        if getattr(args, name) is not None and name not in allowed:
            takes = ", ".join(f"--{o}" for o in allowed)
            p.error(f"--{name} does not apply to --filter {args.filter} (it takes {takes})")
        if getattr(args, name) is None and allowed.get(name, 0) is inspect.Parameter.empty:
            p.error(f"--filter {args.filter} needs --{name}")
    if args.method is not None and args.method not in FILTER_METHODS[args.filter]:
        p.error(f"--filter {args.filter} takes --method {' / '.join(FILTER_METHODS[args.filter])}")
    if args.filter == "color-transfer" and args.strength is not None and args.strength > 1:
        p.error(f"--strength {args.strength} must be <= 1 for --filter color-transfer")
    return args


def to_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fn = FILTERS[args.filter]
    kwargs = {k: getattr(args, k) for k in options(args.filter) if getattr(args, k) is not None}
    if "reference" in kwargs:  # read once, before any photo; a bad one stops everything
        try:
            kwargs["reference"] = to_array(load_pil(kwargs["reference"]))
        except ImageError as e:
            print(f"error: --reference: {e}", file=sys.stderr)
            return 2
    done = failed = 0
    for src in expand_inputs(args.inputs, skip_suffix=f"_{args.filter}"):
        dst = output_path(src, args.filter, args.output_dir)
        try:
            check_output(src, dst, args.overwrite)
            start = time.perf_counter()
            out = fn(to_array(load_pil(src)), **kwargs)
            save_image(torch.from_numpy(out).permute(2, 0, 1), dst)
        except (ImageError, FileExistsError, OSError, MemoryError) as e:
            failed += 1
            report_failure(src, dst, e)
            continue
        done += 1
        print(f"{src} -> {dst} ({time.perf_counter() - start:.2f} s)")
    return summary(done, failed, "images")


SHEET = (  # label, filter, options: the cells of docs/filters.jpg after the photo
    ("find-edges", "find-edges", {}),
    ("find-edges --method canny", "find-edges", {"method": "canny"}),
    ("contour", "contour", {}),
    ("emboss", "emboss", {}),
    ("ripple", "ripple", {}),
    ("bulge", "bulge", {}),
    ("bulge --amount -0.5", "bulge", {"amount": -0.5}),
    ("oil-paint", "oil-paint", {}),
    ("cartoon", "cartoon", {}),
)


def contact_sheet(photo: str | Path, width: int = 256, columns: int = 5) -> Image.Image:
    """The photo and every SHEET filter at the photo's own size, scaled to `width`, labelled."""
    img = load_pil(photo)
    x = to_array(img)
    cells = [("photo", img)] + [
        (label, Image.fromarray(np.round(FILTERS[f](x, **kw) * 255).astype(np.uint8)))
        for label, f, kw in SHEET
    ]
    height, label_h, gap = round(width * img.height / img.width), 22, 4
    rows = -(-len(cells) // columns)
    sheet = Image.new(
        "RGB", (gap + columns * (width + gap), rows * (height + label_h + gap)), "white"
    )
    draw, font = ImageDraw.Draw(sheet), _font(14)
    for i, (label, cell) in enumerate(cells):
        x0, y0 = gap + (i % columns) * (width + gap), (i // columns) * (height + label_h + gap)
        draw.text(
            (x0 + width / 2, y0 + label_h / 2), label, fill=(30, 30, 30), font=font, anchor="mm"
        )
        sheet.paste(cell.resize((width, height), Image.Resampling.LANCZOS), (x0, y0 + label_h))
    return sheet


if __name__ == "__main__":
    sys.exit(main())
