"""Every command takes every model kind: a tiny johnson, cin, stylebank and adain checkpoint
through stylize.load, infer.py (photos and videos), the app's loader, the gallery, export,
evaluate --independent and bench --ckpt."""

from __future__ import annotations

import json

import av
import pytest
import torch
from conftest import KINDS
from PIL import Image

from stylenet import app, bench, evaluate, export, gallery, infer, stylize
from stylenet.files.images import load_image, save_image
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.stylize.video import pan_zoom_clip


@pytest.fixture(scope="module")
def files(tmp_path_factory, content_dir, style_dir):
    """(photo 64 x 48, artwork 32 x 32, clip of 4 frames 32 x 24) in a temporary folder."""
    d = tmp_path_factory.mktemp("every_kind")
    photo = load_image(content_dir / "kodak_kodim21_lighthouse.png", max_side=64)
    save_image(photo, d / "photo.png")
    Image.open(style_dir / "great_wave_hokusai.jpg").convert("RGB").resize((32, 32)).save(
        d / "art.png"
    )
    pan_zoom_clip(photo, d / "clip.mp4", frames=4, size=(32, 24), audio=False)
    return d / "photo.png", d / "art.png", d / "clip.mp4"


def options(kind: str, art) -> list[str]:
    """Each kind's style options on the command line (a mix for stylebank, to cover --mix)."""
    return {
        "johnson": [],
        "cin": ["--style", "b"],
        "stylebank": ["--mix", "a=0.5,b=0.5"],
        "adain": ["--style", str(art), "--alpha", "0.5"],
    }[kind]


def bind_options(kind: str, art) -> dict:
    return {
        "johnson": {},
        "cin": {"style": "b"},
        "stylebank": {"mix": {"a": 0.5, "b": 0.5}},
        "adain": {"artworks": [art], "alpha": 0.5},
    }[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_load_and_bind(kind, tiny_models, files):
    photo, art, _ = files
    stylizer = stylize.load(tiny_models[kind], precision="fp32")
    assert stylizer.kind == kind and stylizer.styles == (["a", "b"] if kind in KINDS[1:3] else [])
    run = stylizer.bind(**bind_options(kind, art))
    x = load_image(photo)
    y = run(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    with torch.no_grad():  # the plain module for export: the same picture in one pass
        assert (run.module(x[None])[0] - y).abs().max() < 1e-4
    if kind != "johnson":
        with pytest.raises((CheckpointError, stylize.UsageError)):
            stylizer.bind()  # a multi-style model needs a style, AdaIN an artwork


@pytest.mark.parametrize("kind", KINDS)
def test_infer_photo_and_video(kind, tiny_models, files, tmp_path, capsys):
    photo, art, clip = files
    args = ["--ckpt", str(tiny_models[kind]), *options(kind, art), "-o", str(tmp_path)]
    assert infer.main([*args, str(photo), str(clip)]) == 0
    outs = sorted(tmp_path.iterdir())
    assert [p.suffix for p in outs] == [".mp4", ".png"], outs
    with av.open(str(outs[0])) as c:
        assert sum(1 for _ in c.decode(video=0)) == 4
    stylizer = stylize.load(tiny_models[kind])
    want = stylizer.bind(**bind_options(kind, art))(load_image(photo))
    assert (load_image(outs[1]) - want).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_app_loader(kind, tiny_models, files):
    photo, art, _ = files
    style = {"cin": "b", "stylebank": "a"}.get(kind)
    run = app.get_stylizer(tiny_models[kind], "cpu", "auto", style, str(art), 0.5)
    assert run(load_image(photo)).shape[0] == 3


def test_gallery_with_every_kind(tiny_models, files, tmp_path):
    photo, art, _ = files
    ckpts = [str(tiny_models[k]) for k in KINDS]
    argv = ["--ckpt", *ckpts, "--artworks", str(art), "--photos", str(photo)]
    assert gallery.main([*argv, "-o", str(tmp_path / "g.jpg"), "--size", "32"]) == 0
    # the photo, johnson, cin a and b, stylebank a and b, adain: seven columns
    assert Image.open(tmp_path / "g.jpg").size == gallery.canvas_size(1, 7, 32)


@pytest.mark.parametrize("kind", KINDS)
def test_export_every_kind(kind, tiny_models, files, tmp_path):
    _, art, _ = files
    opts = options(kind, art)
    if kind == "stylebank":
        opts = ["--mix", "a=0.5,b=0.5"]
    dst = tmp_path / "m.onnx"
    assert export.main(["--ckpt", str(tiny_models[kind]), *opts, "-o", str(dst)]) == 0
    assert stylize.load(dst).kind == "onnx"


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_independent_every_kind(kind, tiny_models, files, capsys):
    photo, art, _ = files
    style = {"cin": "b", "stylebank": "a"}.get(kind, str(art))
    argv = ["--ckpt", str(tiny_models[kind]), "--images", str(photo), "--style", style]
    assert evaluate.main([*argv, "--independent", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]


@pytest.mark.parametrize("kind", KINDS)
def test_bench_takes_every_kind(kind, tiny_models, files, capsys):
    _, art, _ = files
    opts = {"cin": ["--style", "b"], "stylebank": ["--mix", "a=0.5,b=0.5"]}.get(kind, [])
    if kind == "adain":
        opts = ["--style", str(art)]
    argv = ["--ckpt", str(tiny_models[kind]), *opts, "--quick", "--json", "--device", "cpu"]
    assert bench.main(argv) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["kind"] == kind and r["ms"]["default"]["64x64"] > 0 and r["ms"]["plain"]["64x64"] > 0
