"""Classic filters (stylenet.ops.classic) and their command line (python -m stylenet.filters)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import run_cli
from imagecases import exif_rot6
from PIL import Image

from stylenet.files.images import load_pil
from stylenet.filters import FILTERS, main, to_array
from stylenet.ops import classic as ops

CASES = [  # every filter and method, with options that make each one visibly work
    ("find-edges", {}),
    ("find-edges", {"method": "canny"}),
    ("contour", {}),
    ("emboss", {}),
    ("ripple", {}),
    ("bulge", {"center": (0.4, 0.6)}),
    ("bulge", {"amount": -0.7}),
    ("oil-paint", {}),
    ("oil-paint", {"radius": 2, "levels": 6}),
    ("cartoon", {"levels": 4, "lines": 0.5}),
]


@pytest.fixture(scope="module")
def photo(content_dir) -> np.ndarray:
    """A real photo at an odd, non-square size (171x256)."""
    img = load_pil(content_dir / "kodak_kodim04_portrait.png")
    img.thumbnail((256, 256), Image.Resampling.LANCZOS)
    return to_array(img)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=lambda c: str(c))
def test_filter_keeps_size_and_range_and_changes_the_photo(photo, name, kwargs):
    before = photo.copy()
    out = FILTERS[name](photo, **kwargs)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert np.abs(out - photo).mean() > 0.01, "the filter left the photo (almost) as it was"
    assert np.array_equal(photo, before), "the input was changed in place"


def step(vertical: bool) -> np.ndarray:
    """64x64: 0.2 before row/column 32, 0.8 from it on."""
    img = np.full((64, 64, 3), 0.2, np.float32)
    img[:, 32:] = 0.8
    return img if vertical else np.ascontiguousarray(img.transpose(1, 0, 2))


@pytest.mark.parametrize("method", ["sobel", "canny"])
@pytest.mark.parametrize("vertical", [True, False])
def test_find_edges_finds_a_step_where_it_is(method, vertical):
    out = ops.find_edges(step(vertical), method=method)[..., 0]
    profile = out.min(axis=0 if vertical else 1)  # darkest value per column (or row)
    dark = np.flatnonzero(profile < 0.5)
    assert dark.size and set(dark) <= {31, 32}, dark
    assert np.allclose(np.delete(out, [31, 32], axis=1 if vertical else 0), 1.0)
    if method == "canny":  # an unbroken line (skimage leaves the outermost pixels out)
        line = (out[1:-1, 31:33] if vertical else out[31:33, 1:-1].T) == 0
        assert line.any(axis=1).all()


def test_contour_draws_one_line_per_level():
    ramp = np.repeat(np.linspace(0, 1, 90, dtype=np.float32)[None, :, None], 20, 0).repeat(3, 2)
    columns = np.flatnonzero((ops.contour(ramp, levels=2)[..., 0] < 0.5).any(axis=0))
    assert list(columns) in ([29, 59], [29, 60], [30, 59], [30, 60]), columns  # at 1/3 and 2/3


def test_emboss_lights_the_side_that_faces_the_light():
    img = step(vertical=True)  # dark left, bright right: the edge is a cliff rising to the right
    flat, edge = (slice(10, 54), 10), (slice(10, 54), 31)
    from_left = ops.emboss(img, angle=180)[..., 0]
    from_right = ops.emboss(img, angle=0)[..., 0]
    assert np.allclose(from_left[flat], 0.5) and np.allclose(from_right[flat], 0.5)
    assert (from_left[edge] > 0.9).all() and (from_right[edge] < 0.1).all()


def test_zero_bulge_and_zero_ripple_are_the_identity(photo):
    assert np.array_equal(ops.bulge(photo, amount=0.0, center=(0.37, 0.81)), photo)
    assert np.array_equal(ops.ripple(photo, amplitude=0.0, wavelength=7.0), photo)


def test_bulge_moves_only_the_inside_of_its_disc(photo):
    h, w, _ = photo.shape
    out = ops.bulge(photo, amount=0.8)
    r = np.hypot(*np.mgrid[0:h, 0:w] - np.array([(h - 1) / 2, (w - 1) / 2])[:, None, None])
    outside = r > min(h, w) / 2 + 1
    assert np.array_equal(out[outside], photo[outside])
    assert np.abs(out[r < min(h, w) / 4] - photo[r < min(h, w) / 4]).mean() > 0.02


def test_oil_paint_matches_a_per_pixel_reference():
    rng = np.random.default_rng(0)
    img = rng.random((11, 14, 3), dtype=np.float32)
    radius, levels = 2, 5
    bins = np.minimum((ops.luma(img) * levels).astype(int), levels - 1)
    pad = ((radius, radius), (radius, radius))
    pb, pi = np.pad(bins, pad, mode="edge"), np.pad(img, pad + ((0, 0),), mode="edge")
    want = np.empty_like(img)
    for y in range(11):
        for x in range(14):
            b = pb[y : y + 2 * radius + 1, x : x + 2 * radius + 1]
            mode = np.bincount(b.ravel(), minlength=levels).argmax()
            want[y, x] = pi[y : y + 2 * radius + 1, x : x + 2 * radius + 1][b == mode].mean(0)
    np.testing.assert_allclose(ops.oil_paint(img, radius, levels), want, atol=1e-5)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--filter", "contour", "--levels", "-3"], "--levels"),
        (["--filter", "oil-paint", "--levels", "2.5"], "--levels"),
        (["--filter", "ripple", "--wavelength", "0"], "--wavelength"),
        (["--filter", "ripple", "--amplitude", "-1"], "--amplitude"),
        (["--filter", "bulge", "--amount", "1.5"], "--amount"),
        (["--filter", "bulge", "--center", "2,0.5"], "--center"),
        (["--filter", "bulge", "--center", "middle"], "--center"),
        (["--filter", "cartoon", "--lines", "nan"], "--lines"),
        (["--filter", "find-edges", "--method", "prewitt"], "--method"),
        (["--filter", "blur"], "--filter"),
        (["--filter", "ripple", "--levels", "4"], "--levels"),
        (["--filter", "emboss", "--radius", "3"], "--radius"),
    ],
)
def test_bad_option_values_are_one_line_errors(capsys, tmp_path, argv, option):
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "photo.jpg"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m stylenet.filters: error: ") and option in err[-1], err
    assert not list(tmp_path.iterdir())


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "stylenet.filters",
            "x.jpg",
            "--filter",
            "ripple",
            "--wavelength",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "argument --wavelength: 0 must be > 0" in run.stderr


@pytest.fixture
def folder(tmp_path, photo):
    """A real photo, an EXIF-rotated one, a corrupt JPEG and a text file without image suffix."""
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(np.round(photo * 255).astype(np.uint8)).save(d / "portrait.png")
    exif_rot6(d / "rotated.jpg")
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (d / "notes.txt").write_text("ignored inside folders")
    return d


def test_folder_with_a_corrupt_file(capsys, folder, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, main, folder, "--filter", "ripple", "--amplitude", "0", "-o", out_dir
    )
    assert code == 1
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "portrait_ripple.png",
        "rotated_ripple.jpg",
    ]
    assert out.count(" -> ") == 2
    assert len(err) == 2 and err[-1] == "1 of 3 file(s) failed"
    assert err[0].startswith(f"error: {folder / 'corrupt.jpg'}: unreadable or truncated image")
    portrait = Image.open(out_dir / "portrait_ripple.png")
    assert portrait.size == (171, 256)
    rotated = np.asarray(Image.open(out_dir / "rotated_ripple.jpg"))
    assert rotated.shape == (40, 20, 3)  # EXIF orientation applied: 20 wide, 40 high
    assert rotated[5, 10, 0] > 200 and rotated[35, 10, 2] > 200  # red on top, blue below


def test_existing_output_is_kept_without_overwrite(capsys, folder):
    src = folder / "portrait.png"
    assert run_cli(capsys, main, src, "--filter", "emboss")[0] == 0
    dst = folder / "portrait_emboss.png"
    dst.write_bytes(b"keep me")
    code, out, err = run_cli(capsys, main, src, "--filter", "emboss")
    assert code == 1 and out == ""
    assert err == [
        f"error: {src}: {dst}: exists (pass --overwrite to replace it)",
        "1 of 1 file(s) failed",
    ]
    assert dst.read_bytes() == b"keep me"
    code, out, _ = run_cli(capsys, main, src, "--filter", "emboss", "--overwrite")
    assert code == 0 and out.startswith(f"{src} -> {dst} (")
    assert Image.open(dst).size == (171, 256)
