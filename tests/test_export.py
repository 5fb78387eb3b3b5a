"""stylenet.export: ONNX and TorchScript match the PyTorch net at any size; bad files fail."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from stylenet import infer
from stylenet.checkpoint import save_model
from stylenet.export import main
from stylenet.images import load_image
from stylenet.nets.transform_net import TransformNet

SIZES = [(97, 130), (128, 192)]  # H x W; the first is odd and not a multiple of 4


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The default architecture with random weights, saved as a checkpoint."""
    torch.manual_seed(0)
    net = TransformNet().eval()
    path = save_model(tmp_path_factory.mktemp("model") / "ink.ckpt", net, {"style": "ink"})
    return net, path


@pytest.fixture(scope="module")
def photos(content_dir):
    """A real photo at each size in SIZES (resized, so the whole scene is in it)."""
    photo = load_image(content_dir / "kodak_kodim21_lighthouse.png")
    return [F.interpolate(photo[None], hw, mode="bilinear", antialias=True) for hw in SIZES]


def export(model, fmt, tmp_path, *extra):
    dst = tmp_path / f"ink{'.onnx' if fmt == 'onnx' else '.pt'}"
    assert main(["--ckpt", str(model[1]), "--format", fmt, "-o", str(dst), *extra]) == 0
    return dst


def test_onnx_matches_pytorch_on_real_photos(model, photos, tmp_path):
    path = export(model, "onnx", tmp_path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in photos:
        with torch.no_grad():
            ref = model[0](x)
        y = session.run(None, {"image": x.numpy()})[0]
        assert y.shape == tuple(x.shape) and y.dtype == np.float32
        assert np.abs(y - ref.numpy()).max() <= 1e-3
        assert ref.std() > 0.01  # a real picture, not a constant the two could trivially agree on
    meta = session.get_modelmeta().custom_metadata_map
    assert '"style": "ink"' in meta["stylenet"]


@pytest.mark.parametrize("cel", [False, True])
def test_onnx_residual_output_photo_colors_and_cel_match_pytorch(photos, tmp_path, cel):
    torch.manual_seed(0)
    net = TransformNet(output="residual", photo_colors=True, cel=cel).eval()
    ckpt = save_model(tmp_path / "res.ckpt", net, {"style": "res"})
    path = export((net, ckpt), "onnx", tmp_path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = photos[0]  # odd size: the photo is padded with the features and cropped with them
    with torch.no_grad():
        ref = net(x)
    assert np.abs(session.run(None, {"image": x.numpy()})[0] - ref.numpy()).max() <= 1e-3


def test_default_output_beside_checkpoint_and_no_overwrite(model, capsys):
    dst = model[1].with_suffix(".onnx")
    assert main(["--ckpt", str(model[1])]) == 0
    assert dst.stat().st_size > 1e6  # weights inside: 1.7M float32 parameters
    before = dst.stat().st_mtime_ns
    assert main(["--ckpt", str(model[1])]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {dst}: exists (pass --overwrite to replace it)"]
    assert dst.stat().st_mtime_ns == before
    assert main(["--ckpt", str(model[1]), "--overwrite"]) == 0


def test_infer_runs_onnx_file(model, photos, tmp_path, capsys):
    path = export(model, "onnx", tmp_path)
    src = tmp_path / "photo.png"
    Image.fromarray(photos[0][0].mul(255).round().byte().permute(1, 2, 0).numpy()).save(src)
    assert infer.main(["--ckpt", str(path), str(src), "-o", str(tmp_path / "a")]) == 0
    ckpt = str(model[1])
    argv = ["--ckpt", ckpt, str(src), "-o", str(tmp_path / "b"), "--precision", "fp32"]
    assert infer.main(argv) == 0
    a = np.asarray(Image.open(tmp_path / "a" / "photo_ink.png"), dtype=np.int16)
    b = np.asarray(Image.open(tmp_path / "b" / "photo_ink.png"), dtype=np.int16)
    assert a.shape == (97, 130, 3) and np.abs(a - b).max() <= 1


def test_torchscript_runs_without_stylenet(model, photos, tmp_path):
    path = export(model, "torchscript", tmp_path)
    torch.save([x for x in photos], tmp_path / "inputs.pt")
    code = (
        "import sys, torch\n"
        f"m = torch.jit.load({str(path)!r})\n"
        f"xs = torch.load({str(tmp_path / 'inputs.pt')!r})\n"
        "with torch.no_grad():\n"
        f"    torch.save([m(x) for x in xs], {str(tmp_path / 'outputs.pt')!r})\n"
        "assert 'stylenet' not in sys.modules, 'stylenet was imported'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    outputs = torch.load(tmp_path / "outputs.pt")
    for x, y in zip(photos, outputs, strict=True):
        with torch.no_grad():
            assert y.shape == x.shape and (y - model[0](x)).abs().max() <= 1e-4


@pytest.mark.parametrize("name", ["text.onnx", "truncated.onnx", "random.pt"])
def test_bad_model_files_give_one_line(model, tmp_path, capfd, name):
    bad = tmp_path / name
    if name == "text.onnx":
        bad.write_text("this is not a model\n")
    elif name == "truncated.onnx":
        bad.write_bytes(export(model, "onnx", tmp_path).read_bytes()[:5000])
    else:
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    photo = tmp_path / "p.png"
    Image.new("RGB", (16, 16), (10, 200, 30)).save(photo)
    capfd.readouterr()
    for run in (infer.main, main):
        assert run(["--ckpt", str(bad), str(photo)] if run is infer.main else ["--ckpt", str(bad)])
        err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith(f"error: {bad}: "), err
        assert "Traceback" not in err[0]
    assert not (tmp_path / "p_ink.png").exists()


def test_bench_reports_every_runtime(model, capsys):
    assert main(["--ckpt", str(model[1]), "--bench", "32x48", "--runs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "median ms per 32x48 image" in lines[0]
    names = ["PyTorch eager fp32", "infer.py default", "ONNX Runtime", "TorchScript"]
    assert [line.split("  ")[1].strip() for line in lines[1:]] == names
    assert all(float(line.split()[-1]) > 0 for line in lines[1:])
    assert not model[1].with_name("bench.onnx").exists()  # measured in a temporary folder
