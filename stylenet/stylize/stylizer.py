"""One interface for every model kind: `load(name_or_path)` -> Stylizer, `.bind(...)` -> a photo
-> picture callable.

    stylizer = load("cin")                      # a path, the user's checkpoints/NAME, or shipped
    run = stylizer.bind(style="wave")           # or mix={"wave": 0.5, "scream": 0.5}
    picture = run(photo)                        # (3, H, W) in [0, 1] -> same, in strips

This module is the only one that knows the kinds: johnson (one style), cin and stylebank (named
styles, mixes; stylebank's "none" is its auto-encoder), adain (any artwork, alpha) and exported
.onnx files (one fixed style, run by ONNX Runtime).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylenet.files.images import load_image
from stylenet.nets.adain import STYLE_SIZE, BoundAdaIN, mix_statistics
from stylenet.stylize.checkpoint import CheckpointError, load_model, read_meta
from stylenet.stylize.onnx import load_onnx
from stylenet.stylize.precision import compute_dtype
from stylenet.stylize.shipped import resolve_model
from stylenet.stylize.strips import stylize_adain_strips, stylize_strips

MULTI_STYLE = ("cin", "stylebank")


class UsageError(ValueError):
    """Options that do not fit the model (an AdaIN model without an artwork, ...)."""


def style_label(style: str | Mapping[str, float] | None) -> str:
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


@torch.inference_mode()
def run_plain(
    net: nn.Module, image: torch.Tensor, device: torch.device | str = "cpu", precision: str = "auto"
) -> torch.Tensor:
    """A plain single-style net (TransformNet, a bound CIN or StyleBank) on (3, H, W) in [0, 1],
    in strips; float32 on CPU. precision: auto (bf16 where the device has it), bf16 or fp32."""
    x = image.unsqueeze(0).to(device)
    return stylize_strips(net, x, compute_dtype(precision, x.device))[0].cpu()


@dataclass
class Bound:
    """A stylizer with its style fixed: call it with a photo (3, H, W) in [0, 1].

    label: the output-name suffix (style, mix-a0.7-b0.3, artwork stems a+b); meta: the model's
    metadata with "style" set to it; module: the same as a plain nn.Module (photo batch in,
    pictures out) for export and torch.hub, None for an .onnx file.
    """

    run: Callable[[torch.Tensor], torch.Tensor]
    label: str
    meta: dict[str, Any]
    module: nn.Module | None

    def __call__(self, photo: torch.Tensor) -> torch.Tensor:
        return self.run(photo)


@dataclass
class Stylizer:
    """A loaded model of any kind. styles: the names bind(style=...) takes (empty for
    single-style models and AdaIN, which takes artworks)."""

    path: Path
    kind: str  # johnson, cin, stylebank, adain or onnx
    meta: dict[str, Any]
    net: nn.Module | None = None  # None for .onnx files
    device: torch.device = torch.device("cpu")
    precision: str = "auto"
    styles: list[str] = field(default_factory=list)
    _onnx: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def takes_artworks(self) -> bool:
        return self.kind == "adain"

    def bind(
        self,
        style: str | None = None,
        mix: Mapping[str, float] | None = None,
        artworks: Sequence[str | Path | torch.Tensor] | None = None,
        alpha: float = 1.0,
        weights: Sequence[float] | None = None,
        style_size: int = STYLE_SIZE,
    ) -> Bound:
        """Fix the style: `style` a name of `styles` ("none": StyleBank's auto-encoder) or
        `mix` {name: weight >= 0, summing to 1} for multi-style models; `artworks` (files or
        (3, H, W) tensors in [0, 1], mixed by `weights`) and `alpha` (0..1) for AdaIN; nothing for
        single-style models.
        UsageError or CheckpointError (naming the file and the model's styles) otherwise."""
        if self.kind == "adain":
            if style is not None or mix:
                raise UsageError(f"{self.path}: an AdaIN model takes artworks, not style names")
            return self._bind_adain(artworks, alpha, weights, style_size)
        if artworks or weights or alpha != 1.0:
            if self.kind in MULTI_STYLE:
                what = "--style-weights and --alpha are for AdaIN models"
                raise UsageError(f"{self.path}: a {self.kind} model; {what}")
            raise UsageError(self._single_style_refusal())
        if self.kind in MULTI_STYLE:
            return self._bind_multi(style, mix)
        if style is not None or mix:
            raise UsageError(self._single_style_refusal())
        if self._onnx is not None:
            return Bound(self._onnx, str(self.meta["style"]), self.meta, None)
        net, device, precision = self.net, self.device, self.precision
        run = lambda photo: run_plain(net, photo, device, precision)  # noqa: E731
        return Bound(run, str(self.meta.get("style", "styled")), self.meta, net)

    def _single_style_refusal(self) -> str:
        if self.kind == "onnx":
            return (f"{self.path}: an exported single-style model; --style, --mix, "
                    "--style-weights and --alpha do not apply")  # fmt: skip
        return (
            f"{self.path}: a single-style model ({self.meta.get('style')}); --style and --mix are "
            "for multi-style models, --style-weights and --alpha for AdaIN models (--strength "
            "blends with the photo)"
        )

    def _bind_multi(self, style: str | None, mix: Mapping[str, float] | None) -> Bound:
        listed = ", ".join(self.styles)
        if style is None and not mix:
            raise CheckpointError(
                f"{self.path}: a {self.kind} model with several styles; pass --style NAME, "
                f"--style all or --mix a=0.7,b=0.3 (styles: {listed})"
            )
        if style == "none":
            if self.kind != "stylebank":
                raise CheckpointError(
                    f"{self.path}: --style none needs a stylebank model; styles: {listed}"
                )
            choice: str | Mapping[str, float] | None = None
        elif style is not None:
            if style not in self.styles:
                raise CheckpointError(f"{self.path}: no style {style!r}; styles: {listed}")
            choice = style
        else:
            choice = dict(mix or {})
        try:
            net = self.net.bind(choice).to(self.device)
        except ValueError as e:  # a mix: unknown name, negative weight, sum not 1
            raise CheckpointError(f"{self.path}: --mix: {e}") from None
        label = style_label("none" if choice is None else choice)
        device, precision = self.device, self.precision
        run = lambda photo: run_plain(net, photo, device, precision)  # noqa: E731
        return Bound(run, label, {**self.meta, "style": label}, net)

    def _bind_adain(
        self,
        artworks: Sequence[str | Path | torch.Tensor] | None,
        alpha: float,
        weights: Sequence[float] | None,
        style_size: int,
    ) -> Bound:
        """The artworks are read and their relu4_1 statistics taken once, here."""
        if not artworks:
            raise UsageError(
                f"{self.path}: an AdaIN model; pass the artwork(s) with --style ART [ART ...]"
            )
        if weights and len(weights) != len(artworks):
            raise UsageError(
                f"--style-weights: {len(weights)} number(s) for {len(artworks)} artwork(s)"
            )
        if not 0.0 <= alpha <= 1.0:
            raise UsageError(f"--alpha {alpha} must be between 0 and 1")
        net = self.net
        stats = []
        for art in artworks:
            if isinstance(art, torch.Tensor):
                image = art
            else:
                image = load_image(Path(art).expanduser(), max_side=style_size)  # names the file
            stats.append(net.style_statistics(image))
        try:
            mean, std = mix_statistics(stats, weights)
        except ValueError as e:
            raise UsageError(f"--style-weights: {e}") from None
        device = self.device
        dtype = compute_dtype(self.precision, device)
        label = "+".join(
            "artwork" if isinstance(a, torch.Tensor) else Path(a).stem for a in artworks
        )

        @torch.inference_mode()
        def run(photo: torch.Tensor) -> torch.Tensor:
            x = photo.unsqueeze(0).to(device)
            return stylize_adain_strips(net, x, mean, std, alpha, dtype)[0].cpu()

        module = BoundAdaIN(net, mean, std, alpha).eval()
        return Bound(run, label, {**self.meta, "style": label}, module)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") for n in z.namelist())


def load(
    name_or_path: str | Path,
    device: torch.device | str = "cpu",
    precision: str = "auto",
    announce: Callable[[str], object] | None = print,
) -> Stylizer:
    """The model at a path, else the user's checkpoints/NAME, else the shipped model NAME
    (sha256-checked; `announce` gets one line naming it). A .onnx file runs in ONNX Runtime
    (fp32; device and precision do not apply); anything else is a checkpoint (.ckpt,
    .safetensors, a run's last.ckpt). CheckpointError for files that cannot be used."""
    path = resolve_model(str(name_or_path), announce)
    device = torch.device(device)
    if path.suffix.lower() == ".onnx":
        run, meta = load_onnx(path)
        return Stylizer(path, "onnx", meta, None, device, precision, [], run)
    if _is_torchscript(path):
        raise CheckpointError(
            f"{path}: a TorchScript program (from stylenet.export); infer.py takes .ckpt, "
            ".safetensors or .onnx models, run this one with torch.jit.load"
        )
    net, meta = load_model(path)
    summary = summarize(meta)
    styles = list(summary.styles)
    return Stylizer(path, summary.kind, meta, net.to(device), device, precision, styles)


@dataclass(frozen=True)
class Summary:
    """What a model file takes, from its metadata alone (no net is built)."""

    kind: str  # johnson, cin, stylebank, adain, or "other": an export or a file that does not read
    styles: tuple[str, ...] = ()  # the names bind(style=...) takes
    takes_artworks: bool = False
    style: str | None = None  # a single-style model's style

    def offers(self) -> str:
        """The styles for a listing: the names, "any artwork", or the one style."""
        if self.styles:
            return ",".join(self.styles)
        return "any artwork" if self.takes_artworks else str(self.style)


def summarize(meta: Mapping[str, Any]) -> Summary:
    kind = str(meta.get("kind", "johnson"))
    styles = tuple(meta.get("styles") or []) if kind in MULTI_STYLE else ()
    style = None if styles or kind == "adain" else meta.get("style")
    return Summary(kind, styles, kind == "adain", style)


def read_summary(path: str | Path) -> Summary:
    """The Summary of a model file; kind "other" for an .onnx or TorchScript export or a file
    that does not read as a checkpoint."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return Summary("other")
    try:
        return summarize(read_meta(path))
    except CheckpointError:
        return Summary("other")
