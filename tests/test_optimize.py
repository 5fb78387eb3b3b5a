"""Optimization-based transfer (stylenet.optimize): presets, loss conversion, optimizers, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT

import stylenet.losses.objective
from stylenet import optimize
from stylenet.files.images import load_image
from stylenet.losses import optimization
from stylenet.losses.loss_net import LossNet
from stylenet.losses.objective import StyleObjective
from stylenet.losses.terms import gram


@pytest.fixture(scope="module")
def images(content_dir, style_dir):
    photo = load_image(content_dir / "lomiri_bridge.jpg", max_side=64)[None]
    art = load_image(style_dir / "starry_night_vangogh.jpg", max_side=64)
    return photo, art


@pytest.fixture(scope="module")
def vgg16():
    return LossNet(["relu1_2", "relu2_2", "relu3_3", "relu4_3"], weights="random")


def test_johnson_preset_is_the_training_configuration():
    loss = yaml.safe_load((ROOT / "configs/loss/johnson.yaml").read_text())
    style = yaml.safe_load((ROOT / "configs/style/starry_night.yaml").read_text())
    p = optimization.PRESETS["johnson"]
    assert p["arch"] == loss["arch"]
    assert list(p["content_layers"]) == loss["content_layers"]
    assert list(p["style_layers"]) == loss["style_layers"]
    assert (p["content_weight"], p["style_weight"], p["tv_weight"]) == (
        float(style["content_weight"]),
        float(style["style_weight"]),
        float(style["tv_weight"]),
    )  # fmt: skip  (PyYAML reads 1.0e5 as a string)


def test_gatys_preset_is_the_design_document():
    p = optimization.PRESETS["gatys"]
    assert p["arch"] == "vgg19" and p["steps"] == 3000 and p["size"] == 450 and p["init"] == "mix"
    assert p["content_layers"] == {"conv4_2": 0.5, "conv5_2": 0.5}
    assert p["style_layers"] == {f"conv{i}_1": 0.2 for i in range(1, 6)}
    assert (p["content_weight"], p["style_weight"]) == (1.0, 500.0)


@pytest.mark.parametrize("convention", ["torchvision", "caffe"])
def test_paper_layer_weights_reproduce_the_paper_formulas(images, convention):
    photo, art = images
    net = LossNet(["conv1_1", "conv2_1", "conv4_2"], "random", "vgg19", convention)
    cl, sl = optimization.paper_layer_weights(
        net, photo, {"conv4_2": 0.5}, {"conv1_1": 0.2, "conv2_1": 0.2}
    )
    obj = StyleObjective(net, art, list(cl), list(sl), 1.0, 500.0, 0.0, cl, sl)
    y = optimization.initial_image(photo, "mix")
    parts = obj(y, obj.content_targets(photo))
    # paper: Caffe-scaled features, sums, unnormalised Grams; a 0-255 convention needs no scale
    s = optimization.CAFFE_SCALE if convention == "torchvision" else 1.0
    f, p, a = net(y), net(photo), net(art[None])
    content = 0.5 * 0.5 * ((s * f["conv4_2"] - s * p["conv4_2"]) ** 2).sum()
    style = 0.0
    for k in sl:
        _, n, h, w = f[k].shape
        m = h * w
        g = (s * f[k]).reshape(n, m) @ (s * f[k]).reshape(n, m).T
        fa = (s * a[k]).reshape(n, -1)
        ga = fa @ fa.T * (m / fa.shape[1])  # our Grams are per position: rescale the style's to M
        style = style + 0.2 * ((g - ga) ** 2).sum() / (4 * n**2 * m**2)
    expected = 1.0 * content + 500.0 * style
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-3)


def test_initial_images(images):
    photo = images[0]
    assert torch.equal(optimization.initial_image(photo, "photo"), photo)
    mix = optimization.initial_image(photo, "mix", seed=3)
    noise = optimization.initial_image(photo, "noise", seed=3)
    assert torch.allclose(mix, 0.5 * photo + 0.5 * noise)
    assert torch.equal(noise, optimization.initial_image(photo, "noise", seed=3))
    assert 0 <= noise.min() and noise.max() <= 1


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_optimizers_lower_the_training_objective(images, vgg16, method, monkeypatch):
    photo, art = images
    calls = []
    real = stylenet.losses.objective.style_loss
    monkeypatch.setattr(
        stylenet.losses.objective, "style_loss", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    obj = StyleObjective(vgg16, art, ["relu2_2"], ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    image, hist = optimization.run(obj, photo, 12, method, init="noise")
    assert len(hist) == 13 and calls  # the training objective's own loss functions ran
    assert hist[-1]["loss"] < 0.3 * hist[0]["loss"], [h["loss"] for h in hist]
    assert image.shape == photo.shape and 0 <= image.min() and image.max() <= 1
    assert hist[-1]["evals"] >= 12
    # the recorded final loss is the loss of the returned (saveable) image
    with torch.no_grad():
        again = obj(image, obj.content_targets(photo))["loss"].item()
    assert again == pytest.approx(hist[-1]["loss"], rel=1e-4)


def test_cli_johnson_writes_the_image_and_prints_losses(
    images, tmp_path, content_dir, style_dir, capsys
):
    out = tmp_path / "result.png"
    photo, style = content_dir / "lomiri_bridge.jpg", style_dir / "starry_night_vangogh.jpg"
    args = [
        str(photo),
        "--style",
        str(style),
        "--steps",
        "4",
        "--size",
        "48",
        "--vgg-weights",
        "random",
    ]
    assert optimize.main([*args, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "content loss" in captured.out and "style loss" in captured.out
    img = load_image(out)
    assert img.shape[1:] == load_image(photo, max_side=48).shape[1:]
    assert optimize.main([*args, "-o", str(out)]) == 1  # exists: not replaced
    assert "exists" in capsys.readouterr().err
    assert optimize.main([*args, "-o", str(tmp_path), "--optimizer", "adam"]) == 0
    assert (tmp_path / "lomiri_bridge_starry_night_vangogh.png").is_file()


def test_cli_gatys_preset_runs_on_vgg19(tmp_path, content_dir, style_dir, capsys):
    out = tmp_path / "g.png"
    rc = optimize.main([
        str(content_dir / "mate_storm.jpg"), "--style", str(style_dir / "the_scream_munch.jpg"),
        "--preset", "gatys", "--steps", "3", "--size", "48", "--vgg-weights", "random",
        "-o", str(out),
    ])  # fmt: skip
    assert rc == 0 and out.is_file()
    err = capsys.readouterr().err
    assert "vgg19" in err and "init mix" in err


@pytest.mark.parametrize(
    "case, expected",
    [("photo", "no such file"), ("style", "not an image"), ("vgg", "no such file")],
)
def test_cli_bad_input_is_one_line(case, expected, tmp_path, content_dir, style_dir, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    photo = tmp_path / "missing.jpg" if case == "photo" else content_dir / "mate_storm.jpg"
    style = bad if case == "style" else style_dir / "the_scream_munch.jpg"
    vgg = str(tmp_path / "nope.pth") if case == "vgg" else "random"
    rc = optimize.main([str(photo), "--style", str(style), "--steps", "1", "--size", "32",
                        "--vgg-weights", vgg, "-o", str(tmp_path / "o.png")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and expected in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "o.png").exists()


class Scaled(torch.nn.Module):
    """A loss network whose features are `k` times larger (another VGG input convention)."""

    def __init__(self, net: LossNet, k: float):
        super().__init__()
        self.net, self.k = net, k

    def forward(self, x, layers=None):
        return {n: self.k * f for n, f in self.net(x, layers).items()}


def test_normalized_weights_travel_across_feature_scales(images, vgg16):
    """Relative errors: a feature scale (another VGG input convention) changes nothing."""
    photo, art = images
    layers = (["relu2_2"], ["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    y0, y1 = optimization.initial_image(photo, "mix"), optimization.initial_image(photo, "noise")
    totals = {}
    for normalize in (False, True):
        for k in (1.0, 57.6):
            obj = StyleObjective(Scaled(vgg16, k), art, *layers, 1.0, 1.0, normalize=normalize)
            t = obj.content_targets(photo)
            totals[normalize, k] = (obj(y0, t)["loss"].item(), obj(y1, t)["loss"].item())
            if normalize:  # the artwork itself: zero style error; the photo: zero content error
                at_art = obj(art.unsqueeze(0), obj.content_targets(art.unsqueeze(0)))
                assert at_art["style_loss_normalized"].item() < 1e-6
                assert at_art["content_loss_normalized"].item() < 1e-6
                # one layer by hand: ||G - A||^2 / ||A||^2 over the entries
                g_art = obj.style_grams["relu3_3"]
                g_y = gram(Scaled(vgg16, k)(y1, ["relu3_3"])["relu3_3"])
                rel = ((g_y - g_art) ** 2).mean() / (g_art**2).mean()
                single = StyleObjective(
                    Scaled(vgg16, k), art, ["relu2_2"], ["relu3_3"], 0.0, 1.0, normalize=True
                )
                got = single(y1, single.content_targets(photo))["loss"].item()
                assert got == pytest.approx(rel.item(), rel=1e-4)
    for i in range(2):
        assert totals[True, 1.0][i] == pytest.approx(totals[True, 57.6][i], rel=1e-3)
        assert totals[False, 57.6][i] > 1000 * totals[False, 1.0][i]
    assert totals[True, 1.0][1] != pytest.approx(totals[True, 1.0][0])  # it still measures change


def test_gatys_preset_loads_vgg19_weights_from_a_path(tmp_path, content_dir, style_dir):
    from stylenet.losses.loss_net import vgg_features

    torch.manual_seed(1)
    state = {f"features.{k}": v for k, v in vgg_features("vgg19").state_dict().items()}
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    out = tmp_path / "g.png"
    rc = optimize.main([
        str(content_dir / "mate_storm.jpg"), "--style", str(style_dir / "the_scream_munch.jpg"),
        "--preset", "gatys", "--steps", "1", "--size", "32", "--vgg-weights", str(path),
        "-o", str(out),
    ])  # fmt: skip
    assert rc == 0 and out.is_file()
    torch.save({k: v for k, v in state.items() if "28" not in k}, path)  # conv5_1 missing
    assert optimize.main([
        str(content_dir / "mate_storm.jpg"), "--style", str(style_dir / "the_scream_munch.jpg"),
        "--preset", "gatys", "--steps", "1", "--size", "32", "--vgg-weights", str(path),
        "-o", str(tmp_path / "h.png"),
    ]) == 2  # fmt: skip


def test_bare_preserve_color_before_the_photo_means_luminance():
    """As infer.py: `--preserve-color photo.jpg` keeps the photo as the photo."""
    args = optimize.parse_args(["--preserve-color", "photo.jpg", "--style", "art.jpg"])
    assert (args.preserve_color, args.photo) == ("luminance", Path("photo.jpg"))
    args = optimize.parse_args(["photo.jpg", "--style", "art.jpg", "--preserve-color", "histogram"])
    assert args.preserve_color == "histogram"
