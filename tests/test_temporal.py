"""The temporal loss: known motions, exact warps, and a net that learns to follow them."""

from __future__ import annotations

import torch

from stylenet.losses.temporal import Motion, moved_pair, random_affine, temporal_loss, warp
from stylenet.nets.transform_net import TransformNet


def test_identity_motion_changes_nothing_and_sees_everything():
    x = torch.rand(2, 3, 16, 20)
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3)
    warped, mask = warp(x, theta)
    assert torch.allclose(warped, x, atol=1e-5) and bool((mask == 1).all())


def test_a_shift_moves_the_picture_and_masks_what_came_from_outside():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 3, 3] = 1.0
    theta = torch.tensor([[[1.0, 0, 2 / 8], [0, 1.0, 0]]])  # sample one pixel to the right
    warped, mask = warp(x, theta)
    assert warped[0, 0, 3, 2] == 1.0 and warped.sum() == 1.0
    assert bool((mask[..., :7] == 1).all()) and bool((mask[..., 7] == 0).all())


def test_motions_stay_within_their_bounds_and_repeat_with_a_seed():
    m = Motion(shift=0.05, zoom=0.1, rotate=0.0)
    theta = random_affine(500, m, generator=torch.Generator().manual_seed(1))
    assert theta[:, :, 2].abs().max() <= 2 * 0.05 + 1e-6
    assert ((theta[:, 0, 0] - 1).abs().max() - 0.1).abs() < 0.01  # the zoom range is used
    x = torch.rand(3, 3, 16, 16)
    a = moved_pair(x, m, torch.Generator().manual_seed(2))
    b = moved_pair(x, m, torch.Generator().manual_seed(2))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_the_loss_tells_a_picture_that_moves_along_from_one_pinned_to_the_frame():
    photos = torch.rand(4, 3, 32, 32)
    moved, theta, mask = moved_pair(photos, Motion(noise=0.0, brightness=0.0))
    pattern = torch.rand(1, 3, 32, 32)  # texture fixed in the frame: what flicker looks like
    follows = temporal_loss(photos, moved, theta, mask)
    pinned = temporal_loss(photos + pattern, moved + pattern, theta, mask)
    assert follows < 1e-3 < pinned


def test_a_net_trained_on_the_temporal_loss_alone_learns_to_follow_the_motion():
    torch.manual_seed(0)
    net = TransformNet(8, 1)
    photos = torch.rand(4, 3, 32, 32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)

    def loss() -> torch.Tensor:
        moved, theta, mask = moved_pair(photos, Motion(), gen)
        return temporal_loss(net(photos), net(moved), theta, mask)

    with torch.no_grad():
        first = sum(loss().item() for _ in range(4)) / 4
    for _ in range(40):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        last = sum(loss().item() for _ in range(4)) / 4
    assert last < 0.5 * first


def test_a_cel_net_is_held_steady_after_its_cel_stage():
    """The fixed cel stage (skipped in training mode) draws most of anime's flicker: the temporal
    term of a cel net compares the pictures after it, and its gradient reaches the net."""
    import pytest

    from stylenet.losses import temporal
    from stylenet.losses.loss_net import LossNet
    from stylenet.nets.transform_net import finish
    from stylenet.training.johnson_module import StyleTransferModule

    with pytest.warns(UserWarning, match="RANDOM"):
        loss_net = LossNet(["relu1_2", "relu2_2"], weights="random")
    torch.manual_seed(0)
    module = StyleTransferModule(
        torch.rand(3, 32, 32), loss_net, content_layers=["relu2_2"], style_layers=["relu1_2"],
        channels=8, num_residual=1, cel=True, temporal_weight=1.0, channels_last=False,
    )  # fmt: skip
    module.train()
    photos = torch.rand(2, 3, 32, 32)
    y = module.net(photos)
    parts = {"loss": torch.zeros(())}
    got = module.with_temporal(photos, y, parts, torch.Generator().manual_seed(3))["temporal_loss"]

    def after_cel(x: torch.Tensor) -> torch.Tensor:
        return finish(module.net(x), x, False, True)

    want = temporal.with_temporal(
        parts, photos, finish(y, photos, False, True), after_cel, 1.0, module.motion,
        torch.Generator().manual_seed(3),
    )["temporal_loss"]  # fmt: skip
    before_cel = temporal.with_temporal(
        parts, photos, y, module.net, 1.0, module.motion, torch.Generator().manual_seed(3)
    )["temporal_loss"]
    assert torch.allclose(got, want) and not torch.allclose(got, before_cel)
    got.backward()
    assert module.net.net[0][1].weight.grad.abs().sum() > 0


def test_a_cin_style_with_the_cel_stage_is_held_steady_after_it():
    """The multi-style module compares a cel style after the cel stage too, and only that style."""
    import functools

    import pytest

    from stylenet.losses import temporal
    from stylenet.losses.loss_net import LossNet
    from stylenet.nets.cin import CINNet
    from stylenet.nets.transform_net import finish
    from stylenet.training.multistyle_module import MultiStyleModule

    with pytest.warns(UserWarning, match="RANDOM"):
        loss_net = LossNet(["relu1_2", "relu2_2"], weights="random")
    torch.manual_seed(0)
    net = CINNet(["cel", "paint"], channels=8, num_residual=1, cel=["cel"])
    settings = {s: {"temporal_weight": 1.0} for s in net.styles}
    images = {s: torch.rand(3, 32, 32) for s in net.styles}
    module = MultiStyleModule(
        net, images, settings, loss_net, content_layers=["relu2_2"], style_layers=["relu1_2"],
        channels_last=False,
    )  # fmt: skip
    module.train()
    photos = torch.rand(2, 3, 32, 32)
    parts = {"loss": torch.zeros(())}

    def term(style: str, y, forward) -> torch.Tensor:
        gen = torch.Generator().manual_seed(3)
        return temporal.with_temporal(parts, photos, y, forward, 1.0, module.motion, gen)[
            "temporal_loss"
        ]

    for style, cel in (("cel", True), ("paint", False)):
        forward = functools.partial(net, style=style)
        y = forward(photos)
        got = module.with_temporal(photos, y, parts, style, torch.Generator().manual_seed(3))
        after = term(style, finish(y, photos, False, True),
                     lambda x, f=forward: finish(f(x), x, False, True))  # fmt: skip
        before = term(style, y, forward)
        want, other = (after, before) if cel else (before, after)
        assert torch.allclose(got["temporal_loss"], want), style
        assert not torch.allclose(got["temporal_loss"], other), style
    got["temporal_loss"].backward()
    assert net.body.net[0][1].weight.grad.abs().sum() > 0
