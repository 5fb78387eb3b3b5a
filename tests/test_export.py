"""stylenet.export: ONNX and TorchScript match the PyTorch net at any size, for every model kind
(a multi-style model bound to a style or mix, AdaIN to an artwork); bad files and options fail
in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from stylenet import infer, stylize
from stylenet.export import main
from stylenet.files.images import load_image
from stylenet.nets.adain import Decoder, layer_scales
from stylenet.nets.cin import CINNet
from stylenet.nets.stylebank import StyleBankNet
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize import shipped
from stylenet.stylize.checkpoint import save_model
from stylenet.stylize.stylizer import parse_mix, style_label

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


def onnx_run(path, x):
    """(output, the file's stylenet metadata) of an exported .onnx file in ONNX Runtime."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map["stylenet"])
    return torch.from_numpy(session.run(None, {"image": x.numpy()})[0]), meta


def torchscript_run(path, x):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        return torch.jit.load(str(path))(x)


def test_torchscript_photo_colors_and_cel_match_pytorch(photos, tmp_path, capsys):
    torch.manual_seed(0)
    net = TransformNet(8, 1, photo_colors=True, cel=True).eval()
    ckpt = save_model(tmp_path / "cel.ckpt", net, {"style": "cel"})
    dst = export((net, ckpt), "torchscript", tmp_path)
    assert "note: the cel stage is exported at its scale below 768 px" in capsys.readouterr().out
    for x in photos:  # the cel stage is traced at 64 x 64; its sizes still follow the input
        with torch.no_grad():
            ref = net(x)
        assert (torchscript_run(dst, x) - ref).abs().max() <= 1e-4 and ref.std() > 0.01


@pytest.fixture(scope="module")
def cin(tmp_path_factory):
    """A tiny CIN model whose two styles differ (b's norms scaled and shifted)."""
    torch.manual_seed(0)
    net = CINNet(["a", "b"], channels=8, num_residual=1).eval()
    with torch.no_grad():
        net.gamma["b"].mul_(torch.rand_like(net.gamma["b"]) * 2)
        net.beta["b"].add_(torch.randn_like(net.beta["b"]) * 0.5)
    return net, save_model(tmp_path_factory.mktemp("cin") / "cin.ckpt", net, {})


@pytest.mark.parametrize(
    ("argv", "style", "name"),
    [
        (["--style", "b"], "b", "cin_b.onnx"),
        (["--mix", "a=0.3,b=0.7"], {"a": 0.3, "b": 0.7}, "cin_mix-a0.3-b0.7.onnx"),
    ],
)
def test_cin_style_or_mix_exports_and_matches_the_bound_net(cin, photos, argv, style, name):
    net, ckpt = cin
    assert main(["--ckpt", str(ckpt), *argv]) == 0
    path = ckpt.with_name(name)  # the default name carries the style
    for x in photos:  # neither size is the export's 64 x 64 example
        with torch.no_grad():
            ref = net.bind(style)(x)
            others = [net.bind(s)(x) for s in ("a", "b") if s != style]
        y, meta = onnx_run(path, x)
        assert y.shape == x.shape and (y - ref).abs().max() <= 1e-4
        assert ref.std() > 0.01 and all((o - ref).abs().max() > 0.05 for o in others)
    assert meta["style"] == style_label(style) and meta["kind"] == "cin"


def test_cin_mix_to_torchscript(cin, photos, tmp_path):
    net, ckpt = cin
    dst = tmp_path / "mix.pt"
    assert main(["--ckpt", str(ckpt), "--mix", "a=0.5,b=0.5", "-o", str(dst), "--format",
                 "torchscript"]) == 0  # fmt: skip
    x = photos[0]
    with torch.no_grad():
        ref = net.bind({"a": 0.5, "b": 0.5})(x)
        assert (net.bind("a")(x) - ref).abs().max() > 0.02  # the mix is neither style
        assert (net.bind("b")(x) - ref).abs().max() > 0.02
    assert (torchscript_run(dst, x) - ref).abs().max() <= 1e-4


@pytest.mark.parametrize(("fmt", "argv"), [("onnx", ["--mix", "a=0.3,b=0.7"]),
                                           ("torchscript", ["--style", "a"])])  # fmt: skip
def test_stylebank_style_or_mix_matches_the_bound_net(photos, tmp_path, fmt, argv):
    torch.manual_seed(0)
    net = StyleBankNet(["a", "b"], channels=8, bank_layers=1).eval()
    ckpt = save_model(tmp_path / "bank.ckpt", net, {})
    dst = tmp_path / f"bank.{fmt}"
    assert main(["--ckpt", str(ckpt), "--format", fmt, "-o", str(dst), *argv]) == 0
    style = parse_mix(argv[1]) if argv[0] == "--mix" else argv[1]
    for x in photos:
        with torch.no_grad():
            ref = net.bind(style)(x)
        y = onnx_run(dst, x)[0] if fmt == "onnx" else torchscript_run(dst, x)
        assert y.shape == x.shape and (y - ref).abs().max() <= 1e-4 and ref.std() > 0.01


@pytest.fixture(scope="module")
def adain_model(tmp_path_factory, style_dir):
    """A decoder for the random-weight VGG19 (He-init, its last conv scaled so that the picture
    is mostly inside [0, 1]) and a real artwork, saved small."""
    folder = tmp_path_factory.mktemp("adain")
    torch.manual_seed(0)
    decoder = Decoder(layer_scales("random")["relu4_1"])
    convs = [m for m in decoder.modules() if isinstance(m, nn.Conv2d)]
    for m in convs:
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.zeros_(m.bias)
    with torch.no_grad():
        convs[-1].weight.mul_(0.1)
        convs[-1].bias.fill_(0.5)
    meta = {"kind": "adain", "style": "adain", "encoder": {"arch": "vgg19", "weights": "random"}}
    ckpt = save_model(folder / "adain.ckpt", decoder, meta)
    art = folder / "art.png"
    with Image.open(style_dir / "great_wave_hokusai.jpg") as img:
        img.convert("RGB").resize((96, 64)).save(art)
    return ckpt, art


@pytest.mark.filterwarnings("ignore:loss.vgg_weights=random")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_adain_with_artwork_matches_infer_at_other_sizes(adain_model, photos, fmt, capsys):
    ckpt, art = adain_model
    argv = ["--ckpt", str(ckpt), "--style", str(art), "--alpha", "0.5", "--format", fmt]
    assert main(argv) == 0
    path = ckpt.with_name(f"adain_art-alpha0.5{'.onnx' if fmt == 'onnx' else '.pt'}")
    assert str(path) in capsys.readouterr().out
    stylizer = stylize.load(ckpt, precision="fp32")
    run = stylizer.bind(artworks=[art], alpha=0.5)
    full = stylizer.bind(artworks=[art], alpha=1.0)
    for x in photos:  # 97 x 130 and 128 x 192, the example was 64 x 64: H and W are dynamic
        ref = run(x[0])[None]
        y = onnx_run(path, x)[0] if fmt == "onnx" else torchscript_run(path, x)
        assert y.shape == x.shape and (y - ref).abs().max() <= 1e-4
        assert ref.std() > 0.05 and ((ref > 0) & (ref < 1)).float().mean() > 0.5  # not clipped
        # the random VGG's relu4_1 statistics differ little between images, so alpha moves the
        # picture little, yet 20 times the tolerance: the program holds alpha 0.5, not 1
        assert (full(x[0])[None] - ref).abs().max() > 2e-3
    if fmt == "onnx":
        meta = onnx_run(path, photos[0])[1]
        assert (meta["style"], meta["alpha"], meta["artwork"]) == ("art", 0.5, "art.png")


def one_error_line(capfd):
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.filterwarnings("ignore:loss.vgg_weights=random")
def test_usage_errors_are_one_line_and_write_nothing(cin, adain_model, model, tmp_path, capfd):
    (_, ckpt), (adain_ckpt, _) = cin, adain_model
    missing = tmp_path / "nowhere.png"
    cases = [
        ([str(ckpt)], f"error: {ckpt}: a cin model with several styles; pass --style NAME or "
                      "--mix a=0.7,b=0.3 (styles: a, b)"),
        ([str(ckpt), "--style", "c"], f"error: {ckpt}: no style 'c'; styles: a, b"),
        ([str(ckpt), "--mix", "a=0.5,b=0.6"], f"error: {ckpt}: --mix: mix weights sum to 1.1; "
                                              "they must sum to 1"),
        ([str(ckpt), "--style", "a", "--alpha", "0.5"], f"error: {ckpt}: --alpha is for AdaIN "
                                                        "models"),
        ([str(adain_ckpt)], f"error: {adain_ckpt}: an AdaIN model: pass the artwork with --style "
                            "ART"),
        ([str(adain_ckpt), "--style", str(missing)], f"error: {missing}: no such file"),
        ([str(adain_ckpt), "--mix", "a=1"], f"error: {adain_ckpt}: an AdaIN model takes an "
                                            "artwork (--style ART), not --mix"),
        ([str(model[1]), "--style", "b"], f"error: {model[1]}: a single-style model (ink); "
                                          "--style and --mix are for multi-style and AdaIN models"),
    ]  # fmt: skip
    capfd.readouterr()
    for argv, line in cases:
        out = tmp_path / "out.onnx"
        assert main(["--ckpt", *argv, "-o", str(out)]) == 2, argv
        assert one_error_line(capfd) == line
        assert not out.exists()


def test_damaged_shipped_model_exits_1_in_one_line(tmp_path, monkeypatch, capfd):
    ship = tmp_path / "ship"
    save_model(ship / "ink.safetensors", TransformNet(8, 1), {"style": "ink"})
    (ship / "SHA256SUMS").write_text(f"{'0' * 64}  ink.safetensors\n")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", ship)
    monkeypatch.setattr(shipped, "USER_DIR", tmp_path / "mine")
    capfd.readouterr()
    assert main(["--ckpt", "ink"]) == 1
    line = one_error_line(capfd)
    assert line.startswith(f"error: {ship / 'ink.safetensors'}: changed or truncated")
    assert not (ship / "ink.onnx").exists()
