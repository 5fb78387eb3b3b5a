"""Stylize photos in the browser: `python -m stylenet.app [--checkpoints DIR] [--port 7860]`.

A local Gradio page: upload a photo (or take one with the webcam), pick a model from the
checkpoints folder, set strength and colour preservation, compare before/after, download the
full-size result. Models load and photos are stylized exactly as `infer.py` does it (safe loader,
strip-wise execution for large photos). Works offline; bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import atexit
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
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from stylenet.checkpoint import CheckpointError, load_model  # noqa: E402
from stylenet.color import METHODS  # noqa: E402
from stylenet.images import IMAGE_SUFFIXES, ImageError, load_image, save_image  # noqa: E402
from stylenet.infer import apply_controls, output_path, stylize  # noqa: E402

MODEL_SUFFIXES = (".ckpt", ".safetensors")
MAX_MEGAPIXELS = 16.0  # 4000 x 4000, or a 4000 x 3000 phone photo with room to spare
NO_COLOR = "off"


def find_models(folder: Path) -> dict[str, Path]:
    """Dropdown label -> model file, for every *.ckpt / *.safetensors directly in folder.

    Today every file is one single-style model, labelled by its file name. A multi-style or AdaIN
    checkpoint would add one label per style here and map it to (file, style) instead.
    """
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir() if p.suffix in MODEL_SUFFIXES and p.is_file())
    return {p.name: p for p in files}


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


class _Model:
    """The last model used, reloaded when another file is picked or the file changes."""

    key: tuple | None = None
    net: torch.nn.Module | None = None
    meta: dict | None = None

    def get(self, path: Path, device: str) -> tuple[torch.nn.Module, dict]:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size, device)
        if key != self.key:
            self.key = None
            net, meta = load_model(
                path, single_style=True
            )  # CheckpointError with infer.py's message
            self.net, self.meta, self.key = net.to(device), meta, key
        return self.net, self.meta


def upload_path(payload: dict | None) -> str | None:
    """The server-side copy of an uploaded photo, from the raw payload of an event run with
    preprocess=False: gradio then leaves decoding to stylenet.images (its own decoder would fail
    on a bad file with a message of its own)."""
    return (payload or {}).get("path")


def build_app(
    checkpoints: Path,
    max_megapixels: float = MAX_MEGAPIXELS,
    device: str = "cpu",
    precision: str = "auto",
) -> gr.Blocks:
    """The page; nothing is loaded until a photo is stylized. precision: as infer.py's."""
    model = _Model()
    results = Path(tempfile.mkdtemp(prefix="stylenet-app-"))  # full-size results to download
    atexit.register(shutil.rmtree, results, True)

    def choices() -> list[str]:
        return list(find_models(checkpoints))

    def refresh(current: str | None):
        names = choices()
        value = current if current in names else (names[0] if names else None)
        note = "" if names else no_models_text(checkpoints)
        return gr.update(choices=names, value=value), gr.update(value=note, visible=not names)

    def read_photo(photo: str) -> torch.Tensor:
        src = Path(photo)
        try:
            check_pixels(src, src.name, max_megapixels)
            return load_image(src)
        except ImageError as e:  # messages name gradio's temporary copy: show the file's name
            raise fail(str(e).replace(str(src), src.name)) from None

    def check_upload(payload: dict | None) -> None:
        if upload_path(payload):
            read_photo(upload_path(payload))

    def run(payload: dict | None, name: str | None, strength: float, color: str):
        photo = upload_path(payload)
        if not photo:
            raise fail("Upload a photo first (or take one with the webcam).")
        models = find_models(checkpoints)
        if not models:
            raise fail(no_models_text(checkpoints).replace("`", ""))
        if name not in models:
            raise fail(f"{name}: no such model in {checkpoints.resolve()}; press ↻")
        src = Path(photo)
        image = read_photo(photo)
        try:
            net, meta = model.get(models[name], device)
        except (CheckpointError, RuntimeError) as e:
            raise fail(f"error: {e}") from None
        preserve = None if color == NO_COLOR else color
        styled = stylize(net, image, device, precision)
        out = apply_controls(styled, image, preserve, float(strength))
        for old in results.iterdir():  # results older than an hour
            if old.stat().st_mtime < time.time() - 3600:
                shutil.rmtree(old, ignore_errors=True)
        name_src = src if src.suffix.lower() in IMAGE_SUFFIXES else src.with_suffix(".png")
        style = str(meta.get("style", "styled"))
        dst = output_path(name_src, style, Path(tempfile.mkdtemp(dir=results)))
        save_image(out, dst)
        return (str(src), str(dst)), str(dst)

    with gr.Blocks(title="stylenet", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            "# stylenet: fast neural style transfer\n"
            "Upload a photo or take one with the webcam, pick a model and press **Stylize**. "
            f"Photos up to **{size_limit(max_megapixels)}**; larger ones are refused. "
            f"Models are the `.ckpt` / `.safetensors` files in `{checkpoints.resolve()}`."
        )
        names = choices()
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
                strength = gr.Slider(
                    0, 1, value=1, step=0.05, label="Strength (0: the photo, 1: full style)"
                )
                color = gr.Radio(
                    [NO_COLOR, *METHODS],
                    value=NO_COLOR,
                    label="Keep the photo's colours (luminance: exact colours; "
                    "histogram: the photo's palette)",
                )
                go = gr.Button("Stylize", variant="primary")
            with gr.Column():
                compare = gr.ImageSlider(label="Before / after (drag the handle)", type="filepath")
                result = gr.File(label="Full-size result")
        again.click(refresh, pick, [pick, missing])
        photo.upload(check_upload, photo, None, preprocess=False)
        go.click(run, [photo, pick, strength, color], [compare, result], preprocess=False)
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stylenet.app", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", type=Path, default=Path("checkpoints"), help="model folder")
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
    app = build_app(args.checkpoints, args.max_megapixels, args.device, args.precision)
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
