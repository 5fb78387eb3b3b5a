"""Colour preservation (YUV luminance, histogram matching) and the colour-blind style loss."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from stylenet.files.images import load_image
from stylenet.losses.loss_net import LossNet
from stylenet.losses.objective import StyleObjective
from stylenet.ops.preserve_color import (
    luminance,
    match_histograms,
    preserve_color,
    rgb_to_yuv,
    transfer_luminance,
    yuv_to_rgb,
)


@pytest.fixture(scope="module")
def photo(content_dir) -> torch.Tensor:
    return load_image(content_dir / "kodak_kodim14_rafting.png", max_side=64)


@pytest.fixture(scope="module")
def art(style_dir) -> torch.Tensor:
    return load_image(style_dir / "great_wave_hokusai.jpg", max_side=64)


def test_yuv_round_trip(photo):
    assert torch.allclose(yuv_to_rgb(rgb_to_yuv(photo)), photo, atol=1e-5)
    gray = torch.full((3, 4, 4), 0.4)
    yuv = rgb_to_yuv(gray)
    assert torch.allclose(yuv[0], gray[0], atol=1e-5) and yuv[1:].abs().max() < 1e-5


def test_luminance_is_grey_and_input_untouched(photo):
    before = photo.clone()
    g = luminance(photo)
    assert g.shape == photo.shape and torch.equal(photo, before)
    assert torch.allclose(g[0], g[1]) and torch.allclose(g[1], g[2])


def test_luminance_transfer_keeps_photo_colours_and_stylized_brightness(photo):
    # a "stylized" image: strong blue tint and reversed brightness
    stylized = (1 - photo) * torch.tensor([0.3, 0.4, 1.0]).view(3, 1, 1)
    out = transfer_luminance(stylized, photo)
    inside = (out > 0.01) & (out < 0.99)
    mask = inside.all(0)  # pixels not clipped by the return to RGB
    assert mask.float().mean() > 0.5
    yuv_out, yuv_photo, yuv_sty = rgb_to_yuv(out), rgb_to_yuv(photo), rgb_to_yuv(stylized)
    assert torch.allclose(yuv_out[1:, mask], yuv_photo[1:, mask], atol=1e-4)  # photo's chroma
    assert torch.allclose(yuv_out[0, mask], yuv_sty[0, mask], atol=1e-4)  # stylized luminance
    # and the blue tint is gone: mean channel balance follows the photo
    assert (
        (out.mean((1, 2)) - photo.mean((1, 2))).abs().max()
        < 0.1
        < (stylized.mean((1, 2)) - photo.mean((1, 2))).abs().max()
    )


def test_histogram_matching_gives_the_photo_histogram(photo, art):
    stylized = art[:, : photo.shape[1], : photo.shape[2]]
    stylized = torch.nn.functional.interpolate(stylized[None], size=photo.shape[1:])[0]
    out = match_histograms(stylized, photo)
    for c in range(3):
        assert torch.allclose(out[c].flatten().sort().values, photo[c].flatten().sort().values)
        # rank order (the stylized structure) is kept where values were distinct
        a, b = stylized[c].flatten(), out[c].flatten()
        i, j = torch.randint(0, a.numel(), (2, 500), generator=torch.Generator().manual_seed(0))
        strict = a[i] < a[j]
        assert (b[i][strict] <= b[j][strict]).all()


def test_histogram_matching_different_sizes(photo, art):
    out = match_histograms(art, photo)
    assert out.shape == art.shape
    assert (out.mean((1, 2)) - photo.mean((1, 2))).abs().max() < 0.01


def test_preserve_color_rejects_unknown_method(photo):
    with pytest.raises(ValueError, match="unknown colour"):
        preserve_color(photo, photo, "lab")


def test_luminance_only_style_loss_is_colour_blind(photo, art):
    net = LossNet(["relu2_2", "relu1_2", "relu3_3"], weights="random")
    x = photo[None]
    yuv = rgb_to_yuv(x)
    recoloured = yuv_to_rgb(torch.cat([yuv[:, :1], yuv[:, 1:] * -1.5 + 0.05], 1))
    losses = {}
    for blind in (False, True):
        obj = StyleObjective(
            net, art, ["relu2_2"], ["relu1_2", "relu3_3"], style_luminance_only=blind
        )
        t = obj.content_targets(x)
        losses[blind] = [obj(y, t)["style_loss"].item() for y in (x, recoloured)]
    a, b = losses[True]
    assert a == pytest.approx(b, rel=1e-4)  # same luminance: same colour-blind style loss
    a, b = losses[False]
    assert abs(a - b) > 0.05 * a  # the ordinary style loss sees the colour change


@pytest.mark.slow
def test_train_with_luminance_only_style_loss(tmp_path):
    cmd = [
        sys.executable, "train.py", "loss.vgg_weights=random", "trainer=smoke",
        "trainer.max_steps=16", "trainer.log_every_n_steps=1", "trainer.val_check_interval=100",
        "data.image_size=64", "data.batch_size=2", "data.num_workers=0", "logger=csv",
        "loss.style_luminance_only=true", f"export_dir={tmp_path}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = torch.load(tmp_path / "anime.ckpt", weights_only=True)
    assert meta["training"]["style_luminance_only"] is True
    (metrics,) = (tmp_path / "run").rglob("metrics.csv")
    import csv

    rows = [r for r in csv.DictReader(metrics.open()) if r.get("train/loss")]
    losses = [float(r["train/loss"]) for r in rows]
    assert len(losses) >= 10
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.7 * first, losses
    json.dumps(meta["training"])
