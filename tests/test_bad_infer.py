"""infer.py: one line per failed file, the others still done, non-zero exit when any failed."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_cli, save_tiny
from imagecases import exif_rot6
from PIL import Image

from stylenet.infer import main, parse_args


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    save_tiny("johnson", d / "ink.ckpt")
    return save_tiny("johnson", d / "ink.safetensors")


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    Image.new("RGB", (48, 32), (200, 100, 50)).save(d / "a.png")
    Image.new("L", (30, 30), 90).save(d / "b.jpg")
    (d / "notes.txt").write_text("not an image, and not an image suffix: ignored in folders\n")
    (d / "fake.jpg").write_text("text in a .jpg")
    (d / "empty.png").write_bytes(b"")
    return d


def test_mixed_folder_missing_path_and_non_image(capsys, model, photos, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys,
        main,
        "--ckpt",
        model,
        photos,
        tmp_path / "missing.png",
        photos / "notes.txt",
        "-o",
        out_dir,
    )
    assert code == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["a_ink.png", "b_ink.jpg"]
    assert out.count(" -> ") == 2
    failed = {"empty.png": "empty file", "fake.jpg": "not an image", "missing.png": "no such file"}
    failed["notes.txt"] = "not an image"
    for name, words in failed.items():
        assert [line for line in err if name in line and words in line], (name, err)
    assert len(err) == len(failed) + 1 and err[-1] == "4 of 6 file(s) failed"
    assert all(line.startswith("error: ") for line in err[:-1])


def test_existing_outputs_need_overwrite(capsys, model, photos, tmp_path):
    out_dir = tmp_path / "out"
    src = photos / "a.png"
    assert run_cli(capsys, main, "--ckpt", model, src, "-o", out_dir)[0] == 0
    dst = out_dir / "a_ink.png"
    dst.write_bytes(b"keep me")
    code, _, err = run_cli(capsys, main, "--ckpt", model, src, "-o", out_dir)
    assert code == 1 and "exists (pass --overwrite" in err[0]
    assert dst.read_bytes() == b"keep me"
    assert run_cli(capsys, main, "--ckpt", model, src, "-o", out_dir, "--overwrite")[0] == 0
    assert Image.open(dst).size == (48, 32)


def test_unwritable_output_folder(capsys, model, photos, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a regular file where the output folder should be (root ignores chmod)
    code, _, err = run_cli(
        capsys, main, "--ckpt", model, photos / "a.png", photos / "b.jpg", "-o", blocker / "out"
    )
    assert code == 1
    assert len(err) == 3 and all("cannot write" in line for line in err[:2])
    assert "Not a directory" in err[0] or "File exists" in err[0]


def test_exif_rotated_photo_comes_out_rotated(capsys, model, tmp_path):
    src = tmp_path / "rot.jpg"
    exif_rot6(src)
    code, _, _ = run_cli(capsys, main, "--ckpt", model.with_suffix(".ckpt"), src)
    assert code == 0
    out = Image.open(tmp_path / "rot_ink.jpg")
    assert out.size == (20, 40)  # stored 40x20 with orientation 6: shown (and written) 20x40
    assert out.getexif().get(0x0112, 1) == 1  # no stale orientation tag to rotate it again


@pytest.mark.parametrize("ckpt", ["missing.ckpt", "garbage.ckpt"])
def test_bad_checkpoint_is_one_line_exit_2(capsys, tmp_path, photos, ckpt):
    (tmp_path / "garbage.ckpt").write_bytes(np.random.default_rng(0).bytes(1000))
    code, out, err = run_cli(capsys, main, "--ckpt", tmp_path / ckpt, photos / "a.png")
    assert code == 2 and len(err) == 1 and ckpt in err[0] and not out


def test_rerun_on_a_folder_does_not_stylize_earlier_outputs(capsys, model, tmp_path):
    d = tmp_path / "album"
    d.mkdir()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(d / "a.png")
    assert run_cli(capsys, main, "--ckpt", model, d)[0] == 0
    assert sorted(p.name for p in d.iterdir()) == ["a.png", "a_ink.png"]
    code, _, err = run_cli(capsys, main, "--ckpt", model, d, "--overwrite")
    assert code == 0 and err == []
    assert sorted(p.name for p in d.iterdir()) == ["a.png", "a_ink.png"]  # no a_ink_ink.png


def test_bare_preserve_color_before_a_photo_means_luminance(capsys):
    """`--preserve-color photo.jpg` (as the README writes it) keeps the photo as an input; a word
    that is not a method is refused with argparse's one-line error."""
    args = parse_args(["--ckpt", "m.ckpt", "--preserve-color", "photo.jpg"])
    assert (args.preserve_color, args.inputs) == ("luminance", ["photo.jpg"])
    args = parse_args(["--ckpt", "m.ckpt", "--preserve-color", "histogram", "photo.jpg"])
    assert (args.preserve_color, args.inputs) == ("histogram", ["photo.jpg"])
    args = parse_args(["--ckpt", "m.ckpt", "a.jpg", "--style", "s.jpg", "--preserve-color"])
    assert (args.preserve_color, args.inputs, args.style) == ("luminance", ["a.jpg"], ["s.jpg"])
    with pytest.raises(SystemExit) as e:
        parse_args(["--ckpt", "m.ckpt", "--preserve-color", "lab", "photo.jpg"])
    assert e.value.code == 2 and "invalid choice: 'lab'" in capsys.readouterr().err
