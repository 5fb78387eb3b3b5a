"""The Matting Laplacian (stylenet.ops.matting) and `stylenet.optimize --photorealistic`."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from stylenet import optimize
from stylenet.files.images import load_image
from stylenet.losses import optimization
from stylenet.losses.objective import StyleObjective
from stylenet.ops.matting import matting_laplacian, photorealism_loss, to_torch


@pytest.fixture(scope="module")
def photo(content_dir) -> np.ndarray:
    """A real photo, small: (H, W, 3) float64 in [0, 1]."""
    img = load_image(content_dir / "kodak_kodim21_lighthouse.png", max_side=40)
    return img.permute(1, 2, 0).double().numpy()


def per_window_laplacian(img: np.ndarray, eps: float) -> np.ndarray:
    """Levin et al.'s formula with a loop over 3x3 windows (dense; for tiny images)."""
    h, w, _ = img.shape
    lap = np.zeros((h * w, h * w))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            idx = [(y + dy) * w + x + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            c = img.reshape(-1, 3)[idx]
            d = c - c.mean(0)
            inv = np.linalg.inv(d.T @ d / 9 + eps / 9 * np.eye(3))
            lap[np.ix_(idx, idx)] += np.eye(9) - (1 + d @ inv @ d.T) / 9
    return lap


def test_matches_the_per_window_formula():
    img = np.random.default_rng(0).random((6, 7, 3))
    np.testing.assert_allclose(
        matting_laplacian(img, eps=1e-5).toarray(), per_window_laplacian(img, 1e-5), atol=1e-9
    )


def test_constant_image_maps_constants_to_zero_and_is_symmetric():
    lap = matting_laplacian(np.full((9, 12, 3), 0.3), eps=1e-7)
    assert lap.shape == (108, 108)
    assert np.abs(lap @ np.ones(108)).max() < 1e-9
    assert abs(lap - lap.T).max() < 1e-12
    assert lap.diagonal().max() > 0.5  # not the zero matrix: a non-constant V costs something
    v = np.random.default_rng(1).random(108)
    assert v @ lap @ v > 1e-3


def test_real_photo_laplacian_is_symmetric_psd_and_spares_local_affine_recolourings(photo):
    n = photo.shape[0] * photo.shape[1]
    lap = matting_laplacian(photo)
    assert np.abs(lap @ np.ones(n)).max() < 1e-7
    assert abs(lap - lap.T).max() < 1e-6 * abs(lap).max()
    x = np.random.default_rng(2).standard_normal((n, 20))
    quad = (x * (lap @ x)).sum(0) / (x * x).sum(0)
    assert quad.min() > -1e-9, quad.min()  # x^T L x >= 0 up to rounding
    assert np.linalg.eigvalsh(lap.toarray()).min() > -1e-6
    # a global affine map of the colours (a colour grade) is nearly free, noise is not
    c = photo.reshape(n, 3)
    graded = c @ np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.3, 0.6]]) + 0.05
    noisy = c + 0.02 * np.random.default_rng(3).standard_normal(c.shape)
    per_pixel = [np.einsum("nc,nc->", v, lap @ v) / n for v in (graded, noisy)]
    assert per_pixel[0] < 1e-4 and per_pixel[1] > 50 * per_pixel[0], per_pixel


def test_torch_loss_and_gradient_match_the_sparse_matrix(photo):
    lap = matting_laplacian(photo)
    h, w, _ = photo.shape
    y = torch.rand(1, 3, h, w, dtype=torch.float32, requires_grad=True)
    loss = photorealism_loss(y, to_torch(lap))
    loss.backward()
    v = y.detach()[0].reshape(3, -1).t().double().numpy()
    lv = lap @ v
    assert loss.item() == pytest.approx((v * lv).sum() / (h * w), rel=1e-4)
    grad = y.grad[0].reshape(3, -1).t().double().numpy()
    np.testing.assert_allclose(grad, 2 * lv / (h * w), rtol=1e-4, atol=1e-7)


@pytest.fixture(scope="module")
def images(content_dir):
    photo = load_image(content_dir / "kodak_kodim21_lighthouse.png", max_side=48)[None]
    ref = load_image(content_dir / "plasma_eveningglow_boats.jpg", max_side=48)
    return photo, ref


def test_photorealism_term_keeps_the_output_a_local_recolouring(images):
    """Same objective and L-BFGS with and without the term (random VGG19 weights, for speed)."""
    photo, ref = images
    obj = optimization.preset_objective("luan", photo, ref, vgg_weights="random")
    plain, _ = optimization.run(obj, photo, 15)
    real = optimization.Photorealistic(obj, photo, optimization.PHOTO_WEIGHT)
    out, hist = optimization.run(real, photo, 15)
    assert hist[-1]["loss"] < 0.75 * hist[0]["loss"], [h["loss"] for h in hist]  # 0.62 seen
    style = [h["style_loss_normalized"] for h in hist]
    assert style[-1] < 0.6 * style[0], style  # the style still moves (0.51 seen)
    with torch.no_grad():
        plain_photo = photorealism_loss(plain, real.laplacian).item()
    # 2e-5 against 4e-2 seen: the plain result is no local recolouring of the photo
    assert hist[-1]["photo_loss"] < 0.01 * plain_photo, (hist[-1]["photo_loss"], plain_photo)
    # and the photorealism term falls from a noisy start
    _, noisy = optimization.run(real, photo, 10, init="mix")
    assert noisy[-1]["photo_loss"] < 0.01 * noisy[0]["photo_loss"]  # 0.28 -> 9e-5 seen


def test_cli_photorealistic_runs_and_reports_the_term(tmp_path, content_dir, capsys):
    out = tmp_path / "p.png"
    argv = [
        str(content_dir / "kodak_kodim21_lighthouse.png"),
        "--style", str(content_dir / "plasma_eveningglow_boats.jpg"),
        "--photorealistic", "--steps", "4", "--size", "40", "--vgg-weights", "random",
        "-o", str(out),
    ]  # fmt: skip
    assert optimize.main(argv) == 0 and out.is_file()
    captured = capsys.readouterr()
    assert "luan: vgg19" in captured.err and "photorealism weight" in captured.err
    found = re.search(
        r"photorealism [\d.e+-]+ .*total ([\d.e+-]+) \(from ([\d.e+-]+)\)", captured.out
    )
    total, start = float(found[1]), float(found[2])
    assert total < start
    assert load_image(out).shape[1:] == load_image(argv[0], max_side=40).shape[1:]


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--photo-weight", "10"], "needs --photorealistic"),
     (["--photorealistic", "--photo-weight", "-1"], "must be a finite number >= 0")],
)  # fmt: skip
def test_cli_photo_weight_errors(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        optimize.main(["p.jpg", "--style", "s.jpg", *extra])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_plain_luan_preset_has_no_photorealism_term(images):
    photo, ref = images
    obj = optimization.preset_objective("luan", photo, ref, vgg_weights="random")
    assert isinstance(obj, StyleObjective) and obj.normalize
    assert "photo_loss" not in obj(photo, obj.content_targets(photo))
