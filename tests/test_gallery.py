"""python -m stylenet.gallery: photos x styles in one JPEG within a size budget, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylenet import gallery
from stylenet.checkpoint import save_model
from stylenet.nets.transform_net import TransformNet

SIZE = 48  # tile side: layout is GAP + cols*(SIZE+GAP) wide, HEADER + rows*(SIZE+GAP) high


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models")
    out = {
        n: save_model(d / f"{n}.ckpt", TransformNet(8, 1), {"style": n}) for n in ("ink", "wave")
    }
    (d / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    out["broken"] = d / "broken.ckpt"
    return out


@pytest.fixture
def photos(tmp_path, content_dir) -> list[Path]:
    """Two small real photos, one landscape and one portrait (centre-cropped to squares)."""
    a, b = tmp_path / "lighthouse.png", tmp_path / "portrait.jpg"
    Image.open(content_dir / "kodak_kodim21_lighthouse.png").resize((96, 64)).save(a)
    Image.open(content_dir / "kodak_kodim04_portrait.png").resize((50, 75)).save(b)
    return [a, b]


def tile(img: Image.Image, col: int, row: int) -> np.ndarray:
    x, y = 4 + col * (SIZE + 4), 28 + row * (SIZE + 4)
    return np.asarray(img.convert("RGB").crop((x, y, x + SIZE, y + SIZE)), dtype=float)


def run(capsys, *argv) -> tuple[int, str, list[str]]:
    code = gallery.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def test_gallery_layout_size_budget_and_no_overwrite(models, photos, tmp_path, capsys):
    out = tmp_path / "docs" / "gallery.jpg"
    args = ["--ckpt", models["wave"], models["ink"], "--photos", *photos, "-o", out]
    code, stdout, err = run(capsys, *args, "--size", SIZE, "--max-kb", 8)
    assert code == 0 and err == [], err
    assert "[1/2] wave" in stdout and "[2/2] ink" in stdout and "wrote" in stdout
    img = Image.open(out)
    assert img.format == "JPEG"
    # 3 columns (photo, wave, ink) of 48 px tiles with 4 px gaps; a 28 px header and 2 rows
    assert img.size == gallery.canvas_size(2, 3, SIZE) == (4 + 3 * 52, 28 + 2 * 52)
    assert out.stat().st_size <= 8 * 1024
    # row 1: the centre square of the landscape photo, then its stylized versions
    photo = np.asarray(Image.open(photos[0]).convert("RGB").crop((16, 0, 80, 64)).resize((48, 48)))
    diff = [np.abs(tile(img, c, 0) - photo).mean() for c in range(3)]
    assert diff[0] < 8 and min(diff[1:]) > 3 * diff[0], diff
    header = np.asarray(img.convert("L").crop((0, 0, img.width, 28)))
    assert (header < 128).sum() > 50, "style names in the header row"

    before = out.read_bytes()
    code, _, err = run(capsys, *args, "--size", SIZE)
    assert code == 1 and err == [f"error: {out}: exists (pass --overwrite to replace it)"]
    assert out.read_bytes() == before
    code, _, err = run(capsys, *args, "--size", 2 * SIZE, "--overwrite")
    assert code == 0 and Image.open(out).size == gallery.canvas_size(2, 3, 2 * SIZE)


def test_quality_is_lowered_to_fit_and_an_impossible_budget_is_refused(models, photos, tmp_path):
    big = gallery.compose(
        [Image.open(photos[0]).convert("RGB").resize((200, 200))],
        [("wave", [Image.effect_noise((200, 200), 80).convert("RGB")])],
        200,
    )
    generous = gallery.encode_jpeg(big, 10**7)
    tight = gallery.encode_jpeg(big, len(generous[0]) // 2)
    assert generous[1] == 95 and tight is not None and tight[1] < 95
    assert len(tight[0]) <= len(generous[0]) // 2
    assert gallery.encode_jpeg(big, 1000) is None


def test_bad_checkpoint_and_missing_photo_are_reported_the_rest_is_done(
    models, photos, tmp_path, capsys
):
    out = tmp_path / "g.jpg"
    missing = tmp_path / "nope.jpg"
    code, stdout, err = run(
        capsys,
        *("--ckpt", models["broken"], models["ink"]),
        *("--photos", photos[0], missing, photos[1]),
        *("-o", out, "--size", SIZE),
    )
    assert code == 1
    assert len(err) == 2 and err[0] == f"error: {missing}: no such file"
    assert err[1].startswith(f"error: {models['broken']}: not a readable checkpoint")
    assert "[2/2] ink" in stdout
    assert Image.open(out).size == gallery.canvas_size(2, 2, SIZE)  # photo + ink, 2 photos


def test_no_checkpoints_says_how_to_train_one(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setattr(gallery, "CHECKPOINT_DIR", tmp_path / "empty")
    code, _, err = run(capsys, "--photos", *photos, "-o", tmp_path / "g.jpg")
    assert code == 2 and len(err) == 1
    assert "no checkpoints" in err[0] and "python train.py style=<name> loss=vgg19" in err[0]
    assert not (tmp_path / "g.jpg").exists()


def test_default_styles_come_in_a_fixed_order(tmp_path, monkeypatch):
    for name in ("zebra", "wave", "anime", "alpha", "starry_night", "shipwreck"):
        (tmp_path / f"{name}.ckpt").write_bytes(b"")
    (tmp_path / "anime.safetensors").write_bytes(b"")
    monkeypatch.setattr(gallery, "CHECKPOINT_DIR", tmp_path)
    names = [p.stem for p in gallery.default_checkpoints()]
    assert names == ["anime", "starry_night", "wave", "shipwreck", "alpha", "zebra"]
