"""One picture of a few photos x the trained styles, for the README: `python -m stylenet.gallery`.

    python -m stylenet.gallery                        # checkpoints/*.ckpt -> docs/gallery.jpg
    python -m stylenet.gallery --ckpt anime wave --photos me.jpg dog.png -o out.jpg --size 240

Rows are photos (first column the photo itself), columns are styles under a header naming them.
Every cell is a centre-cropped square; each style is applied to the crop at twice the tile size
and scaled down, so strokes look as they do on a photo of about the training size. The JPEG
quality is the highest that keeps the file within --max-kb. Default paths are in the project
folder; the shared photos are used only where ../shared/images/content/ exists.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from stylenet.atomic import atomic_write
from stylenet.checkpoint import CheckpointError, load_model
from stylenet.images import ImageError, find_images, load_pil, to_pil, to_tensor
from stylenet.infer import resolve_checkpoint, stylize

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = ROOT / "checkpoints"
PHOTO_DIR = ROOT / "data" / "photos"
SHARED_PHOTOS = ROOT.parent / "shared" / "images" / "content"
SHARED_NAMES = (  # a portrait, a landscape, people: Kodak's, free to show; none is in data/photos
    "kodak_kodim04_portrait.png",
    "kodak_kodim21_lighthouse.png",
    "kodak_kodim14_rafting.png",
)
OUTPUT = ROOT / "docs" / "gallery.jpg"
STYLE_ORDER = ("anime", "starry_night", "wave", "scream", "kandinsky", "shipwreck")
HEADER = 28  # px: the row of style names above the tiles
GAP = 4  # px of white around and between tiles
STYLIZE_SCALE = 2  # stylize at this multiple of the tile size, then scale down
MIN_QUALITY = 20


def default_photos() -> list[Path]:
    """SHARED_NAMES that exist (photos the sample training never saw), else data/photos/*."""
    shared = [SHARED_PHOTOS / n for n in SHARED_NAMES if (SHARED_PHOTOS / n).is_file()]
    return shared or (find_images(PHOTO_DIR) if PHOTO_DIR.is_dir() else [])


def style_key(path: Path) -> tuple[int, str]:
    """STYLE_ORDER first, then the other names alphabetically."""
    name = path.stem
    return (STYLE_ORDER.index(name), "") if name in STYLE_ORDER else (len(STYLE_ORDER), name)


def default_checkpoints() -> list[Path]:
    return sorted(CHECKPOINT_DIR.glob("*.ckpt"), key=style_key)


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
    font = _font(15)
    for c, label in enumerate(labels):
        text = label.replace("_", " ")
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
        help=f"models, one column each, in this order (default: {CHECKPOINT_DIR}/*.ckpt)",
    )
    p.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"JPEG (default {OUTPUT})")
    p.add_argument("--size", type=int, default=200, help="tile side in pixels (default 200)")
    p.add_argument("--max-kb", type=int, default=600, help="largest file size (default 600 KB)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.size < 16:
        p.error(f"--size {args.size}: at least 16 px")
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
    ckpts = [Path(c) for c in args.ckpt] if args.ckpt else default_checkpoints()
    if not ckpts:
        err(
            f"no checkpoints in {CHECKPOINT_DIR}/; train one with "
            "`python train.py style=<name> loss=vgg19` (or pass --ckpt FILE ...)"
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
    for i, ckpt in enumerate(ckpts, 1):
        try:
            net, meta = load_model(resolve_checkpoint(str(ckpt)), single_style=True)
        except CheckpointError as e:
            err(str(e))
            failed += 1
            continue
        style = str(meta.get("style", ckpt.stem))
        start = time.perf_counter()
        net.to(device)
        tiles = []
        for photo in photos:
            out = to_pil(stylize(net, to_tensor(photo), device))
            tiles.append(out.resize((args.size, args.size), Image.Resampling.LANCZOS))
        steps = meta.get("steps")  # training steps, shown so a short run reads as one
        columns.append((f"{style}, {steps} steps" if steps else style, tiles))
        took = time.perf_counter() - start
        print(f"[{i}/{len(ckpts)}] {style} ({ckpt}): {len(tiles)} photo(s) in {took:.1f} s")
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
