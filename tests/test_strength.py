"""Style strength (--strength) and colour preservation (--preserve-color) in infer.py."""

from __future__ import annotations

import pytest
import torch

from stylenet import infer
from stylenet.files.images import load_image, save_image
from stylenet.nets.transform_net import TransformNet
from stylenet.ops.preserve_color import blend, rgb_to_yuv
from stylenet.stylize.checkpoint import save_model


def test_blend_end_points_and_midpoint():
    photo, sty = torch.rand(3, 8, 8), torch.rand(3, 8, 8)
    assert torch.equal(blend(photo, sty, 0.0), photo)
    assert torch.equal(blend(photo, sty, 1.0), sty)
    assert torch.allclose(blend(photo, sty, 0.5), (photo + sty) / 2)
    with pytest.raises(ValueError):
        blend(photo, sty, 1.5)


@pytest.fixture
def setup(tmp_path, content_dir):
    torch.manual_seed(0)
    net = TransformNet(8, 1)
    with torch.no_grad():  # a visibly non-identity "style": the net's last conv drives colours
        net.net[-1][1].bias.copy_(torch.tensor([2.0, -1.0, 0.5]))
    ckpt = save_model(tmp_path / "tiny.ckpt", net, {"style": "tiny"})
    photo = load_image(content_dir / "kodak_kodim14_rafting.png", max_side=48)
    src = save_image(photo, tmp_path / "in" / "photo.png")
    return ckpt, src, tmp_path


def run(setup, *extra: str, out: str = "out") -> torch.Tensor:
    ckpt, src, tmp = setup
    rc = infer.main(
        [str(src), "--ckpt", str(ckpt), "-o", str(tmp / out), "--device", "cpu", *extra]
    )
    assert rc == 0
    return load_image(tmp / out / "photo_tiny.png")


def test_strength_zero_is_the_photo_and_one_the_default(setup):
    photo = load_image(setup[1])
    full = run(setup, out="default")
    assert torch.equal(run(setup, "--strength", "1", out="one"), full)
    assert (run(setup, "--strength", "0", out="zero") - photo).abs().max() <= 1 / 255 + 1e-6
    half = run(setup, "--strength", "0.5", out="half")
    assert (half - (photo + full) / 2).abs().max() <= 1.5 / 255
    assert (full - photo).abs().mean() > 0.1  # the tiny model does change the photo


@pytest.mark.parametrize("bad", ["1.5", "-0.1", "x"])
def test_strength_out_of_range_is_refused(setup, bad, capsys):
    ckpt, src, tmp = setup
    with pytest.raises(SystemExit) as e:
        infer.main([str(src), "--ckpt", str(ckpt), "--strength", bad])
    assert e.value.code == 2
    assert "strength" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["luminance", "histogram"])
def test_preserve_color_brings_back_the_photo_colours(setup, method):
    photo = load_image(setup[1])
    plain = run(setup, out="plain")
    kept = run(setup, "--preserve-color", method, out=method)

    def chroma_error(img):
        return (rgb_to_yuv(img)[1:].mean((1, 2)) - rgb_to_yuv(photo)[1:].mean((1, 2))).abs().max()

    assert chroma_error(kept) < 0.02 < chroma_error(plain)


def test_preserve_color_default_is_luminance(setup):
    assert torch.equal(
        run(setup, "--preserve-color", out="bare"),
        run(setup, "--preserve-color", "luminance", out="named"),
    )
