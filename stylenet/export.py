"""Export a model to ONNX or TorchScript: `python -m stylenet.export --ckpt anime --format onnx`.

The exported program takes float32 RGB (1, 3, H, W) in [0, 1], any H and W of at least 8, and
returns the stylized image, same shape, in [0, 1]: the padding to a multiple of 4, the sigmoid and
the crop are inside the graph. Writes checkpoints/anime.onnx (or .pt) beside the checkpoint, or
-o FILE. Also runs .onnx files for infer.py (`load_onnx`).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.atomic import atomic_write
from stylenet.checkpoint import CheckpointError, load_model
from stylenet.nets.transform_net import TransformNet, finish, to_pixels

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17


class ExportNet(nn.Module):
    """TransformNet.forward with the padding written so that tracing keeps it dynamic.

    TransformNet pads only when a side is not a multiple of 4 (a Python `if`, which a trace would
    freeze at the example's size); here the pad is always applied, possibly by 0 pixels.
    """

    def __init__(self, net: TransformNet):
        super().__init__()
        self.net, self.output = net.net, net.output
        self.photo_colors, self.cel = net.photo_colors, net.cel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        x = F.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="replicate")
        y = to_pixels(self.net(x), self.output, x)
        return finish(y[..., :h, :w], x[..., :h, :w], self.photo_colors, self.cel)


def export(net: TransformNet, path: str | Path, fmt: str, meta: dict[str, Any]) -> Path:
    """Write net as an ONNX file or a TorchScript program (fp32, CPU); meta goes in as JSON."""
    model = ExportNet(net).float().cpu().eval()
    info = json.dumps({"style": meta.get("style"), "arch": meta.get("arch")})
    example = torch.rand(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation and constant-folding chatter
        if fmt == "torchscript":
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


def load_onnx(path: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """(stylize, meta) for an exported .onnx file: stylize maps (3, H, W) in [0, 1] to the same."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only, no warnings on stderr
        opts.intra_op_num_threads = torch.get_num_threads()  # as torch: OMP_NUM_THREADS counts
        providers = [p for p in ort.get_available_providers() if p != "TensorrtExecutionProvider"]
        session = ort.InferenceSession(str(path), opts, providers=providers)
        props = session.get_modelmeta().custom_metadata_map
        meta = json.loads(props.get("stylenet", "{}"))
        name = session.get_inputs()[0].name
    except Exception as e:  # ONNX Runtime raises its own classes for every kind of bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable ONNX model ({first[:200]})") from None
    meta["style"] = meta.get("style") or path.stem

    def stylize(image: torch.Tensor) -> torch.Tensor:
        x = image.detach().float().cpu().unsqueeze(0).numpy()
        return torch.from_numpy(session.run(None, {name: x})[0][0])

    return stylize, meta


def bench(net: TransformNet, height: int, width: int, runs: int, folder: Path) -> dict[str, float]:
    """Median ms per image for PyTorch eager fp32, infer.py's default path, ONNX Runtime and
    TorchScript, measured in turns (one run of each per round) so background load hits all alike.
    """
    import time

    import onnxruntime as ort

    from stylenet.infer import stylize

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
    paths = {
        "PyTorch eager fp32": lambda: net(x),
        "infer.py default": lambda: stylize(net, x[0]),
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
        prog="python -m stylenet.export", description=__doc__.splitlines()[0]
    )
    p.add_argument("--ckpt", required=True, help="model file, or a bare name from checkpoints/")
    p.add_argument("--format", choices=sorted(SUFFIXES), default="onnx")
    p.add_argument("-o", "--output", type=Path, help="output file (default: beside the checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--bench",
        metavar="HxW",
        help="instead of exporting: median ms per image of each runtime at HxW (e.g. 512x512)",
    )
    p.add_argument("--runs", type=int, default=7, help="--bench rounds (default 7)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from stylenet.shipped import resolve_model

    args = parse_args(argv)
    try:
        src = resolve_model(args.ckpt)
        if src.suffix.lower() == ".onnx":
            raise CheckpointError(f"{src}: already exported; export a .ckpt or .safetensors")
        net, meta = load_model(src, single_style=True)
    except (CheckpointError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
    dst = args.output or src.with_suffix(SUFFIXES[args.format])
    if dst.exists() and not args.overwrite:
        print(f"error: {dst}: exists (pass --overwrite to replace it)", file=sys.stderr)
        return 1
    try:
        export(net, dst, args.format, meta)
    except OSError as e:
        print(f"error: cannot write {dst} ({e.strerror or e})", file=sys.stderr)
        return 1
    print(f"{src} -> {dst} ({dst.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
