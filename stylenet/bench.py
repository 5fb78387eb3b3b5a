"""Speed and memory, side by side in one process: `python -m stylenet.bench [--json] [--quick]`.

`python -m stylenet.bench --ckpt MODEL [--style S | --mix A=W,B=W] [--sizes WxH ...]` times only
inference of one model of any kind (johnson, cin, stylebank, adain, an .onnx export).

plain:   the usual reference implementation of Johnson et al.: float32, NCHW, eager, the full VGG16
         up to relu4_3 for both the stylized output and the content photo, no autocast, no compile.
default: what `train.py` and `infer.py` do on this machine (precision auto, channels_last bf16 VGG,
         content targets only up to the content layer, each x2 upsampling and its conv as one
         smaller phase convolution, the last conv on 2x2 pixel blocks, layer-wise inference;
         --compile).

floor:   the convolutions the default path calls (shapes, layout, number format), forward and
         the backward training needs, timed alone (stylenet/eval/conv_floor.py); each path is
         shown as a fraction of it (100%: nothing but convolutions).

Both paths use this project's modules with seeded random VGG weights (speed doesn't depend on them).
Memory freed is kept for reuse as infer.py and train.py keep it (stylenet/allocator.py): in
default inference of images up to 1920 x 1080 and in training, both paths (`--levers` also times
the training step without it, in fresh processes); plain inference runs with glibc's defaults.
Steps alternate between the paths so that load from other programs hits both alike, two of a path
at a time, timing the second (as in a training run, where a step follows a step of its own path);
medians are reported. Peak memory is each inference's peak RSS (VmHWM) in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

from stylenet.allocator import OFF, keep_freed_memory, keeps, up_to_size
from stylenet.eval import conv_floor
from stylenet.eval.timing import median_ms, timed
from stylenet.files.images import ImageError
from stylenet.losses.loss_net import LossNet
from stylenet.losses.terms import content_loss, gram, style_loss
from stylenet.nets.transform_net import TrainingForm, TransformNet
from stylenet.stylize import load as stylize_load
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.stylize.precision import compute_dtype, has_bf16
from stylenet.stylize.shipped import DamagedModelError, to_stderr
from stylenet.stylize.stylizer import UsageError, parse_mix
from stylenet.stylize.stylizer import run_plain as stylize
from stylenet.training.johnson_module import StyleTransferModule

ARTWORK = Path(__file__).resolve().parent.parent / "data" / "styles" / "wave.jpg"
CONTENT, STYLE = ["relu2_2"], ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
SIZES = ["256x256", "512x512", "1024x1024", "1920x1080"]
PEAK_SIZE = "3840x2160"


def parse_size(s: str) -> tuple[int, int]:
    """'1920x1080' (width x height) -> (height, width)."""
    w, h = (int(v) for v in s.lower().split("x"))
    return h, w


def loss_net(device: torch.device, extra_layers: list[str] | None = None) -> LossNet:
    """The random-weight VGG16; with extra_layers, every call also runs on to them (their
    features are dropped): the loss network not cut at its last used layer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = LossNet(CONTENT + STYLE + (extra_layers or []), weights="random").to(device)
    if extra_layers:
        forward = vgg.forward

        def uncut(x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
            wanted = list(layers or CONTENT + STYLE)
            out = forward(x, wanted + list(extra_layers))
            return {k: out[k] for k in wanted}

        vgg.forward = uncut
    return vgg


def reference_net() -> TransformNet:
    """A TransformNet whose layers run as the reference code's do, in training mode too (not as
    phase convolutions or on pixel blocks: stylenet.nets.transform_net.upsampled_conv and
    blocked_conv)."""
    net = TransformNet()
    for m in net.modules():
        if isinstance(m, TrainingForm):
            m.fast = False
    return net


class PlainStep:
    """One fp32 NCHW eager training step with full VGG passes (the reference code's step)."""

    def __init__(self, size: int, device: torch.device):
        torch.manual_seed(0)
        self.net, self.vgg = reference_net().to(device), loss_net(device)
        self.opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        with torch.no_grad():
            feats = self.vgg(torch.rand(1, 3, size, size, device=device), STYLE)
        self.grams = {k: gram(v) for k, v in feats.items()}

    def __call__(self, photos: torch.Tensor) -> None:
        y = self.net(photos)
        fy = self.vgg(y, STYLE)  # the whole VGG up to relu4_3 ...
        fx = self.vgg(photos, STYLE)  # ... for the content photo too
        loss = 1e5 * content_loss(fy, {k: fx[k] for k in CONTENT}) + 1e10 * style_loss(
            fy, self.grams
        )
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


class DefaultStep:
    """One training step as train.py runs it under Lightning with precision auto: kind johnson
    (StyleTransferModule), cin (MultiStyleModule, one of two styles) or adain (AdaINModule, the
    decoder against batch-sized random artworks)."""

    def __init__(
        self,
        size: int,
        device: torch.device,
        compile_net: bool = False,
        kind: str = "johnson",
        bf16: bool | None = None,
        channels_last: bool = True,
        extra_layers: list[str] | None = None,
    ):
        """bf16 (None: where native), channels_last and extra_layers (VGG layers computed but
        not used) change one lever of the johnson step at a time (see LEVERS)."""
        torch.manual_seed(0)
        self.bf16 = has_bf16(device) if bf16 is None else bf16
        self.device, self.compiled = device, compile_net
        art = torch.rand(3, size, size)
        if kind == "johnson":
            vgg = loss_net(device, extra_layers)
            self.module = StyleTransferModule(
                art, vgg, compile=compile_net, channels_last=channels_last
            )
            self.frozen = self.module.loss_net
            self.losses = lambda photos: self.module.losses(photos)[1]
        elif kind == "cin":
            from stylenet.nets.cin import CINNet
            from stylenet.training.multistyle_module import MultiStyleModule

            settings = dict.fromkeys("ab", {"content_weight": 1e5, "style_weight": 1e10})
            net = CINNet(["a", "b"])
            self.module = MultiStyleModule(
                net, dict.fromkeys("ab", art), settings, loss_net(device)
            )
            self.frozen = self.module.loss_net
            self.losses = lambda photos: self.module.style_losses(photos, "a")[1]
        elif kind == "adain":
            from stylenet.nets.adain import Encoder
            from stylenet.training.adain_module import AdaINModule

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.module = AdaINModule(Encoder("random"))
            self.frozen = self.module.encoder
            self.losses = lambda photos: self.module.losses(photos, self.arts[: len(photos)])[1]
            self.arts = torch.rand(16, 3, size, size, device=device)
        else:
            raise ValueError(f"kind {kind!r}: johnson, cin or adain")
        self.module.to(device)
        if self.bf16:  # what the modules' setup does under bf16-mixed
            self.frozen.to(torch.bfloat16)
        if kind != "adain":
            self.module.compute_style_targets()
        trained = [p for p in self.module.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(trained, 1e-3)

    def loss(self, photos: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.losses(photos)["loss"]

    def __call__(self, photos: torch.Tensor) -> None:
        loss = self.loss(photos)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def floor_s(self, photos: torch.Tensor, repeats: int) -> float:
        """The step's convolutions alone (stylenet.eval.conv_floor), in its number format.
        They are recorded from an eager step: hooks do not run inside compiled code."""
        module = self.module
        if self.compiled:
            forward, module._net_forward = module._net_forward, module.net.__call__
        try:
            calls = conv_floor.record(lambda: self.loss(photos))
        finally:
            if self.compiled:
                module._net_forward = forward
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        return conv_floor.floor_seconds(calls, dtype, self.device, repeats)


def bench_train(
    size: int, batch: int, rounds: int, device: torch.device, compile_net: bool
) -> dict:
    photos = torch.rand(batch, 3, size, size, device=device)
    plain, default = PlainStep(size, device), DefaultStep(size, device, compile_net)
    warm = {"plain": timed(lambda: plain(photos), device)}
    warm["default"] = timed(lambda: default(photos), device)  # includes compiling, if on
    timed(lambda: default(photos), device)
    times: dict[str, list[float]] = {"plain": [], "default": []}
    for _ in range(rounds):  # each timed step follows one of its own path, as in a training run:
        for name, step in (("plain", plain), ("default", default)):
            step(photos)  # a step after the other path's runs ~8% slower (caches, heap)
            times[name].append(timed(lambda step=step: step(photos), device))
    med = {k: statistics.median(v) for k, v in times.items()}
    floor = default.floor_s(photos, max(rounds, 3))
    return {
        "images_per_s": {k: batch / v for k, v in med.items()},
        "floor_images_per_s": batch / floor,
        "of_floor": {k: floor / v for k, v in med.items()},
        "first_step_s": warm,
        "speedup": med["plain"] / med["default"],
    }


def bench_infer(sizes: list[str], repeats: int, device: torch.device, precision: str) -> dict:
    torch.manual_seed(0)
    net = reference_net().eval().to(device)
    out: dict[str, dict] = {"plain": {}, "default": {}, "floor": {}}
    for size in sizes:
        image = torch.rand(3, *parse_size(size), device=device)

        def plain(image: torch.Tensor = image) -> None:
            keep_freed_memory(False)  # glibc's defaults, as the reference code runs
            with torch.no_grad():
                net(image.unsqueeze(0))

        def default(image: torch.Tensor = image) -> None:
            up_to_size(lambda x: stylize(net, x, device, precision))(image)  # as infer.py runs

        plain(), default()  # warm-up: kernel selection, allocator
        times: dict[str, list[float]] = {"plain": [], "default": []}
        for _ in range(repeats):
            times["plain"].append(timed(plain, device))
            times["default"].append(timed(default, device))
        for k, v in times.items():
            out[k][size] = 1000 * statistics.median(v)
        calls = conv_floor.record(default)
        dtype = compute_dtype(precision, device)
        keep_freed_memory(keeps(image))  # the convolutions as default ran them
        out["floor"][size] = 1000 * conv_floor.floor_seconds(calls, dtype, device, max(repeats, 3))
    return out


LEVERS = {  # DefaultStep's options with one lever changed from train.py's step
    "default": {},
    "float32 (no bf16 autocast)": {"bf16": False},
    "NCHW loss network": {"channels_last": False},
    "VGG not cut (on to relu5_3)": {"extra_layers": ["relu5_3"]},
    "torch.compile transform net": {"compile_net": True},
}


def bench_levers(size: int, batch: int, rounds: int, device: torch.device) -> dict:
    """Training images/s of the default step and of variants with one lever changed (LEVERS),
    alternating; the default step on one thread; decoding and cropping one real photo."""
    from stylenet.files.images import load_image

    photos = torch.rand(batch, 3, size, size, device=device)
    steps = {k: DefaultStep(size, device, **opts) for k, opts in LEVERS.items()}
    first = {k: timed(lambda s=s: s(photos), device) for k, s in steps.items()}  # compiles
    ms = median_ms({k: (lambda s=s: s(photos)) for k, s in steps.items()}, rounds, device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = median_ms({"default": lambda: steps["default"](photos)}, rounds, device)["default"]
    finally:
        torch.set_num_threads(threads)
    photo = Path(__file__).resolve().parent.parent / "data" / "photos" / "chelsea.png"
    decode = median_ms({"decode": lambda: load_image(photo, max_side=size)}, 5, device)["decode"]
    memory = memory_lever(size, batch, rounds, device)
    return {
        "size": size,
        "batch": batch,
        "threads": threads,
        "images_per_s": {k: 1000 * batch / v for k, v in ms.items()},
        "vs_default": {k: ms["default"] / v for k, v in ms.items()},
        "first_step_s": first,
        "one_thread_images_per_s": 1000 * batch / one,
        "decode_ms_per_photo": decode,
        "decode_of_step": decode * batch / ms["default"],
        "freed_memory_kept_images_per_s": memory[True],
        "freed_memory_returned_images_per_s": memory[False],
    }


def step_child(size: str, batch: str, rounds: str, device: str) -> None:
    """Print the default training step's images/s, timed in this process (--step-child)."""
    photos = torch.rand(int(batch), 3, int(size), int(size), device=torch.device(device))
    step = DefaultStep(int(size), torch.device(device))
    step(photos)
    ms = median_ms({"default": lambda: step(photos)}, int(rounds), torch.device(device))
    print(1000 * int(batch) / ms["default"])


def memory_lever(size: int, batch: int, rounds: int, device: torch.device) -> dict:
    """The default step's images/s in fresh processes, with freed memory kept (as train.py
    does) and returned to the system (STYLENET_KEEP_MEMORY=0), alternating, two of each."""
    got: dict[bool, list[float]] = {True: [], False: []}
    for keep in (True, False) * 2:
        env = {**os.environ, OFF: "1" if keep else "0"}
        args = (str(size), str(batch), str(rounds), str(device))
        got[keep].append(child_value("--step-child", *args, env=env))
    return {k: statistics.median(v) for k, v in got.items()}


def levers_report(r: dict) -> str:
    lines = [f"training, {r['size']} px, batch {r['batch']}: one lever changed at a time", ""]
    lines.append(f"{'':32s}{'images/s':>10s}{'vs default':>12s}{'first step s':>14s}")
    for k, v in r["images_per_s"].items():
        lines.append(f"{k:32s}{v:10.2f}{r['vs_default'][k]:11.2f}x{r['first_step_s'][k]:14.1f}")
    per = r["one_thread_images_per_s"]
    lines.append(
        f"\ndefault on 1 thread: {per:.2f} images/s ({r['threads']} threads: "
        f"{r['images_per_s']['default']:.2f}, {r['images_per_s']['default'] / per:.2f}x)"
    )
    lines.append(
        f"decoding and shrinking one photo: {r['decode_ms_per_photo']:.0f} ms "
        f"({r['decode_of_step']:.0%} of a step's time per batch, in the loader's workers)"
    )
    kept, returned = r["freed_memory_kept_images_per_s"], r["freed_memory_returned_images_per_s"]
    lines.append(
        f"fresh processes: freed memory kept {kept:.2f} images/s, returned to the system "
        f"(STYLENET_KEEP_MEMORY=0) {returned:.2f}: {kept / returned:.2f}x"
    )
    return "\n".join(lines)


def train_families(size: int, batch: int, rounds: int, device: torch.device) -> dict:
    """Training images/s of each kind's default step (johnson, cin, adain), alternating, and each
    as a fraction of its own convolution floor."""
    photos = torch.rand(batch, 3, size, size, device=device)
    steps = {k: DefaultStep(size, device, False, k) for k in ("johnson", "cin", "adain")}
    ms = median_ms({k: (lambda s=s: s(photos)) for k, s in steps.items()}, rounds, device)
    floor = {k: s.floor_s(photos, 3) for k, s in steps.items()}
    return {
        "size": size,
        "batch": batch,
        "images_per_s": {k: 1000 * batch / v for k, v in ms.items()},
        "of_floor": {k: 1000 * floor[k] / v for k, v in ms.items()},
    }


def bench_families(size: str, repeats: int, device: torch.device, precision: str) -> dict:
    """ms per photo through infer.py's path: the one-style Johnson net against AdaIN (VGG19 encoder
    to relu4_1, AdaIN, decoder), alternating; plus AdaIN's one-off artwork statistics (512 px)."""
    from stylenet.nets.adain import ENCODER_LAYER, AdaINNet, Decoder, Encoder
    from stylenet.stylize.strips import stylize_adain_strips

    torch.manual_seed(0)
    johnson = TransformNet().eval().to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = Encoder("random")
        adain = AdaINNet(Decoder(encoder.scales[ENCODER_LAYER]), encoder).eval().to(device)
    image = torch.rand(3, *parse_size(size), device=device)
    art = torch.rand(3, 512, 512, device=device)
    dtype = compute_dtype(precision, device)
    mean, std = adain.style_statistics(art)
    runs = {
        "johnson": lambda: stylize(johnson, image, device, precision),
        "adain": lambda: stylize_adain_strips(adain, image[None], mean, std, 1.0, dtype),
        "adain_style_stats": lambda: adain.style_statistics(art),
    }
    ms = median_ms(runs, repeats, device)
    return {"size": size, "ms": ms, "adain_over_johnson": ms["adain"] / ms["johnson"]}


def bench_model(
    ckpt: str,
    sizes: list[str],
    repeats: int,
    device: torch.device,
    precision: str,
    style: str | None = None,
    mix: str | None = None,
) -> dict:
    """ms per photo of any model (stylenet.stylize.load: every kind), plain (its module in eager
    float32, one pass) against infer.py's path (strips, precision), alternating. style: a style
    of a multi-style model (default: its first) or an AdaIN artwork (default: ARTWORK)."""
    stylizer = stylize_load(ckpt, device, precision, announce=to_stderr)  # stdout: --json
    if stylizer.takes_artworks:
        bound = stylizer.bind(artworks=[style or str(ARTWORK)])
    elif mix:
        bound = stylizer.bind(mix=parse_mix(mix))
    elif stylizer.styles:
        bound = stylizer.bind(style=style or stylizer.styles[0])
    else:
        bound = stylizer.bind(style=style)
    out: dict = {"model": str(stylizer.path), "kind": stylizer.kind, "style": bound.label}
    out["ms"] = {"plain": {}, "default": {}}
    module = bound.module.to(device) if bound.module is not None else None
    for size in sizes:
        image = torch.rand(3, *parse_size(size))

        def plain(image: torch.Tensor = image) -> None:
            keep_freed_memory(False)
            with torch.inference_mode():
                module(image.unsqueeze(0).to(device))

        runs = {"plain": plain} if module is not None else {}
        runs["default"] = lambda image=image: up_to_size(bound)(image)
        for k, ms in median_ms(runs, repeats, device).items():
            out["ms"][k][size] = ms
    return out


def peak_rss_mb(size: str, path: str, device: str, precision: str) -> float:
    """Peak resident memory (MB) of one inference in a fresh Python process."""
    return child_value("--peak-child", size, path, device, precision)


def child_value(flag: str, *args: str, env: dict[str, str] | None = None) -> float:
    """The number a fresh `python -m stylenet.bench <flag> <args>` prints last."""
    cmd = [sys.executable, "-m", "stylenet.bench", flag, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{flag} subprocess failed: {res.stderr.strip()[-500:]}")
    return float(res.stdout.strip().splitlines()[-1])


def peak_child(size: str, path: str, device: str, precision: str) -> None:
    torch.manual_seed(0)
    dev = torch.device(device)
    net = TransformNet().eval().to(dev)
    image = torch.rand(3, *parse_size(size))
    if path == "plain":
        with torch.no_grad():
            net(image.unsqueeze(0).to(dev)).cpu()
    else:
        up_to_size(lambda x: stylize(net, x, dev, precision))(image)
    if dev.type == "cuda":
        print(torch.cuda.max_memory_allocated() / 2**20)
    else:
        print(max_rss_mb())


def max_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, because ru_maxrss survives fork+exec and would
    report a large parent's peak instead."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    compile_net = {"auto": device.type == "cuda", "true": True, "false": False}[args.compile]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    infer = bench_infer(args.sizes, args.repeats, device, args.precision)
    keeps = keep_freed_memory()  # as train.py does
    train = bench_train(args.train_size, args.batch, args.rounds, device, compile_net)
    peaks = {f"{args.peak_size} default": peak_rss_mb(args.peak_size, "default", **_p(args))}
    if not args.quick:
        for path in ("plain", "default"):
            peaks[f"1920x1080 {path}"] = peak_rss_mb("1920x1080", path, **_p(args))
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "precision": str(compute_dtype(args.precision, device)).removeprefix("torch."),
        "compile": compile_net,
        "train_size": args.train_size,
        "train_batch": args.batch,
        "train_images_per_s": train["images_per_s"]["default"],
        "train_speedup": train["speedup"],
        "train_first_step_s": train["first_step_s"],
        "train_floor_images_per_s": train["floor_images_per_s"],
        "train_of_floor": train["of_floor"]["default"],
        "infer_ms": infer["default"],
        "infer_floor_ms": infer["floor"],
        "infer_of_floor": {s: infer["floor"][s] / infer["default"][s] for s in args.sizes},
        "infer_speedup": {s: infer["plain"][s] / infer["default"][s] for s in args.sizes},
        f"peak_rss_mb_{args.peak_size}": peaks[f"{args.peak_size} default"],
        "peak_rss_mb": peaks,
        "plain": {
            "train_images_per_s": train["images_per_s"]["plain"],
            "train_of_floor": train["of_floor"]["plain"],
            "infer_ms": infer["plain"],
            "infer_of_floor": {s: infer["floor"][s] / infer["plain"][s] for s in args.sizes},
        },
        "train_keeps_freed_memory": keeps,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _p(args: argparse.Namespace) -> dict:
    return {"device": args.device, "precision": args.precision}


def report(r: dict) -> str:
    plain = r["plain"]
    lines = [
        f"device {r['device']}, {r['threads']} threads, default path: {r['precision']}, "
        f"compile {'on' if r['compile'] else 'off'}; load average {r['load_average']}",
        "",
        f"{'':28s}{'plain':>12s}{'default':>12s}{'speed-up':>10s}{'floor':>10s}"
        f"{'plain/floor':>13s}{'default/floor':>15s}",
        f"{'train images/s':28s}{plain['train_images_per_s']:12.2f}"
        f"{r['train_images_per_s']:12.2f}{r['train_speedup']:9.1f}x"
        f"{r['train_floor_images_per_s']:10.2f}{plain['train_of_floor']:12.0%}"
        f"{r['train_of_floor']:14.0%}   ({r['train_size']} px, batch {r['train_batch']})",
    ]
    for size, ms in r["infer_ms"].items():
        lines.append(
            f"{'infer ms ' + size:28s}{plain['infer_ms'][size]:12.0f}{ms:12.0f}"
            f"{r['infer_speedup'][size]:9.1f}x{r['infer_floor_ms'][size]:10.0f}"
            f"{plain['infer_of_floor'][size]:12.0%}{r['infer_of_floor'][size]:14.0%}"
        )
    first = r["train_first_step_s"]
    lines.append(
        f"{'first train step s':28s}{first['plain']:12.1f}{first['default']:12.1f}"
        "   (start-up: kernel selection, compiling if on)"
    )
    for name, mb in r["peak_rss_mb"].items():
        lines.append(f"{'peak RSS MB ' + name:40s}{mb:12.0f}")
    kept = "kept for reuse" if r["train_keeps_freed_memory"] else "returned to the system"
    lines.append(f"freed memory in training: {kept}")
    lines.append(f"\nfinished in {r['seconds']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--peak-child"]:
        peak_child(*argv[1:5])
        return 0
    if argv[:1] == ["--step-child"]:
        keep_freed_memory()
        step_child(*argv[1:5])
        return 0
    p = argparse.ArgumentParser(prog="python -m stylenet.bench", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one round (checks it runs)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    p.add_argument("--compile", choices=("auto", "true", "false"), default="auto")
    p.add_argument("--rounds", type=int, default=3, help="training rounds (2 steps of each path)")
    p.add_argument("--repeats", type=int, default=3, help="timed inferences per size and path")
    p.add_argument("--batch", type=int, default=4, help="training photos per step (256 px)")
    p.add_argument(
        "--families",
        metavar="WxH",
        help="only compare the kinds: inference ms (johnson, adain) at this size, and training "
        "images/s (johnson, cin, adain; 256 px, batch 4)",
    )
    p.add_argument(
        "--levers",
        action="store_true",
        help="only training: the default step against variants with one lever changed "
        "(bf16, channels_last, the cut loss network, torch.compile), threads and decoding",
    )
    p.add_argument(
        "--ckpt",
        metavar="MODEL",
        help="only time inference of this model (any kind; a file or a name as for infer.py) at "
        "--sizes, plain against infer.py's path",
    )
    p.add_argument("--style", help="--ckpt: a style of a multi-style model, or an AdaIN artwork")
    p.add_argument("--mix", metavar="A=W,B=W", help="--ckpt: a mix of a multi-style model")
    p.add_argument(
        "--sizes", nargs="+", metavar="WxH", help="--ckpt: photo sizes (256x256 512x512)"
    )
    args = p.parse_args(argv)
    if args.ckpt:
        sizes = args.sizes or (["64x64"] if args.quick else ["256x256", "512x512"])
        repeats = 1 if args.quick else args.repeats
        try:
            r = bench_model(args.ckpt, sizes, repeats, torch.device(args.device), args.precision,
                            args.style, args.mix)  # fmt: skip
        except (CheckpointError, UsageError, ImageError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1 if isinstance(e, DamagedModelError) else 2
        r["precision"] = str(compute_dtype(args.precision, torch.device(args.device)))
        r["load_average"] = round(os.getloadavg()[0], 2)
        if args.json:
            print(json.dumps(r))
            return 0
        print(f"{r['model']} ({r['kind']}, {r['style']}), {r['precision']}: ms per photo")
        for size, ms in r["ms"]["default"].items():
            plain = r["ms"]["plain"].get(size)
            shown = f"{plain:10.1f}" if plain is not None else f"{'-':>10s}"
            print(f"  {size:>12s}  plain {shown}  default {ms:10.1f}")
        return 0
    if args.levers:
        keep_freed_memory()
        size, batch = (64, 2) if args.quick else (256, 4)
        r = bench_levers(size, batch, 1 if args.quick else args.rounds, torch.device(args.device))
        r["load_average"] = round(os.getloadavg()[0], 2)
        print(json.dumps(r) if args.json else levers_report(r))
        return 0
    if args.families:
        device = torch.device(args.device)
        r = bench_families(args.families, args.repeats, device, args.precision)
        keep_freed_memory()  # training as train.py runs it
        size, batch = (64, 2) if args.quick else (256, 4)
        r["train"] = train_families(size, batch, 1 if args.quick else args.rounds, device)
        r["precision"] = str(compute_dtype(args.precision, device))
        r["load_average"] = round(os.getloadavg()[0], 2)
        print(json.dumps(r) if args.json else "\n".join(f"{k}: {v}" for k, v in r.items()))
        return 0
    if args.batch < 1:
        p.error(f"--batch {args.batch}: must be at least 1")
    args.train_size, args.sizes, args.peak_size = 256, SIZES, PEAK_SIZE
    if args.quick:
        args.train_size, args.batch, args.sizes = 64, 2, ["64x64", "128x96"]
        args.rounds, args.repeats = 1, 1
    result = run(args)
    print(json.dumps(result) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
