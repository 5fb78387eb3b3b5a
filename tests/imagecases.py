"""Image files of every awkward kind, written into a folder for the image and data tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# name -> expected outcome when used for training: "ok" (used) or "bad" (skipped)
CASES = {
    "rgb.jpg": "ok",
    "cmyk.jpg": "ok",
    "gray.png": "ok",
    "gray16.png": "ok",
    "rgb16.png": "ok",
    "palette.png": "ok",
    "palette_transparent.png": "ok",
    "rgba.png": "ok",
    "la.png": "ok",
    "exif_rot6.jpg": "ok",
    "tiny_10x10.png": "ok",
    "zero_byte.jpg": "bad",
    "truncated.jpg": "bad",
    "text_named.jpg": "bad",
    "bomb_header.png": "bad",
    "bomb_100mp.png": "bad",
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(
    width: int, height: int, depth: int, color: int, rows: bytes, repeat: int = 1
) -> bytes:
    """A PNG written by hand, so a header can claim any size (rows: raw scanlines, repeated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    z = zlib.compressobj()
    data = b"".join(z.compress(rows) for _ in range(repeat)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    )


def exif_rot6(path: Path) -> None:
    """A 40x20 JPEG (left red, right blue) tagged orientation 6: shown as 20x40, red on top."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(path, exif=exif.tobytes(), quality=95)


def write_cases(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    p = {name: folder / name for name in CASES}
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    photo.save(p["rgb.jpg"], quality=90)
    Image.new("CMYK", (80, 70), (0, 255, 255, 0)).save(p["cmyk.jpg"])  # red
    photo.convert("L").save(p["gray.png"])
    Image.fromarray(np.full((70, 90), 65535, np.uint16)).save(p["gray16.png"])  # I;16, white
    rows = b"".join(b"\x00" + np.full((90, 3), 40000, ">u2").tobytes() for _ in range(70))
    p["rgb16.png"].write_bytes(png_bytes(90, 70, 16, 2, rows))
    photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(p["palette.png"])
    pal = Image.new("P", (80, 80), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.paste(1, (0, 0, 40, 80))
    pal.save(p["palette_transparent.png"], transparency=0)  # left red, right transparent
    rgba = np.zeros((80, 80, 4), np.uint8)
    rgba[:, :40] = (255, 0, 0, 255)  # opaque red left, fully transparent right
    Image.fromarray(rgba, "RGBA").save(p["rgba.png"])
    Image.new("LA", (80, 80), (128, 255)).save(p["la.png"])
    exif_rot6(p["exif_rot6.jpg"])
    Image.new("RGB", (10, 10), (0, 200, 0)).save(p["tiny_10x10.png"])
    p["zero_byte.jpg"].write_bytes(b"")
    full = (folder / "full.tmp").resolve()
    photo.save(full, format="JPEG", quality=90)
    p["truncated.jpg"].write_bytes(full.read_bytes()[:1500])
    full.unlink()
    p["text_named.jpg"].write_text("this is not a picture\n")
    # header claims 100000 x 100000 (10 gigapixels); the data is a single tiny row
    p["bomb_header.png"].write_bytes(png_bytes(100_000, 100_000, 8, 2, b"\x00" * 301))
    # 10000 x 10000 of zeros compresses to ~100 kB and would decode to 300 MB
    zero_row = b"\x00" * (1 + 10_000 * 3)
    p["bomb_100mp.png"].write_bytes(png_bytes(10_000, 10_000, 8, 2, zero_row, 10_000))
    return p
