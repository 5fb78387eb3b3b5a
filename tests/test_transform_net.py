import pytest
import torch
import torch.nn.functional as F
from conftest import assert_fast_form_is_the_same_function

from stylenet.files.images import load_image
from stylenet.nets.transform_net import RGBConv, TransformNet, UpsampleConv, cel_stage


@pytest.mark.parametrize("size", [(256, 256), (250, 333), (17, 9), (64, 100)])
def test_output_has_the_input_size_and_range(size):
    torch.manual_seed(0)
    net = TransformNet().eval()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert 0 <= y.min() and y.max() <= 1


def test_architecture_is_the_papers():
    net = TransformNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs[:3]] == [9, 3, 3]
    assert [c.out_channels for c in convs[:3]] == [32, 64, 128]
    assert [c.stride[0] for c in convs[:3]] == [1, 2, 2]
    assert convs[-1].kernel_size == (9, 9) and convs[-1].out_channels == 3
    assert sum(isinstance(m, torch.nn.Upsample) for m in net.modules()) == 2
    assert len(convs) == 3 + 2 * 5 + 2 + 1  # five residual blocks of two convs
    assert all(
        isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules() if "Norm" in type(m).__name__
    )


def test_a_deeper_net_starts_as_the_shallower_one_and_its_new_blocks_learn():
    """load_shallower: the trained blocks keep their places, the upsampling after them moves on,
    and the extra blocks start as the identity; one step then changes the new blocks too."""
    torch.manual_seed(0)
    small, deep = TransformNet(num_residual=2), TransformNet(num_residual=4)
    deep.load_shallower(small.state_dict(), 2)
    x = torch.rand(2, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(deep.eval()(x), small.eval()(x))
    new = deep.net[5].body[-1]  # the last added block's last norm
    assert torch.equal(new.weight, torch.zeros(128)) and torch.equal(new.bias, torch.zeros(128))
    deep.train()(x).mean().backward()
    assert new.weight.grad.abs().sum() > 0 and new.bias.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="more blocks"):
        small.load_shallower(deep.state_dict(), 4)


@pytest.mark.parametrize("size", [(16, 20), (10, 6)])
def test_training_upsampling_as_phase_convolutions_is_the_same_function(size):
    """In training mode UpsampleConv runs as one 2x2 phase convolution; its output and the
    gradients of its input and weights match the modules run in order (upsample, reflection pad,
    3x3 conv, norm, ReLU). (The conv's bias, before a norm, has none.)"""
    torch.manual_seed(0)
    x = torch.rand(2, 8, *size, requires_grad=True)
    y = assert_fast_form_is_the_same_function(UpsampleConv(8, 4), x, skip=("1.1.bias",))
    assert y.shape == (2, 4, 2 * size[0], 2 * size[1])


def test_training_last_conv_on_pixel_blocks_is_the_same_function():
    """In training mode the last conv to RGB runs on 2x2 pixel blocks; its output and the
    gradients of its input and weights match the layers run in order."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 12, 10, requires_grad=True)
    assert assert_fast_form_is_the_same_function(RGBConv(8), x).shape == (2, 3, 12, 10)


def test_linear_output_keeps_the_gradient_of_saturated_pixels():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    for output in ("sigmoid", "linear"):
        net = TransformNet(output=output)
        with torch.no_grad():  # push every pixel far past white
            last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            last.bias.fill_(20.0)
        y = net(x)
        with torch.no_grad():
            shown = net.eval()(x)
        assert torch.allclose(shown, torch.ones_like(y), atol=1e-6)  # white either way
        y.sum().backward()
        grad = last.bias.grad.abs().max()
        if output == "sigmoid":
            assert grad < 1e-3  # saturated: no way back
        else:
            assert grad > 1.0  # linear keeps the gradient (and eval mode clips)


def test_unknown_output_is_refused():
    with pytest.raises(ValueError, match="output='tanh'"):
        TransformNet(output="tanh")


def test_residual_output_starts_at_the_photo_and_keeps_its_colours():
    """z = 0 returns the photo exactly (up to the logit clamp); a fresh net starts close to it,
    while a sigmoid net starts grey."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 40, 52) * 0.9 + 0.05
    net = TransformNet(output="residual").eval()
    last = net.net[-1][1]
    with torch.no_grad():
        assert (net(x) - x).abs().mean() < 0.05
        assert (TransformNet().eval()(x) - x).abs().mean() > 0.1
        last.weight.zero_()
        assert torch.allclose(net(x), x, atol=1e-5)


def test_photo_colors_keep_the_photos_chrominance():
    from stylenet.ops.preserve_color import rgb_to_yuv

    torch.manual_seed(0)
    x = torch.rand(1, 3, 30, 41) * 0.5 + 0.25  # mid-tones: no clamping of the recombined pixels
    net = TransformNet(photo_colors=True).eval()
    same = TransformNet().eval()
    same.load_state_dict(net.state_dict())
    with torch.no_grad():
        y, plain = net(x), same(x)
    yuv, photo = rgb_to_yuv(y), rgb_to_yuv(x)
    inside = ((y > 0) & (y < 1)).all(1, keepdim=True).expand_as(yuv[:, 1:])
    assert inside.float().mean() > 0.9
    assert torch.allclose(yuv[:, 1:][inside], photo[:, 1:][inside], atol=1e-5)
    assert torch.allclose(yuv[:, :1], rgb_to_yuv(plain)[:, :1], atol=1e-2)  # luminance: the net's


def test_cel_shades_the_output_in_eval_mode_only():
    """cel=True ends the eval-mode net with stylenet.ops.cartoon's cel shading; in training mode the
    output is the plain net's."""
    from stylenet.ops.cartoon import cartoon

    torch.manual_seed(0)
    x = torch.rand(1, 3, 30, 41)
    net = TransformNet(cel=True).eval()
    plain = TransformNet().eval()
    plain.load_state_dict(net.state_dict())
    with torch.no_grad():
        shaded = net(x)
        assert torch.allclose(shaded, cel_stage(plain(x), 1), atol=1e-6)
        unsampled = cartoon(plain(x), line_strength=0.8, line_tau=0.96, line_pass=3)
        assert torch.allclose(cel_stage(plain(x), 1, supersample=False), unsampled, atol=1e-6)
        assert (shaded - plain(x)).abs().mean() > 0.01
        assert torch.equal(net.train()(x), plain.train()(x))


def test_supersampled_cel_stage_follows_a_subpixel_move_smoothly(content_dir):
    """A photo moved by half a pixel: the supersampled cel stage's output moves with it (the first
    output moved likewise matches the second), the unsupersampled one's lines and steps flip
    whole pixels."""

    def shifted(t: torch.Tensor, half: bool) -> torch.Tensor:  # columns 0.. or 0.5.., one less
        big = F.interpolate(t, scale_factor=2, mode="bilinear")
        return F.avg_pool2d(big[..., 1:-1] if half else big[..., :-2], 2)

    photo = load_image(content_dir / "kodak_kodim21_lighthouse.png", max_side=160)[None]
    a, b = shifted(photo, False), shifted(photo, True)
    error = {}
    for ss in (False, True):
        ya, yb = cel_stage(a, 1, supersample=ss), cel_stage(b, 1, supersample=ss)
        error[ss] = (shifted(ya, True) - shifted(yb, False))[..., 4:-4].abs().mean().item()
    assert error[True] < 0.75 * error[False], error
