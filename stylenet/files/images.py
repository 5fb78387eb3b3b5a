"""Image files <-> float RGB tensors in [0, 1], shape (3, H, W).

Loading applies EXIF orientation and converts every mode Pillow reads (L, LA, P, RGBA, CMYK, I;16,
...) to RGB; transparency is composited onto white. Saving writes to a temporary file and renames.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from stylenet.files.atomic import atomic_write

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_PIXELS = 178_956_970  # Pillow's own hard limit (2x its warning threshold)


class ImageError(ValueError):
    """A file that cannot be used as an image; the message names the file and the problem."""


def find_images(root: str | Path) -> list[Path]:
    """Image files under root, recursively, in a stable order."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I") and a.max() > 255 else 255.0
        a = np.clip(a / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(a).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        canvas = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, img).convert("RGB")
    return img.convert("RGB")


def load_pil(path: str | os.PathLike) -> Image.Image:
    """Open, decode fully, apply EXIF orientation and convert to RGB; raise ImageError otherwise."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(f"{path}: {img.width}x{img.height} is too large (bomb?)")
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or an unsupported format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: unreadable or truncated image ({e})") from None


def to_tensor(img: Image.Image) -> torch.Tensor:
    a = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div_(255.0)


def load_image(path: str | os.PathLike, max_side: int | None = None) -> torch.Tensor:
    """(3, H, W) float tensor in [0, 1]; optionally downscaled so the long side is <= max_side."""
    img = load_pil(path)
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return to_tensor(img)


def shrink(x: torch.Tensor, max_side: int) -> torch.Tensor:
    """x (..., H, W) in [0, 1], scaled down (antialiased bilinear) so the long side is at most
    max_side; unchanged when it already is."""
    h, w = x.shape[-2:]
    if max(h, w) <= max_side:
        return x
    k = max_side / max(h, w)
    hw = [max(1, round(h * k)), max(1, round(w * k))]
    flat = x.reshape(-1, *x.shape[-3:]) if x.dim() > 3 else x[None]
    out = torch.nn.functional.interpolate(flat, hw, mode="bilinear", antialias=True).clamp(0, 1)
    return out.reshape(*x.shape[:-2], *hw)


def to_pil(x: torch.Tensor) -> Image.Image:
    a = x.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a, "RGB")


def save_image(x: torch.Tensor, path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Write a (3, H, W) tensor; the file appears complete or not at all."""
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: exists (use --overwrite to replace it)")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image extension {path.suffix!r}")
    opts = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    pil = to_pil(x)
    return atomic_write(path, lambda tmp: pil.save(tmp, format=fmt, **opts))
