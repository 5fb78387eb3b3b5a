"""--work-size: the net runs on the photo shrunk to a working size, the output has the photo's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import run_cli, save_tiny

from stylenet import infer
from stylenet.files.images import load_image, save_image
from stylenet.stylize.work_size import at_work_size


def test_the_net_sees_the_working_size_and_the_output_has_the_photos():
    seen = []

    def stylize(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return 1 - x

    photo = torch.rand(3, 300, 400)
    out = at_work_size(stylize, 100)(photo)
    assert seen == [(3, 75, 100)] and out.shape == photo.shape
    assert 0 <= out.min() and out.max() <= 1
    smooth = torch.linspace(0, 1, 400).expand(3, 300, 400).contiguous()
    assert torch.allclose(at_work_size(stylize, 100)(smooth), 1 - smooth, atol=0.02)
    small = torch.rand(3, 60, 80)
    assert torch.equal(at_work_size(stylize, 100)(small), 1 - small)
    assert at_work_size(stylize, None) is stylize


def test_infer_work_size_keeps_the_photo_size(tmp_path: Path, capsys, content_dir: Path):
    model = save_tiny("johnson", tmp_path / "tiny.safetensors")
    photo = tmp_path / "big.png"
    save_image(load_image(content_dir / "kodak_kodim21_lighthouse.png"), photo)
    out = tmp_path / "out"
    args = ["--ckpt", str(model), str(photo), "-o", str(out)]
    code, _, err = run_cli(capsys, infer.main, *args, "--work-size", 128)
    assert code == 0, err
    assert load_image(out / "big_ink.png").shape == load_image(photo).shape
    with pytest.raises(SystemExit) as e:
        infer.main([*args, "--work-size", "8"])
    assert e.value.code == 2 and "--work-size 8 must be at least 64" in capsys.readouterr().err
