"""Strip-wise inference equals the untiled forward pass: no seams, bounded memory."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import psnr

from stylenet.files.images import load_image
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize.strips import _padded_strip, _replicated_strip, _rows, stylize_strips


def styled_net(
    seed: int = 0, output: str = "sigmoid", photo_colors: bool = False, cel: bool = False
) -> TransformNet:
    """A random net with varied instance-norm scales, so normalisation matters everywhere."""
    torch.manual_seed(seed)
    net = TransformNet(output=output, photo_colors=photo_colors, cel=cel).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return net


@pytest.mark.parametrize("rows", [8, 13, None])
def test_strips_equal_untiled_in_fp32(rows):
    net = styled_net()
    x = torch.rand(2, 3, 70, 93)  # sides not multiples of 4, batch of two
    with torch.no_grad():
        ref = net(x)
    out = stylize_strips(net, x, torch.float32, rows)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert psnr(out, ref) > 100
    assert not x.is_contiguous(memory_format=torch.channels_last)  # input left as it was


@pytest.mark.parametrize("photo_colors, cel", [(False, False), (True, False), (True, True)])
def test_strips_keep_a_residual_output(photo_colors, cel):
    """A model.output=residual net adds to the photo's logits in strips as in its forward, and
    photo_colors take the photo's U and V there too, and cel shades the whole output."""
    net = styled_net(output="residual", photo_colors=photo_colors, cel=cel)
    x = torch.rand(1, 3, 42, 50)  # sides not multiples of 4: the photo is padded like the features
    with torch.no_grad():
        ref = net(x)
    assert psnr(stylize_strips(net, x, torch.float32, 8), ref) > 100


def test_strips_follow_changed_weights():
    """Weights derived for the strips (cast, upsampling phases, pixel blocks) are kept between
    calls, and rebuilt when the net's parameters change in place or are replaced."""
    net, x = styled_net(), torch.rand(1, 3, 40, 52)
    stylize_strips(net, x, torch.float32, 8)
    net.load_state_dict(styled_net(seed=1).state_dict())  # in place
    with torch.no_grad():
        assert psnr(stylize_strips(net, x, torch.float32, 8), net(x)) > 100
        up = net.net[-2][1][1]
        up.weight = torch.nn.Parameter(torch.randn_like(up.weight) * 0.1)  # a new tensor
        net.net[-1][1].bias.add_(0.5)  # the last conv's bias alone, in place
        assert psnr(stylize_strips(net, x, torch.float32, 8), net(x)) > 100


def test_strips_keep_a_linear_output():
    """A model.output=linear net is clipped, not squashed by a sigmoid, in strips too."""
    net = styled_net(output="linear")
    with torch.no_grad():
        net.net[-1][1].bias.fill_(0.4)  # push some pixels past 1, where the clip shows
        x = torch.rand(1, 3, 40, 52)
        ref = net(x)
    assert (ref == 1).any()
    assert psnr(stylize_strips(net, x, torch.float32, 8), ref) > 100


def test_strip_height_follows_width():
    assert _rows(None, 32 * 3840) < _rows(None, 32 * 256)
    assert _rows(None, 10**9) == 8 and _rows(5, 10**9) == 5


@pytest.mark.slow
def test_strips_vs_untiled_on_a_1024_photo(content_dir):
    photo = load_image(next(iter(sorted(content_dir.glob("kodak_*.png")))))
    x = F.interpolate(photo[None], size=(1024, 1024), mode="bilinear", antialias=True)
    net = styled_net(1)
    with torch.no_grad():
        ref = net(x)
    # many strips per layer (small strips), bf16 activations: still no visible seams
    assert psnr(stylize_strips(net, x, torch.bfloat16, rows=40), ref) >= 40
    assert psnr(stylize_strips(net, x, torch.float32, rows=40), ref) >= 60


def test_every_strip_is_the_rows_of_the_padded_image():
    """Each strip, at the edges too, holds exactly the rows of F.pad's reflected or zero-padded
    image, and the upsampling's strips those of the edge-replicated one."""
    for h in (5, 9, 17):
        x = torch.randn(1, 3, h, 11)
        xv = x.permute(0, 2, 3, 1)
        for pad in (0, 1, 4):
            for mode, fmode in (("reflect", "reflect"), ("zeros", "constant")):
                full = F.pad(x, (pad,) * 4, mode=fmode).permute(0, 2, 3, 1)
                for a in range(h + 2 * pad):
                    for b in range(a + 1, h + 2 * pad + 1):
                        strip = _padded_strip(xv, a, b, pad, torch.float32, mode)
                        assert torch.equal(strip, full[:, a:b]), (h, pad, mode, a, b)
        edge = F.pad(x, (1,) * 4, mode="replicate").permute(0, 2, 3, 1)
        for a in range(h):
            for b in range(a + 1, h + 1):
                assert torch.equal(_replicated_strip(xv, a, b, torch.float32), edge[:, a : b + 2])
