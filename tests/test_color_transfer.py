"""Colour transfer (stylenet.ops.color_transfer) and `stylenet.filters --filter color-transfer`.

Tolerances: in Lab (L 0..100, a and b about -100..100) the Lab-space maps match the reference's
statistics to rounding (relative 1e-5); the RGB images they produce are clipped to sRGB's gamut,
which moves the means by up to 1.5 units and the standard deviations by up to 10% on these photos.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from stylenet.files.images import load_pil
from stylenet.filters import main, to_array
from stylenet.ops import color_transfer as ct

Q = np.linspace(0.05, 0.95, 19)


def small(path, side=128) -> np.ndarray:
    img = load_pil(path)
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    return to_array(img)


@pytest.fixture(scope="module")
def pair(content_dir):
    """A daylight landscape (Kodak's lighthouse) and an evening-glow photo as the reference."""
    return (
        small(content_dir / "kodak_kodim21_lighthouse.png"),
        small(content_dir / "plasma_eveningglow_boats.jpg"),
    )


def stats(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = ct.lab(img).reshape(-1, 3)
    return x.mean(0), x.std(0)


@pytest.mark.parametrize("method", ["reinhard", "mkl"])
def test_lab_maps_give_the_reference_means_and_deviations(pair, method):
    src, ref = (ct.lab(x) for x in pair)
    out = getattr(ct, method)(src, ref).reshape(-1, 3)
    r = ref.reshape(-1, 3)
    np.testing.assert_allclose(out.mean(0), r.mean(0), atol=1e-6)
    np.testing.assert_allclose(out.std(0), r.std(0), rtol=1e-5)
    if method == "mkl":  # the whole covariance, not only the diagonal
        np.testing.assert_allclose(np.cov(out.T), np.cov(r.T), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("method", ["reinhard", "mkl"])
def test_transfer_moves_lab_means_and_deviations_to_the_reference(pair, method):
    photo, ref = pair
    m_out, s_out = stats(ct.color_transfer(photo, ref, method))
    (m_ref, s_ref), (m_photo, _) = stats(ref), stats(photo)
    assert np.abs(m_photo - m_ref).max() > 10  # far apart before
    np.testing.assert_allclose(m_out, m_ref, atol=1.5)
    np.testing.assert_allclose(s_out, s_ref, rtol=0.1)


def test_histogram_matches_per_channel_quantiles(pair):
    photo, ref = pair
    lab_ref = ct.lab(ref).reshape(-1, 3)
    exact = ct.histogram(ct.lab(photo), ct.lab(ref)).reshape(-1, 3)
    want = np.quantile(lab_ref, Q, axis=0)
    assert np.abs(np.quantile(ct.lab(photo).reshape(-1, 3), Q, axis=0) - want).max() > 10
    np.testing.assert_allclose(np.quantile(exact, Q, axis=0), want, atol=0.5)
    out = ct.lab(ct.color_transfer(photo, ref, "histogram")).reshape(-1, 3)
    np.testing.assert_allclose(np.quantile(out, Q, axis=0), want, atol=6)  # after the gamut clip


@pytest.mark.parametrize("method", ct.TRANSFER_METHODS)
def test_grey_reference_keeps_the_luminance_structure(pair, method):
    photo, ref = pair
    grey = np.repeat(ct.lab(ref)[..., :1] / 100, 3, axis=2).astype(np.float32)  # R = G = B
    out = ct.color_transfer(photo, grey, method)
    l_out, l_photo = ct.lab(out)[..., 0].ravel(), ct.lab(photo)[..., 0].ravel()
    # histogram matching maps L monotonically (rank correlation); reinhard and mkl linearly
    assert spearmanr(l_out, l_photo).statistic > 0.99
    assert np.corrcoef(l_out, l_photo)[0, 1] > (0.9 if method == "histogram" else 0.99)
    assert np.abs(ct.lab(out)[..., 1:]).mean() < 1.5  # and the colour is gone: a grey photo


@pytest.mark.parametrize("method", ct.TRANSFER_METHODS)
def test_strength_zero_is_the_identity_and_half_is_halfway(pair, method):
    photo, ref = pair
    before = photo.copy()
    assert np.array_equal(ct.color_transfer(photo, ref, method, strength=0.0), photo)
    full = ct.color_transfer(photo, ref, method)
    half = ct.color_transfer(photo, ref, method, strength=0.5)
    np.testing.assert_allclose(half, (photo + full) / 2, atol=1e-6)
    assert full.dtype == np.float32 and full.shape == photo.shape
    assert 0 <= full.min() and full.max() <= 1 and np.abs(full - photo).mean() > 0.03
    assert np.array_equal(photo, before), "the input was changed in place"


def save(path, img):
    Image.fromarray(np.round(img * 255).astype(np.uint8)).save(path)


def test_cli_folder_with_a_corrupt_file(capsys, tmp_path, pair):
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    save(d / "lighthouse.png", pair[0])
    save(tmp_path / "ref.png", pair[1])
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    argv = [d, "--filter", "color-transfer", "--reference", tmp_path / "ref.png", "-o", out]
    code = main([str(a) for a in [*argv, "--method", "mkl", "--strength", "0.8"]])
    std, err = capsys.readouterr()
    assert code == 1 and std.count(" -> ") == 1
    assert [p.name for p in out.iterdir()] == ["lighthouse_color-transfer.png"]
    err = err.splitlines()
    assert len(err) == 2 and err[1] == "1 of 2 file(s) failed"
    assert err[0].startswith(f"error: {d / 'corrupt.jpg'}: unreadable or truncated image")
    got = to_array(Image.open(out / "lighthouse_color-transfer.png"))
    want = ct.color_transfer(to_array(Image.open(d / "lighthouse.png")), pair[1], "mkl", 0.8)
    assert np.abs(got - want).max() < 0.6 / 255  # the same, up to 8-bit rounding
    assert main([str(a) for a in argv]) == 1  # kept without --overwrite
    assert "exists (pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_cli_bad_reference_stops_before_any_photo(capsys, tmp_path, pair, case):
    save(tmp_path / "a.png", pair[0])
    ref = tmp_path / "ref.jpg"
    if case == "corrupt":
        ref.write_bytes(b"\xff\xd8\xff\xe0 not a JPEG")
    code = main([str(tmp_path / "a.png"), "--filter", "color-transfer", "--reference", str(ref)])
    std, err = capsys.readouterr()
    assert code == 2 and std == ""
    assert len(err.splitlines()) == 1 and err.startswith(f"error: --reference: {ref}: ")
    assert not list(tmp_path.glob("*color-transfer*"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--filter", "color-transfer"], "--filter color-transfer needs --reference"),
        (["--filter", "color-transfer", "--reference", "r.jpg", "--method", "canny"], "--method"),
        (["--filter", "color-transfer", "--reference", "r.jpg", "--strength", "1.5"], "<= 1"),
        (["--filter", "find-edges", "--method", "mkl"], "--method sobel / canny"),
        (["--filter", "emboss", "--reference", "r.jpg"], "--reference does not apply"),
    ],
)
def test_cli_bad_options_are_one_argparse_line(capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "a.png"), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
