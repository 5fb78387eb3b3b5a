"""Export a model to ONNX or TorchScript: `python -m stylenet.export --ckpt anime --format onnx`.

The exported program takes float32 RGB (1, 3, H, W) in [0, 1], any H and W of at least 8 (33 for
AdaIN, whose 32 px mirrored margin is fixed in the file), and returns the stylized image, same
shape, in [0, 1]: the padding (to a multiple of 4; for AdaIN the margin, then to a multiple of 8),
the output stage and the crop are inside the graph, whose H and W are dynamic. Writes
checkpoints/anime.onnx (or .pt) beside the checkpoint, or -o FILE. (.onnx files run in
stylenet/stylize/onnx.py.)

Every model kind exports, to one fixed style (a plain photo -> picture program):

    python -m stylenet.export --ckpt cin --style wave                   # checkpoints/cin_wave.onnx
    python -m stylenet.export --ckpt cin --mix wave=0.7,scream=0.3      # cin_mix-wave0.7-scream0.3
    python -m stylenet.export --ckpt adain --style art.jpg --alpha 0.8  # adain_art-alpha0.8.onnx

A multi-style model (cin, stylebank) needs --style NAME (`none`: StyleBank's auto-encoder) or
--mix. An AdaIN model needs the artwork: its relu4_1 statistics (the artwork read at STYLE_SIZE
px on the long side, as infer.py does) and --alpha are fixed in the program, which holds the VGG19
encoder up to relu4_1 and the decoder (about 28 MB). The file's metadata (ONNX property and
TorchScript extra file `stylenet.json`) names the style: the style name, the mix's label or the
artwork's stem (AdaIN also records alpha and the artwork's file name).

The cel stage (anime) is exported at its scale for photos below 768 px on the short side (its
pixel sizes are Python numbers, which a graph cannot keep dynamic): on larger photos its smoothing
and lines are finer than those of the checkpoint run by infer.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stylenet import stylize
from stylenet.files.atomic import atomic_write
from stylenet.files.images import ImageError
from stylenet.nets.adain import ENCODER_LAYER, FRAME, MULTIPLE, BoundAdaIN, adain
from stylenet.nets.stylebank import BankMix, BoundStyleBank
from stylenet.nets.transform_net import TrainingForm, TransformNet, cel_stage, to_pixels
from stylenet.ops.preserve_color import transfer_luminance
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.stylize.stylizer import UsageError, parse_mix

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17
META_KEYS = ("style", "arch", "kind", "alpha", "artwork", "encoder")  # what the file records


class ScriptableBankMix(nn.Module):
    """BankMix (a StyleBank style or mix) written so that TorchScript can compile it: the same
    sum (exactly the bank's output for one style at weight 1)."""

    def __init__(self, mix: BankMix):
        super().__init__()
        self.banks, self.weights = mix.banks, list(mix.weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.zeros_like(x)
        for i, bank in enumerate(self.banks):
            y = y + self.weights[i] * bank(x)
        return y


class CelStage(nn.Module):
    """finish()'s cel stage at scale 1 (cel_scale's value below 768 px on the short side),
    supersampled: its pixel sizes are Python numbers that neither a trace nor TorchScript keeps
    dynamic, and TorchScript cannot compile the filter, so this module is traced for it."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return cel_stage(y, 1, supersample=True)


def scriptable(layer: nn.Module) -> nn.Module:
    """The layer as TorchScript compiles it: a BankMix as ScriptableBankMix, and a TrainingForm
    (UpsampleConv, RGBConv, the AdaIN Decoder) as a plain nn.Sequential of the same modules (its
    eval form, sharing the weights)."""
    if isinstance(layer, BankMix):
        return ScriptableBankMix(layer)
    if isinstance(layer, TrainingForm):
        return nn.Sequential(*layer)
    return layer


class ExportNet(nn.Module):
    """TransformNet.forward (or a bound StyleBank's) with the padding written so that tracing
    keeps it dynamic.

    TransformNet pads only when a side is not a multiple of 4 (a Python `if`, which a trace would
    freeze at the example's size); here the pad is always applied, possibly by 0 pixels. The
    stages are constants, so TorchScript compiles only those the net has.
    """

    __constants__ = ["photo_colors", "cel"]

    def __init__(self, net: TransformNet | BoundStyleBank):
        super().__init__()
        layers = [scriptable(m) for m in net.net]
        self.net, self.output = nn.Sequential(*layers), net.output
        self.photo_colors = bool(getattr(net, "photo_colors", False))
        self.cel = bool(getattr(net, "cel", False))
        self.cel_stage = CelStage() if self.cel else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        x = F.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="replicate")
        y = to_pixels(self.net(x), self.output, x)[..., :h, :w]
        if self.photo_colors:  # as finish(): the photo's colours, then the cel stage
            y = transfer_luminance(y, x[..., :h, :w])
        if self.cel:
            y = self.cel_stage(y)
        return y


class ExportAdaIN(nn.Module):
    """BoundAdaIN.forward (VGG19 to relu4_1, AdaIN towards the fixed statistics, decoder, clip)
    with its margin (pad_frame) always applied, so that tracing keeps the sizes dynamic."""

    __constants__ = ["alpha", "multiple", "frame"]

    def __init__(self, bound: BoundAdaIN):
        super().__init__()
        net = bound.net
        vgg = net.encoder.vgg
        stop = vgg.index[ENCODER_LAYER]
        self.features = nn.Sequential(*list(vgg.features)[: stop + 1])
        self.decoder = scriptable(net.decoder)
        self.register_buffer("mean", vgg.mean.detach().clone())
        self.register_buffer("std", vgg.std.detach().clone())
        self.register_buffer("style_mean", bound.style_mean.detach().float().clone())
        self.register_buffer("style_std", bound.style_std.detach().float().clone())
        self.alpha, self.multiple, self.frame = float(bound.alpha), MULTIPLE, FRAME

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, m, e = x.shape[-2], x.shape[-1], self.multiple, self.frame  # as pad_frame
        right, bottom = (m - (w + 2 * e) % m) % m, (m - (h + 2 * e) % m) % m
        x = F.pad(F.pad(x, (e, e, e, e), mode="reflect"), (0, right, 0, bottom), mode="replicate")
        f = self.features((x - self.mean) / self.std)
        t = adain(f, self.style_mean, self.style_std, self.alpha)
        return self.decoder(t).clamp(0, 1)[..., e : e + h, e : e + w]


def exportable(net: nn.Module) -> nn.Module:
    """The export wrapper of a plain stylizer: TransformNet, a bound StyleBank or BoundAdaIN."""
    if isinstance(net, BoundAdaIN):
        return ExportAdaIN(net)
    if isinstance(net, (TransformNet, BoundStyleBank)):
        return ExportNet(net)
    raise TypeError(f"cannot export a {type(net).__name__}; bind a style first")


def export(net: nn.Module, path: str | Path, fmt: str, meta: dict[str, Any]) -> Path:
    """Write net (TransformNet, a bound StyleBank or BoundAdaIN) as an ONNX file or a TorchScript
    program (fp32, CPU); meta's style, arch, kind ... go in as JSON."""
    model = exportable(net).float().cpu().eval()
    info = json.dumps({k: meta.get(k) for k in META_KEYS if k in ("style", "arch") or k in meta})
    example = torch.rand(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation and constant-folding chatter
        if fmt == "torchscript":
            if isinstance(model, ExportNet) and model.cel:
                model.cel_stage = torch.jit.trace(model.cel_stage, example)
            program = torch.jit.freeze(torch.jit.script(model))
            save = lambda tmp: torch.jit.save(program, tmp, _extra_files={"stylenet.json": info})  # noqa: E731
            return atomic_write(path, save)
        if fmt != "onnx":
            raise ValueError(f"unknown format {fmt!r}")
        import onnx

        def save(tmp: str) -> None:
            torch.onnx.export(
                model,
                (example,),
                tmp,
                dynamo=False,  # the TorchScript-based exporter: no onnxscript, works offline
                opset_version=OPSET,
                input_names=["image"],
                output_names=["stylized"],
                dynamic_axes={
                    "image": {2: "height", 3: "width"},
                    "stylized": {2: "height", 3: "width"},
                },
            )
            proto = onnx.load(tmp)
            onnx.helper.set_model_props(proto, {"stylenet": info})
            onnx.save(proto, tmp)

        return atomic_write(path, save)


def load_exportable(
    src: Path, style: str | None = None, mix: str | None = None, alpha: float = 1.0
) -> tuple[nn.Module, dict[str, Any], str | None]:
    """(plain stylizer, meta, style label) of a checkpoint: a single-style net as it is, a
    multi-style one bound to `style` or `mix`, an AdaIN one bound to the artwork `style` and
    `alpha`. The label (None for single-style models) goes into the default output name.
    CheckpointError, ImageError or UsageError, each naming the file, otherwise."""
    stylizer = stylize.load(src, announce=None)
    if stylizer.net is None:
        raise CheckpointError(f"{src}: already exported; export a .ckpt or .safetensors")
    if stylizer.takes_artworks:
        if mix:
            raise UsageError(f"{src}: an AdaIN model takes an artwork (--style ART), not --mix")
        if not style:
            raise UsageError(f"{src}: an AdaIN model: pass the artwork with --style ART")
        bound = stylizer.bind(artworks=[style], alpha=alpha)
        art = Path(style).expanduser()
        label = art.stem if alpha == 1.0 else f"{art.stem}-alpha{alpha:g}"
        meta = {**bound.meta, "style": art.stem, "alpha": alpha, "artwork": art.name}
        return bound.module, meta, label
    if alpha != 1.0:
        raise UsageError(f"{src}: --alpha is for AdaIN models")
    if not stylizer.styles:
        if style or mix:
            raise UsageError(
                f"{src}: a single-style model ({stylizer.meta.get('style')}); --style and --mix "
                "are for multi-style and AdaIN models"
            )
        bound = stylizer.bind()
        return bound.module, bound.meta, None
    styles = ", ".join(stylizer.styles)
    if style is None and mix is None:
        raise UsageError(
            f"{src}: a {stylizer.kind} model with several styles; pass --style NAME or --mix "
            f"a=0.7,b=0.3 (styles: {styles})"
        )
    if style == "all":
        raise UsageError(f"{src}: export one style at a time: --style NAME (styles: {styles})")
    try:
        bound = stylizer.bind(mix=parse_mix(mix)) if mix else stylizer.bind(style=style)
    except ValueError as e:
        if isinstance(e, CheckpointError | UsageError):
            raise
        raise UsageError(str(e)) from None
    return bound.module, bound.meta, bound.label


def bench(net: nn.Module, height: int, width: int, runs: int, folder: Path) -> dict[str, float]:
    """Median ms per image for PyTorch eager fp32, infer.py's default path, ONNX Runtime and
    TorchScript, measured in turns (one run of each per round) so background load hits all alike.
    """
    import time

    import onnxruntime as ort

    from stylenet.stylize.precision import compute_dtype
    from stylenet.stylize.strips import stylize_adain_strips
    from stylenet.stylize.stylizer import run_plain

    x = torch.rand(1, 3, height, width)
    onnx_path, ts_path = folder / "bench.onnx", folder / "bench.pt"
    export(net, onnx_path, "onnx", {})
    export(net, ts_path, "torchscript", {})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.jit.load(str(ts_path))
    if isinstance(net, BoundAdaIN):  # infer.py's AdaIN path: the strip executor, auto precision
        stats = (net.style_mean, net.style_std, net.alpha, compute_dtype("auto", x.device))
        default = lambda: stylize_adain_strips(net.net, x, *stats)  # noqa: E731
    else:
        default = lambda: run_plain(net, x[0])  # noqa: E731
    paths = {
        "PyTorch eager fp32": lambda: net(x),
        "infer.py default": default,
        "ONNX Runtime": lambda: session.run(None, {"image": x.numpy()}),
        "TorchScript": lambda: program(x),
    }
    times: dict[str, list[float]] = {k: [] for k in paths}
    with torch.inference_mode():
        for f in paths.values():  # warm-up
            f()
        for _ in range(runs):
            for name, f in paths.items():
                t = time.perf_counter()
                f()
                times[name].append((time.perf_counter() - t) * 1e3)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m stylenet.export",
        description=__doc__.split("\n\n")[0],
        epilog="Every model kind exports to one fixed style: a multi-style model (cin, stylebank) "
        "to --style NAME or --mix, an AdaIN model to the artwork --style ART at --alpha. The "
        "default output name then carries the style: checkpoints/cin_wave.onnx, "
        "cin_mix-wave0.7-scream0.3.onnx, adain_art.onnx (adain_art-alpha0.8.onnx).",
    )
    p.add_argument("--ckpt", required=True, help="model file, or a bare name from checkpoints/")
    p.add_argument("--format", choices=sorted(SUFFIXES), default="onnx")
    p.add_argument("-o", "--output", type=Path, help="output file (default: beside the checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument(
        "--style",
        metavar="NAME|ART",
        help="multi-style models: the style to export ('none': StyleBank's auto-encoder); AdaIN "
        "models: the artwork file whose style is fixed in the program",
    )
    choice.add_argument(
        "--mix",
        metavar="A=W,B=W",
        help="multi-style models: a convex mix, e.g. wave=0.7,scream=0.3",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=1.0,
        help="AdaIN: style strength 0..1 in feature space, fixed in the program (default 1)",
    )
    p.add_argument(
        "--bench",
        metavar="HxW",
        help="instead of exporting: median ms per image of each runtime at HxW (e.g. 512x512)",
    )
    p.add_argument("--runs", type=int, default=7, help="--bench rounds (default 7)")
    args = p.parse_args(argv)
    if not 0.0 <= args.alpha <= 1.0:
        p.error(f"--alpha {args.alpha} must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from stylenet.stylize.shipped import DamagedModelError, resolve_model

    args = parse_args(argv)
    try:
        src = resolve_model(args.ckpt)
        net, meta, label = load_exportable(src, args.style, args.mix, args.alpha)
    except (CheckpointError, UsageError, ImageError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1 if isinstance(e, DamagedModelError) else 2
    if args.bench:
        import tempfile

        h, w = (int(v) for v in args.bench.lower().split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            ms = bench(net, h, w, args.runs, Path(tmp))
        print(
            f"{src}: median ms per {h}x{w} image over {args.runs} rounds, "
            f"{torch.get_num_threads()} thread(s)"
        )
        for name, t in ms.items():
            print(f"  {name:<20} {t:8.1f}")
        return 0
    suffix = SUFFIXES[args.format]
    name = f"{src.stem}_{label}{suffix}" if label else src.stem + suffix
    dst = args.output or src.with_name(name)
    if dst.exists() and not args.overwrite:
        print(f"error: {dst}: exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    try:
        export(net, dst, args.format, meta)
    except OSError as e:
        print(f"error: cannot write {dst} ({e.strerror or e})", file=sys.stderr)
        return 1
    except Exception as e:  # the exporter's own errors (an operation it cannot convert ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {src}: cannot export to {args.format} ({first[:200]})", file=sys.stderr)
        return 1
    print(f"{src} -> {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    if getattr(net, "cel", False):
        print(
            "note: the cel stage is exported at its scale below 768 px on the short side; on "
            "larger photos its smoothing and lines are finer than with the checkpoint"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
