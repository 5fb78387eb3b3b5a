"""One picture of a few photos x the trained styles, for the README: `python -m stylenet.gallery`.

    python -m stylenet.gallery                        # the six shipped styles -> docs/gallery.jpg
    python -m stylenet.gallery --ckpt anime wave --photos me.jpg dog.png -o out.jpg --size 240
    python -m stylenet.gallery --ckpt cin             # a column per style of a multi-style model
    python -m stylenet.gallery --ckpt cin:wave adain --artworks art.jpg --alpha 0.8
    python -m stylenet.gallery --ckpt cin:wave cin:wave=0.5,scream=0.5 cin:scream    # a mix

Rows are photos (first column the photo itself), columns are styles under a header naming them.
--ckpt takes files or names (stylenet/stylize/shipped.py: the user's
checkpoints/<name>.ckpt, else the shipped model); without it the columns are anime, starry_night,
wave, scream, kandinsky and shipwreck where found. A multi-style model (CIN, StyleBank) gives a
column per style, or the one of NAME:STYLE; an AdaIN model a column per --artworks file. Every cell
is a centre-cropped square; each style is applied to the crop at twice the tile size and scaled
down, so strokes look as they do on a photo of about the training size. The JPEG quality is the
highest that keeps the file within --max-kb. A model or artwork that fails is reported in one line
and left out (exit status 1). Default paths are in the project folder; the shared photos are used
only where ../shared/images/content/ exists.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from stylenet import stylize
from stylenet.files.atomic import atomic_write
from stylenet.files.images import ImageError, find_images, load_pil, to_pil, to_tensor
from stylenet.stylize import shipped
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.stylize.stylizer import Stylizer, UsageError, parse_mix

ROOT = Path(__file__).resolve().parent.parent
PHOTO_DIR = ROOT / "data" / "photos"
SHARED_PHOTOS = ROOT.parent / "shared" / "images" / "content"
SHARED_NAMES = (  # a portrait, a landscape, people: Kodak's, free to show; none is in data/photos
    "kodak_kodim04_portrait.png",
    "kodak_kodim21_lighthouse.png",
    "kodak_kodim14_rafting.png",
)
OUTPUT = ROOT / "docs" / "gallery.jpg"
DEFAULT_MODELS = ("anime", "starry_night", "wave", "scream", "kandinsky", "shipwreck")
ARTWORKS = (ROOT / "data" / "styles" / "starry_night.jpg", ROOT / "data" / "styles" / "scream.jpg")
HEADER = 28  # px: the row of style names above the tiles
GAP = 4  # px of white around and between tiles
STYLIZE_SCALE = 2  # stylize at this multiple of the tile size, then scale down
MIN_QUALITY = 20


def default_photos() -> list[Path]:
    """SHARED_NAMES that exist (photos the sample training never saw), else data/photos/*."""
    shared = [SHARED_PHOTOS / n for n in SHARED_NAMES if (SHARED_PHOTOS / n).is_file()]
    return shared or (find_images(PHOTO_DIR) if PHOTO_DIR.is_dir() else [])


def default_models() -> list[str]:
    """The DEFAULT_MODELS the user trained (shipped.USER_DIR) or that ship, in that order."""
    sums = shipped.shipped_sums(shipped.SHIPPED_DIR)
    mine = [p.stem for s in ("*.ckpt", "*.safetensors") for p in shipped.USER_DIR.glob(s)]
    return [n for n in DEFAULT_MODELS if n in sums or n in mine]


def split_spec(spec: str) -> tuple[str, str | None]:
    """'cin:wave' -> ('cin', 'wave'); a file or a name without a colon -> (spec, None)."""
    name, colon, style = spec.rpartition(":")
    return (name, style) if colon and name and not Path(spec).exists() else (spec, None)


def choices(
    stylizer: Stylizer, style: str | None, artworks: list[Path] | None, alpha: float
) -> list[dict]:
    """Stylizer.bind's keyword arguments for each column of a model."""
    if stylizer.takes_artworks:
        artworks = artworks or [a for a in ARTWORKS if a.is_file()]
        if not artworks:
            raise UsageError(
                f"{stylizer.path}: an AdaIN model; pass the artwork(s) with --artworks FILE"
            )
        return [{"artworks": [str(a)], "alpha": alpha} for a in artworks]
    if stylizer.styles and style is None:
        return [{"style": s} for s in stylizer.styles]
    if style and "=" in style:  # a mix: cin:wave=0.5,scream=0.5
        try:
            return [{"mix": parse_mix(style)}]
        except ValueError as e:
            raise UsageError(f"{stylizer.path}: {e}") from None
    return [{"style": style}]  # UsageError from bind for a style of a single-style model


def canvas_size(rows: int, cols: int, size: int) -> tuple[int, int]:
    """(width, height) of a gallery of rows photos and cols columns (the photo column included)."""
    return GAP + cols * (size + GAP), HEADER + rows * (size + GAP)


def centre_square(img: Image.Image, size: int) -> Image.Image:
    side = min(img.size)
    x, y = (img.width - side) / 2, (img.height - side) / 2
    return img.resize((size, size), Image.Resampling.LANCZOS, box=(x, y, x + side, y + side))


def _font(px: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=px)  # a scalable font (Pillow >= 10.1 with FreeType)
    except (TypeError, OSError):
        return ImageFont.load_default()


def compose(photos: list[Image.Image], columns: list[tuple[str, list[Image.Image]]], size: int):
    """The gallery: a header row of names, then one row per photo (photo, then its styles)."""
    labels = ["photo"] + [name for name, _ in columns]
    canvas = Image.new("RGB", canvas_size(len(photos), len(labels), size), "white")
    draw = ImageDraw.Draw(canvas)
    fonts = [_font(px) for px in (15, 13, 11)]  # the largest that fits, else cut to fit
    for c, label in enumerate(labels):
        text = label.replace("_", " ")
        font = next((f for f in fonts if draw.textlength(text, font=f) <= size), fonts[-1])
        while len(text) > 3 and draw.textlength(text, font=font) > size:
            text = text[:-2] + "…"
        x = GAP + c * (size + GAP) + size / 2
        draw.text((x, HEADER / 2), text, fill=(30, 30, 30), font=font, anchor="mm")
    for r, photo in enumerate(photos):
        row = [photo] + [tiles[r] for _, tiles in columns]
        for c, tile in enumerate(row):
            canvas.paste(tile, (GAP + c * (size + GAP), HEADER + r * (size + GAP)))
    return canvas


def encode_jpeg(img: Image.Image, max_bytes: int) -> tuple[bytes, int] | None:
    """(JPEG bytes, quality) at the highest quality from MIN_QUALITY to 95 that fits, or None."""
    best = None
    lo, hi = MIN_QUALITY, 95
    while lo <= hi:
        q = (lo + hi) // 2
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q, optimize=True, progressive=True)
        if buf.tell() <= max_bytes:
            best, lo = (buf.getvalue(), q), q + 1
        else:
            hi = q - 1
    return best


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m stylenet.gallery", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--photos",
        nargs="+",
        type=Path,
        help=f"photo files, one row each (default: {', '.join(SHARED_NAMES)} from "
        f"{SHARED_PHOTOS} where present, else {PHOTO_DIR}/*)",
    )
    p.add_argument(
        "--ckpt",
        nargs="+",
        metavar="MODEL",
        help="model files or names (the user's checkpoints/<name>.ckpt, else the shipped model), "
        "in this order: one column each, one per style for a multi-style model (NAME:STYLE for "
        "one), one per --artworks file for an AdaIN model (default: "
        f"{', '.join(DEFAULT_MODELS)}, those found)",
    )
    p.add_argument(
        "--artworks",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="AdaIN models: the artworks, one column each (default: "
        f"{', '.join(str(a) for a in ARTWORKS)}, those present)",
    )
    p.add_argument(
        "--alpha", type=float, default=1.0, help="AdaIN models: style strength 0..1 (default 1)"
    )
    p.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"JPEG (default {OUTPUT})")
    p.add_argument("--size", type=int, default=200, help="tile side in pixels (default 200)")
    p.add_argument("--max-kb", type=int, default=600, help="largest file size (default 600 KB)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.size < 16:
        p.error(f"--size {args.size}: at least 16 px")
    if not 0.0 <= args.alpha <= 1.0:
        p.error(f"--alpha {args.alpha}: must be between 0 and 1")
    if args.max_kb <= 0:
        p.error(f"--max-kb {args.max_kb}: must be positive")
    if args.output.suffix.lower() not in (".jpg", ".jpeg"):
        p.error(f"-o {args.output}: the gallery is a JPEG, name it .jpg")
    return args


def err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.output.exists() and not args.overwrite:
        err(f"{args.output}: exists (pass --overwrite to replace it)")
        return 1
    specs = [split_spec(c) for c in args.ckpt or default_models()]
    if not specs:
        err(
            f"no checkpoints ({', '.join(DEFAULT_MODELS)}) in {shipped.USER_DIR}/ or shipped in "
            f"{shipped.SHIPPED_DIR}/; train one with `python train.py style=<name> loss=vgg19` "
            "(or pass --ckpt FILE ...)"
        )
        return 2
    failed = 0
    photos: list[Image.Image] = []
    names: list[str] = []
    for path in args.photos or default_photos():
        try:
            img = load_pil(path)
        except ImageError as e:
            err(str(e))
            failed += 1
            continue
        photos.append(centre_square(img, args.size * STYLIZE_SCALE))
        names.append(path.name)
    if not photos:
        err("no usable photos (pass --photos FILE ...)")
        return 1
    print(f"{len(photos)} photo(s): {', '.join(names)}")
    device = torch.device(args.device)
    columns: list[tuple[str, list[Image.Image]]] = []
    for i, (name, style) in enumerate(specs, 1):
        try:
            path = shipped.resolve_model(name, print, shipped.USER_DIR, shipped.SHIPPED_DIR)
            stylizer = stylize.load(path, device, announce=None)
            kwargs = choices(stylizer, style, args.artworks, args.alpha)
        except (CheckpointError, UsageError) as e:
            err(str(e))
            failed += 1
            continue
        for kw in kwargs:
            start = time.perf_counter()
            try:
                run = stylizer.bind(**kw)
            except (CheckpointError, UsageError, ImageError) as e:
                err(str(e))
                failed += 1
                continue
            label = run.label
            if stylizer.styles or stylizer.takes_artworks:
                label = f"{path.stem}: {label}"  # the model, then its style or artwork
            if run.meta.get("steps"):  # training steps, shown so a short run reads as one
                label += f", {run.meta['steps']} steps"
            tiles = []
            for photo in photos:
                out = to_pil(run(to_tensor(photo)))
                tiles.append(out.resize((args.size, args.size), Image.Resampling.LANCZOS))
            columns.append((label, tiles))
            took = time.perf_counter() - start
            print(f"[{i}/{len(specs)}] {label} ({path}): {len(tiles)} photo(s) in {took:.1f} s")
    if not columns:
        err("no usable checkpoints")
        return 1
    small = [p.resize((args.size, args.size), Image.Resampling.LANCZOS) for p in photos]
    gallery = compose(small, columns, args.size)
    encoded = encode_jpeg(gallery, args.max_kb * 1024)
    if encoded is None:
        err(
            f"{gallery.width}x{gallery.height} does not fit in {args.max_kb} KB even at quality "
            f"{MIN_QUALITY}; use a smaller --size, fewer photos or a larger --max-kb"
        )
        return 1
    data, quality = encoded
    atomic_write(args.output, lambda tmp: Path(tmp).write_bytes(data))
    print(
        f"wrote {args.output}: {gallery.width}x{gallery.height}, {len(photos)} photo(s) x "
        f"{len(columns)} style(s), JPEG quality {quality}, {len(data) // 1024} KB"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
