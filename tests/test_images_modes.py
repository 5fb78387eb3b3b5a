"""Every awkward image file either loads as correct RGB or fails with ImageError naming it."""

from __future__ import annotations

import random

import numpy as np
import pytest
from imagecases import CASES, write_cases

from stylenet.files.images import ImageError, load_image, load_pil
from stylenet.training.data import resize_crop


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("cases"))


def rgb(cases, name):
    img = load_pil(cases[name])
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


@pytest.mark.parametrize("name", [n for n, v in CASES.items() if v == "ok"])
def test_usable_files_load_as_rgb_tensors(cases, name):
    x = load_image(cases[name])
    assert x.ndim == 3 and x.shape[0] == 3 and x.dtype.is_floating_point
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_mode_conversions_give_the_right_colours(cases):
    assert np.abs(rgb(cases, "cmyk.jpg")[35, 40] - (255, 0, 0)).max() <= 3
    assert (rgb(cases, "gray16.png") == 255).all()  # 16-bit white stays white
    assert np.abs(rgb(cases, "rgb16.png") - round(40000 / 65535 * 255)).max() <= 1
    pal = rgb(cases, "palette_transparent.png")
    assert tuple(pal[40, 10]) == (255, 0, 0) and tuple(pal[40, 70]) == (255, 255, 255)
    a = rgb(cases, "rgba.png")
    assert tuple(a[40, 10]) == (255, 0, 0) and tuple(a[40, 70]) == (255, 255, 255)
    assert tuple(rgb(cases, "la.png")[0, 0]) == (128, 128, 128)
    g = rgb(cases, "gray.png")
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()


def test_exif_orientation_is_applied(cases):
    a = rgb(cases, "exif_rot6.jpg")
    assert a.shape == (40, 20, 3)  # stored 40 wide x 20 high, shown 20 wide x 40 high
    assert a[5, 10, 0] > 200 and a[5, 10, 2] < 60  # red on top
    assert a[35, 10, 2] > 200 and a[35, 10, 0] < 60  # blue below


def test_tiny_image_is_scaled_up_to_the_crop(cases):
    img = resize_crop(load_pil(cases["tiny_10x10.png"]), 64, random.Random(0))
    assert img.size == (64, 64)
    assert tuple(np.asarray(img)[32, 32]) == (0, 200, 0)


def test_elongated_image_crops_before_resizing():
    from PIL import Image

    img = Image.new("RGB", (20000, 3), (9, 9, 9))  # would be 1.7 gigapixels if scaled first
    assert resize_crop(img, 256, random.Random(1)).size == (256, 256)
    assert resize_crop(img, 256, None).size == (256, 256)


@pytest.mark.parametrize(
    "name, words",
    [
        ("zero_byte.jpg", "empty file"),
        ("truncated.jpg", "truncated"),
        ("text_named.jpg", "not an image"),
        ("bomb_header.png", "decompression bomb"),
        ("bomb_100mp.png", "decompression bomb"),
    ],
)
def test_bad_files_raise_one_clear_error(cases, name, words):
    with pytest.raises(ImageError) as e:
        load_pil(cases[name])
    msg = str(e.value)
    assert name in msg and words in msg and "\n" not in msg


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_pil(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        load_pil(tmp_path)
