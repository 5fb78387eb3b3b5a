"""The `seed` preset of stylenet.optimize: the design document's Gatys experiment, exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylenet import optimize
from stylenet.files.images import load_image
from stylenet.losses import optimization


@pytest.fixture(scope="module")
def tiny():
    gen = torch.Generator().manual_seed(0)
    photo = torch.rand(1, 3, 40, 36, generator=gen)
    art = torch.rand(1, 3, 40, 36, generator=gen)
    return photo, art


@pytest.fixture(scope="module")
def seed_objective(tiny):
    photo, art = tiny
    return optimization.preset_objective("seed", photo, art)  # the original VGG19 weights


def test_seed_preset_reaches_the_optimizer_and_loss(tmp_path, content_dir, style_dir, monkeypatch):
    """`--preset seed` alone: the design document's experiment is what the command optimizes
    (VGG19 with the original weights on RGB - 128, conv4_2 + conv5_2 content, conv1_1 ... conv5_1
    style, weights 1 and 500, no TV, L-BFGS from the mix start, 3000 steps at 450 px)."""
    seen = {}

    def fake_run(objective, photo, steps, optimizer, init, lr, seed, progress=False):
        seen.update(objective=objective, photo=photo, steps=steps, optimizer=optimizer, init=init)
        return photo, [{"loss": 1.0, "content_loss": 1.0, "style_loss": 1.0}]

    monkeypatch.setattr(optimize, "run", fake_run)
    photo = content_dir / "skimage_chelsea.png"
    art = style_dir / "starry_night_vangogh.jpg"
    argv = [str(photo), "--style", str(art), "--preset", "seed", "-o", str(tmp_path / "s.png")]
    assert optimize.main(argv) == 0
    obj = seen["objective"]
    net = obj.loss_net
    assert (net.features[0].in_channels, net.convention) == (3, "mean128")
    assert len([m for m in net.features if isinstance(m, torch.nn.Conv2d)]) >= 13  # VGG19 to conv5
    assert set(obj.content_layer_weights) == {"conv4_2", "conv5_2"}  # the weights are
    assert set(obj.style_layer_weights) == {f"conv{i}_1" for i in range(1, 6)}  # checked below
    assert (obj.content_weight, obj.style_weight, obj.tv_weight) == (1.0, 500.0, 0.0)
    assert (seen["steps"], seen["optimizer"], seen["init"]) == (3000, "lbfgs", "mix")
    assert max(seen["photo"].shape[-2:]) == 450


def test_seed_objective_is_the_design_formula(tiny, seed_objective):
    photo, art = tiny
    obj = seed_objective
    assert not obj.normalize and obj.tv_weight == 0
    y = optimization.initial_image(photo, "mix", seed=1)
    parts = obj(y, obj.content_targets(photo))
    net = obj.loss_net
    with torch.no_grad():
        f, p, a = net(y), net(photo), net(art)
    c_layers = {"conv4_2": 0.5, "conv5_2": 0.5}
    s_layers = {f"conv{i}_1": 0.2 for i in range(1, 6)}
    content = 0.0
    for k, w in c_layers.items():
        _, n, h, wd = f[k].shape
        m = h * wd
        diff = (f[k].double() - p[k].double()) ** 2
        content = content + w * diff.sum() / (2 * m * n)
    content = content / len(c_layers)
    style = 0.0
    for k, w in s_layers.items():
        _, n, h, wd = f[k].shape
        m = h * wd
        fy, fa = f[k].double().reshape(n, m), a[k].double().reshape(n, m)
        g, ga = fy @ fy.T, fa @ fa.T  # unnormalised Grams
        style = style + w * ((g - ga) ** 2).sum() / (4 * m**2 * n**2)
    style = style / len(s_layers)
    expected = 1.0 * content + 500.0 * style
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert content > 0 and style > 0


def test_seed_loss_net_sees_rgb_0_255_minus_128(tiny, seed_objective):
    net = seed_objective.loss_net
    assert net.convention == "mean128"
    photo = tiny[0]
    conv = net.features[0]  # conv1_1, original weights with RGB input channels
    by_hand = F.conv2d(255 * photo - 128, conv.weight, conv.bias, padding=1)
    with torch.no_grad():
        out = net(photo, ["conv1_1"])["conv1_1"]
    assert torch.allclose(out, by_hand, rtol=1e-5, atol=1e-3)
    caffe = F.conv2d(
        255 * photo - torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1),
        conv.weight,
        conv.bias,
        padding=1,
    )
    assert not torch.allclose(out, caffe, rtol=1e-3, atol=1e-1)


def test_cli_seed_writes_the_image(tmp_path, content_dir, style_dir, capsys):
    out = tmp_path / "seed.png"
    photo = content_dir / "skimage_chelsea.png"
    rc = optimize.main([
        str(photo), "--style", str(style_dir / "starry_night_vangogh.jpg"),
        "--preset", "seed", "--steps", "2", "--size", "48", "-o", str(out),
    ])  # fmt: skip
    assert rc == 0 and out.is_file()
    assert load_image(out).shape[1:] == load_image(photo, max_side=48).shape[1:]
    err = capsys.readouterr().err
    assert "vgg19" in err and "original" in err and "mean128" in err and "init mix" in err
