"""The cel-shading filter behind `anime`'s cartoon target, and the objective's cartoon term."""

from __future__ import annotations

import torch

from stylenet.files.images import load_image
from stylenet.losses.loss_net import LossNet
from stylenet.losses.objective import CARTOON, StyleObjective
from stylenet.ops.cartoon import bilateral, cartoon, edges, quantize


def step_image(size: int = 32) -> torch.Tensor:
    x = torch.full((1, 3, size, size), 0.2)
    x[..., size // 2 :] = 0.8
    return x


def test_bilateral_keeps_a_step_and_smooths_noise():
    torch.manual_seed(0)
    noisy = (step_image() + 0.03 * torch.randn(1, 3, 32, 32)).clamp(0, 1)
    out = bilateral(noisy, 3, 3.0, 0.1)
    left, right = out[..., :, 2:14], out[..., :, 18:30]
    assert left.std() < 0.5 * noisy[..., :, 2:14].std()  # noise reduced on each side
    assert right.mean() - left.mean() > 0.55  # the 0.6 step is kept
    assert (out[..., 16] - out[..., 15]).mean() > 0.5  # still sharp at the edge


def test_quantize_makes_flat_steps():
    y = torch.linspace(0, 1, 1001)
    q = quantize(y, levels=4, sharpness=1.5)
    assert len(torch.unique((q * 4).round())) == 5  # values gather at 0, 1/4, ..., 1
    assert torch.all(q[1:] >= q[:-1] - 1e-6)  # monotone: no inverted bands
    assert (q - (y * 4).round() / 4).abs().mean() < (y - (y * 4).round() / 4).abs().mean()


def test_dark_line_on_the_step_only():
    y = step_image()[:, :1]
    lines = edges(y, 1.0)
    assert lines[..., 15].max() < 0.2  # dark line on the dark side of the edge
    assert lines[..., 2:12].min() == 1 and lines[..., 20:30].min() == 1  # none on flat areas


def test_cartoon_of_a_photo_is_flatter_and_keeps_layout(content_dir):
    photo = load_image(content_dir / "kodak_kodim04_portrait.png", max_side=96)[None]
    out = cartoon(photo)
    assert out.shape == photo.shape and out.dtype == photo.dtype
    assert 0 <= out.min() and out.max() <= 1
    # flat regions: much smaller pixel-to-pixel differences away from lines
    grad = lambda x: (x[..., 1:] - x[..., :-1]).abs().median()  # noqa: E731
    assert grad(out) < 0.5 * grad(photo)
    # the layout stays: coarse averages close to the photo's
    coarse = torch.nn.functional.avg_pool2d
    assert (coarse(out, 8) - coarse(photo, 8)).abs().mean() < 0.08


def test_objective_cartoon_term_is_zero_at_the_target(content_dir, style_dir):
    photo = load_image(content_dir / "kodak_kodim14_rafting.png", max_side=48)[None]
    art = load_image(style_dir / "openclipart_landscape_river.png", max_side=48)
    obj = StyleObjective(
        LossNet(["relu2_2"], "random"),
        art,
        ["relu2_2"],
        ["relu2_2"],
        1.0,
        1.0,
        normalize=True,
        cartoon_weight=100.0,
    )
    targets = obj.content_targets(photo)
    assert torch.equal(targets[CARTOON], cartoon(photo))
    assert set(targets) >= {"relu2_2", f"{CARTOON}/relu2_2"}
    at_target, at_photo = obj(targets[CARTOON], targets), obj(photo, targets)
    assert at_target["cartoon_loss"] == 0
    assert at_photo["cartoon_loss"] > 0.05  # a relative error
    # the weighted term is part of the total
    gap = at_photo["loss"] - 100.0 * at_photo["cartoon_loss"]
    plain = StyleObjective(obj.loss_net, art, ["relu2_2"], ["relu2_2"], 1.0, 1.0, normalize=True)(
        photo, targets
    )
    assert torch.allclose(gap, plain["loss"], rtol=1e-5)


def test_a_photo_four_times_larger_gets_the_same_cel_look(content_dir):
    """The stage's pixel sizes grow with the photo (cel_scale): cel-shading a 4x larger copy and
    shrinking the result gives nearly the small photo's cel look; with fixed pixel sizes (scale
    1) it stays a photo with thin lines, much further from it."""
    import torch.nn.functional as F

    from stylenet.ops.cartoon import CEL_REFERENCE, cel_scale

    small = load_image(content_dir / "kodak_kodim21_lighthouse.png", max_side=384)[None]
    big = F.interpolate(small, scale_factor=4, mode="bicubic").clamp(0, 1)
    assert cel_scale(3000, 4000) == 6 and cel_scale(CEL_REFERENCE, 4000) == 1
    target = cartoon(small)

    def error(scale: int) -> float:
        shrunk = F.interpolate(cartoon(big, scale=scale), size=small.shape[-2:], antialias=True,
                               mode="bilinear")  # fmt: skip
        return float(F.mse_loss(shrunk, target))

    scaled, fixed = error(4), error(1)
    assert scaled < 0.6 * fixed, (scaled, fixed)
