"""Stylize photos in the browser: `python -m stylenet.app [--checkpoints DIR] [--port 7860]`.

A local Gradio page: upload a photo (or take one with the webcam), pick a model, set strength and
colour preservation, compare before/after, download the full-size result. The models are the
user's own files in the checkpoints folder (default `checkpoints/`) and the models shipped in the
repository (stylenet/stylize/shipped.py; sha256-checked before use), whose entries a user's file of
the same name hides. A multi-style model (CIN, StyleBank) shows a Style choice; an AdaIN model an
Artwork upload and an Alpha slider. Models load and photos are stylized exactly as `infer.py` does
it (`stylenet.stylize.load`: safe loader, strip-wise execution for large photos); loaded models are
kept for the next click. A "Live webcam" section runs the chosen model on the webcam's stream at a
reduced size and shows the frames per second reached. Works offline; bound to 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import html
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from stylenet import stylize  # noqa: E402
from stylenet.files.images import (  # noqa: E402
    IMAGE_SUFFIXES,
    ImageError,
    load_image,
    save_image,
    shrink,
)
from stylenet.infer import apply_controls, output_path  # noqa: E402
from stylenet.ops.preserve_color import PRESERVE_METHODS  # noqa: E402
from stylenet.stylize.checkpoint import CheckpointError  # noqa: E402
from stylenet.stylize.shipped import SHIPPED_DIR, shipped_sums, verified  # noqa: E402
from stylenet.stylize.stylizer import Bound, Stylizer, Summary, UsageError, read_summary  # noqa: E402
from stylenet.stylize.work_size import at_work_size  # noqa: E402

MODEL_SUFFIXES = (".ckpt", ".safetensors")
MAX_MEGAPIXELS = 16.0  # 4000 x 4000, or a 4000 x 3000 phone photo with room to spare
NO_COLOR = "off"
SHIPPED = " (shipped)"  # the label suffix of a shipped model
LIVE_SIZE = 256  # the live webcam view's default long side
FULL_SIZE = "photo's size"  # the working-size choice that stylizes at full size
WORK_SIZES = [FULL_SIZE, "2048", "1024", "512"]
DEFAULT_ART = SHIPPED_DIR.parent / "data" / "styles" / "starry_night.jpg"  # AdaIN's first artwork


def find_models(folder: Path, shipped: Path = SHIPPED_DIR) -> dict[str, Path]:
    """Dropdown label -> model file: every *.ckpt / *.safetensors directly in folder, by file name,
    then every shipped model as "<name> (shipped)" unless a file of folder has its name (the
    user's own model is preferred, as by infer.py). Shipped files in folder are listed once."""
    sums = shipped_sums(shipped)

    def shipped_file(p: Path) -> bool:
        return p.suffix == ".safetensors" and p.stem in sums and p.parent.samefile(shipped)

    own = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.suffix in MODEL_SUFFIXES and p.is_file() and not shipped_file(p):
                own[p.name] = p
    mine = {p.stem for p in own.values()}
    return own | {n + SHIPPED: shipped / f"{n}.safetensors" for n in sorted(sums) if n not in mine}


def model_file(label: str, path: Path, shipped: Path = SHIPPED_DIR) -> Path:
    """The file to load for a dropdown entry: a shipped model only after its sha256 matched."""
    return verified(label.removesuffix(SHIPPED), shipped) if label.endswith(SHIPPED) else path


@functools.lru_cache(maxsize=64)
def _summary(path: str, mtime_ns: int, size: int) -> Summary:
    return read_summary(path)


def model_summary(path: Path) -> Summary:
    """What a model file takes (style names, an artwork), read without building its net and
    cached until the file changes; kind "other" for a file that does not read."""
    try:
        st = path.stat()
    except OSError:
        return Summary("other")
    return _summary(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=2)
def _loaded(path: str, mtime_ns: int, size: int, device: str, precision: str) -> Stylizer:
    return stylize.load(path, device, precision, announce=None)  # AdaIN's VGG19 takes seconds


@functools.lru_cache(maxsize=8)
def _bound(path: str, mtime_ns: int, size: int, device: str, precision: str, style: str | None,
           art: str | None, art_mtime: int, alpha: float) -> Bound:  # fmt: skip
    stylizer = _loaded(path, mtime_ns, size, device, precision)
    if stylizer.takes_artworks:  # as infer.py --style ART --alpha A
        return stylizer.bind(artworks=[art], alpha=alpha)
    return stylizer.bind(style=style if stylizer.styles else None)


def get_stylizer(
    path: Path,
    device: str = "cpu",
    precision: str = "auto",
    style: str | None = None,
    art: str | None = None,
    alpha: float = 1.0,
) -> Bound:
    """The bound stylizer of a model file (as infer.py loads it), cached until the file (or the
    artwork) changes. style counts for multi-style models only, art (a file) and alpha for AdaIN
    ones."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, device, precision)
    if not model_summary(path).takes_artworks:
        return _bound(*key, style, None, 0, 1.0)
    if not art:
        raise UsageError("Upload an artwork: an AdaIN model takes its style from a picture.")
    art_mtime = Path(art).stat().st_mtime_ns if Path(art).is_file() else 0  # else load_image says
    return _bound(*key, None, art, art_mtime, float(alpha))


def no_models_text(folder: Path) -> str:
    return (
        f"No models in `{folder.resolve()}`. Put exported `<style>.ckpt` or `<style>.safetensors` "
        "files there (`python train.py style=...` writes them to `checkpoints/`; "
        "`python -m stylenet.app --checkpoints DIR` picks another folder), then press ↻."
    )


def size_limit(max_megapixels: float) -> str:
    side = math.isqrt(int(max_megapixels * 1e6))
    return f"{max_megapixels:g} megapixels, e.g. {side} x {side}"


def check_pixels(path: Path, name: str, max_megapixels: float) -> None:
    """Refuse a photo above the size limit from its header, before decoding it."""
    limit = f"the limit is {size_limit(max_megapixels)}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
    except Image.DecompressionBombError:
        raise ImageError(f"{name}: too large ({limit})") from None
    except Exception:
        return  # not an image or unreadable: load_image says which, with its own message
    if w * h > max_megapixels * 1e6:
        raise ImageError(f"{name}: {w} x {h} is {w * h / 1e6:.1f} megapixels, too large ({limit})")


def fail(message: str) -> gr.Error:
    """An error shown in the page as plain text until the user closes it."""
    return gr.Error(html.escape(message), duration=None, print_exception=False)


def upload_path(payload: dict | None) -> str | None:
    """The server-side copy of an uploaded picture, from the raw payload of an event run with
    preprocess=False: gradio then leaves decoding to stylenet.files.images (its own decoder
    would fail on a bad file with a message of its own)."""
    return (payload or {}).get("path")


class Service:
    """What the page does, as plain methods: the model list, each model's controls, stylizing."""

    def __init__(
        self,
        checkpoints: Path,
        shipped: Path = SHIPPED_DIR,
        max_megapixels: float = MAX_MEGAPIXELS,
        device: str = "cpu",
        precision: str = "auto",
        results: Path | None = None,
    ):
        self.checkpoints, self.shipped, self.max_megapixels = checkpoints, shipped, max_megapixels
        self.device, self.precision = device, precision
        if results is None:  # full-size results to download
            results = Path(tempfile.mkdtemp(prefix="stylenet-app-"))
            atexit.register(shutil.rmtree, results, True)
        self.results = results

    def models(self) -> dict[str, Path]:
        return find_models(self.checkpoints, self.shipped)

    def refresh(self, current: str | None):
        names = list(self.models())
        value = current if current in names else (names[0] if names else None)
        note = "" if names else no_models_text(self.checkpoints)
        return gr.update(choices=names, value=value), gr.update(value=note, visible=not names)

    def summary(self, label: str | None) -> Summary:
        """model_summary of a dropdown entry; kind "other" for none."""
        path = self.models().get(label or "")
        return model_summary(path) if path else Summary("other")

    def controls(self, label: str | None, current: str | None = None):
        """Updates of the Style dropdown (multi-style models), Artwork and Alpha (AdaIN)."""
        summary = self.summary(label)
        styles = list(summary.styles)
        style = current if current in styles else (styles[0] if styles else None)
        adain = gr.update(visible=summary.takes_artworks)
        return gr.update(choices=styles, value=style, visible=bool(styles)), adain, adain

    def read_photo(self, photo: str) -> torch.Tensor:
        src = Path(photo)
        try:
            check_pixels(src, src.name, self.max_megapixels)
            return load_image(src)
        except ImageError as e:  # messages name gradio's temporary copy: show the file's name
            raise fail(str(e).replace(str(src), src.name)) from None

    def check_upload(self, payload: dict | None) -> None:
        if upload_path(payload):
            self.read_photo(upload_path(payload))

    def run(
        self,
        payload: dict | None,
        label: str | None,
        style: str | None = None,
        art: dict | None = None,
        alpha: float = 1.0,
        strength: float = 1.0,
        color: str = NO_COLOR,
        work_size: str = FULL_SIZE,
    ) -> tuple[tuple[str, str], str]:
        """((photo, result), result): the stylized photo written as <stem>_<style>.<ext>;
        work_size (px, long side) as infer.py --work-size."""
        photo = upload_path(payload)
        if not photo:
            raise fail("Upload a photo first (or take one with the webcam).")
        models = self.models()
        if not models:
            raise fail(no_models_text(self.checkpoints).replace("`", ""))
        if label not in models:
            raise fail(f"{label}: no such model in {self.checkpoints.resolve()}; press ↻")
        src = Path(photo)
        image = self.read_photo(photo)
        artwork = upload_path(art)
        try:
            path = model_file(label, models[label], self.shipped)
            run = get_stylizer(path, self.device, self.precision, style, artwork, alpha)
        except UsageError as e:
            raise fail(str(e)) from None
        except ImageError as e:  # the artwork; messages name gradio's copy: show the file's name
            raise fail(f"error: {e}".replace(str(artwork), Path(artwork).name)) from None
        except (CheckpointError, RuntimeError, OSError, ValueError) as e:  # as infer.py's
            raise fail(f"error: {e}") from None
        try:
            size = None if work_size in (None, FULL_SIZE) else int(work_size)
            styled = at_work_size(run, size)(image)
        except MemoryError:
            raise fail("error: not enough memory for this photo") from None
        preserve = None if color == NO_COLOR else color
        out = apply_controls(styled, image, preserve, float(strength))
        for old in self.results.iterdir():  # results older than an hour
            if old.stat().st_mtime < time.time() - 3600:
                shutil.rmtree(old, ignore_errors=True)
        name_src = src if src.suffix.lower() in IMAGE_SUFFIXES else src.with_suffix(".png")
        dst = output_path(name_src, run.label, Path(tempfile.mkdtemp(dir=self.results)))
        save_image(out, dst)
        return (str(src), str(dst)), str(dst)

    def live(
        self,
        frame: np.ndarray | None,
        label: str | None,
        style: str | None = None,
        art: str | dict | None = None,
        alpha: float = 1.0,
        size: int = LIVE_SIZE,
    ) -> tuple[np.ndarray | None, str]:
        """(stylized frame, speed line) for one webcam frame (H, W, 3) uint8, shrunk first to a
        long side of `size`: the live view trades size for frames per second."""
        if frame is None:
            return None, ""
        models = self.models()
        if label not in models:
            return None, "Pick a model first."
        start = time.perf_counter()
        x = torch.from_numpy(np.ascontiguousarray(frame[..., :3])).permute(2, 0, 1).float() / 255
        x = shrink(x, size)
        artwork = upload_path(art) if isinstance(art, dict) else art
        try:
            path = model_file(label, models[label], self.shipped)
            run = get_stylizer(path, self.device, self.precision, style, artwork, alpha)
        except (UsageError, ImageError, CheckpointError, RuntimeError, OSError, ValueError) as e:
            return None, f"error: {e}"
        y = run(x).float().clamp(0, 1)
        seconds = time.perf_counter() - start
        out = y.mul(255).round().byte().permute(1, 2, 0).numpy()
        speed = (
            f"{1 / seconds:.1f} frames/s at {x.shape[-1]}x{x.shape[-2]} on this machine "
            f"({seconds * 1000:.0f} ms per frame; frames arriving meanwhile are skipped)"
        )
        return out, speed


def build_app(
    checkpoints: Path,
    max_megapixels: float = MAX_MEGAPIXELS,
    device: str = "cpu",
    precision: str = "auto",
    shipped: Path = SHIPPED_DIR,
) -> gr.Blocks:
    """The page; nothing is loaded until a photo is stylized. precision: as infer.py's; shipped:
    the folder of the shipped models and their SHA256SUMS."""
    s = Service(checkpoints, shipped, max_megapixels, device, precision)
    with gr.Blocks(title="stylenet", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            "# stylenet: fast neural style transfer\n"
            "Upload a photo or take one with the webcam, pick a model and press **Stylize**. "
            f"Photos up to **{size_limit(max_megapixels)}**; larger ones are refused. "
            f"Models are the `.ckpt` / `.safetensors` files in `{checkpoints.resolve()}` and the "
            "models shipped with stylenet (a file of yours with the same name is used instead)."
        )
        names = list(s.models())
        first = s.summary(names[0] if names else None)
        styles = list(first.styles)
        with gr.Row():
            with gr.Column():
                photo = gr.Image(
                    label="Photo", type="filepath", sources=["upload", "webcam"], elem_id="photo"
                )
                with gr.Row():
                    pick = gr.Dropdown(
                        names, value=names[0] if names else None, label="Model", scale=4
                    )
                    again = gr.Button("↻", scale=0, min_width=40)
                missing = gr.Markdown(
                    no_models_text(checkpoints), visible=not names, elem_id="no-models"
                )
                style = gr.Dropdown(
                    styles, value=styles[0] if styles else None, label="Style", visible=bool(styles)
                )
                art = gr.Image(
                    DEFAULT_ART if DEFAULT_ART.is_file() else None,
                    label="Artwork (AdaIN takes its style from this picture)",
                    type="filepath",
                    sources=["upload"],
                    elem_id="artwork",
                    visible=first.takes_artworks,
                )
                alpha = gr.Slider(
                    0, 1, value=1, step=0.05, visible=first.takes_artworks,
                    label="Alpha (AdaIN's style strength in feature space)",
                )  # fmt: skip
                strength = gr.Slider(
                    0, 1, value=1, step=0.05, label="Strength (0: the photo, 1: full style)"
                )
                color = gr.Radio(
                    [NO_COLOR, *PRESERVE_METHODS],
                    value=NO_COLOR,
                    label="Keep the photo's colours (luminance: exact colours; "
                    "histogram: the photo's palette)",
                )
                work_size = gr.Radio(
                    WORK_SIZES,
                    value=FULL_SIZE,
                    label="Stylize at (long side, px): smaller gives larger brush strokes on "
                    "big photos; the result keeps the photo's size",
                )
                go = gr.Button("Stylize", variant="primary")
            with gr.Column():
                compare = gr.ImageSlider(label="Before / after (drag the handle)", type="filepath")
                result = gr.File(label="Full-size result")
        with gr.Accordion("Live webcam", open=False):
            gr.Markdown(
                "The chosen model on the webcam's stream, shrunk to the size below: on a 2-core "
                "CPU the shipped models reach about 8-10 frames/s at 256 px (see the speed line)."
            )
            with gr.Row():
                cam = gr.Image(
                    label="Webcam", sources=["webcam"], streaming=True, type="numpy",
                    elem_id="live-cam",
                )  # fmt: skip
                live_out = gr.Image(label="Stylized", type="numpy", elem_id="live-out")
            with gr.Row():
                live_size = gr.Slider(
                    96, 720, value=LIVE_SIZE, step=16, label="Live size (long side, px)"
                )
                speed = gr.Markdown(elem_id="live-speed")
        cam.stream(
            s.live, [cam, pick, style, art, alpha, live_size], [live_out, speed],
            stream_every=0.1, trigger_mode="always_last", concurrency_limit=1,
            show_progress="hidden",
        )  # fmt: skip
        extra = [style, art, alpha]
        again.click(s.refresh, pick, [pick, missing]).then(s.controls, [pick, style], extra)
        pick.change(s.controls, [pick, style], extra)
        photo.upload(s.check_upload, photo, None, preprocess=False)
        inputs = [photo, pick, style, art, alpha, strength, color, work_size]
        go.click(s.run, inputs, [compare, result], preprocess=False)
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stylenet.app", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"), help="model folder")
    p.add_argument(
        "--shipped",
        type=Path,
        default=SHIPPED_DIR,
        help="folder of the shipped models and their SHA256SUMS (default: the repository's)",
    )
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 serves every network (careful)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="public Gradio share link (careful)")
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto: bf16 on GPUs and bf16-capable CPUs, else fp32",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.share or args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            "warning: the page is reachable from other machines "
            f"({'a public share link' if args.share else args.host}): anyone who reaches it can "
            "upload files and use this machine's CPU/GPU, with no login.",
            file=sys.stderr,
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit cleanly: atexit removes results
    app = build_app(
        args.checkpoints, args.max_megapixels, args.device, args.precision, args.shipped
    )
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        show_error=True,
        ssr_mode=False,
        max_file_size="200mb",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
