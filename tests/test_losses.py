"""Losses checked by hand on tiny tensors."""

import pytest
import torch

from stylenet.losses.terms import content_loss, gram, style_loss, tv_loss


def test_gram_of_a_known_tensor():
    # C=2, H=1, W=2: rows [1, 2] and [3, 4] -> [[5, 11], [11, 25]] / (2*1*2)
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.allclose(gram(f), expected)


def test_gram_is_float32_even_for_bf16_features():
    f = torch.randn(2, 3, 4, 5).bfloat16()
    g = gram(f)
    assert g.dtype == torch.float32 and g.shape == (2, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram(f).dtype == torch.float32


def test_gram_gradient_matches_the_plain_formula_in_both_layouts():
    torch.manual_seed(0)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 5, 6, 7).contiguous(memory_format=layout).requires_grad_()
        weights = torch.randn(2, 5, 5)
        (gram(x) * weights).sum().backward()
        ref = x.detach().clone().requires_grad_()
        f = ref.reshape(2, 5, 42)
        ((f @ f.transpose(1, 2) / (5 * 42)) * weights).sum().backward()
        assert torch.allclose(x.grad, ref.grad, rtol=1e-5, atol=1e-6)


def test_gram_gradient_of_bf16_features_is_the_float32_one_rounded():
    """The bf16 backward (float32 inside on a CPU without native bf16) gives bf16 gradients
    within bf16 rounding of the float32 formula's."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16).bfloat16().requires_grad_()
    weights = torch.randn(2, 8, 8)
    (gram(x) * weights).sum().backward()
    ref = x.detach().float().requires_grad_()
    (gram(ref) * weights).sum().backward()
    assert x.grad.dtype == torch.bfloat16
    assert torch.allclose(x.grad.float(), ref.grad, rtol=2e-2, atol=1e-4)


def test_losses_vanish_for_equal_inputs_and_not_otherwise():
    a = {"relu2_2": torch.randn(2, 4, 6, 6)}
    b = {"relu2_2": a["relu2_2"] + 1.0}
    assert content_loss(a, a) == 0
    assert torch.isclose(content_loss(b, a), torch.tensor(1.0))
    targets = {k: gram(v)[:1] for k, v in a.items()}
    same = {"relu2_2": a["relu2_2"][:1].expand(2, -1, -1, -1)}
    assert style_loss(same, targets) == 0
    assert style_loss(b, targets) > 0


def test_total_variation_by_hand():
    assert tv_loss(torch.full((1, 3, 5, 7), 0.3)) == 0
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 3, 4)  # +1 per column, none per row
    assert torch.isclose(tv_loss(ramp), torch.tensor(1.0))


def test_color_loss_sees_coarse_colour_only():
    from stylenet.losses.terms import color_loss
    from stylenet.ops.preserve_color import rgb_to_yuv, yuv_to_rgb

    torch.manual_seed(0)
    photo = torch.rand(2, 3, 32, 32) * 0.5 + 0.25
    assert color_loss(photo, photo).item() == 0.0
    brighter = photo + 0.1  # the same shift on R, G and B: luminance only
    assert color_loss(brighter, photo).item() < 1e-10
    yuv = rgb_to_yuv(photo)
    yuv[:, 1] += 0.05  # a drift of U, as a green or blue cast
    assert color_loss(yuv_to_rgb(yuv), photo).item() == pytest.approx(0.05**2 / 2, rel=1e-3)
    noise = torch.randn(2, 3, 32, 32).sign() * 0.1  # +-0.1 per pixel: averaged away in 4x4 blocks
    assert color_loss(photo + noise, photo).item() < color_loss(yuv_to_rgb(yuv), photo).item()
