"""Config mistakes: one line, exit status 2, before any model is built or weights downloaded."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import trainrun
from hydra import compose, initialize_config_dir

from stylenet.training.config import ConfigError, check_config, check_groups


def composed(*overrides: str):
    with initialize_config_dir(str(trainrun.ROOT / "configs"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["style=wave", "style.image=data/styles/missing.jpg"], "style image"),
        (["style.color_weight=-1"], "style.color_weight=-1 must be"),
        (["style.cartoon_weight=-2"], "style.cartoon_weight=-2 must be"),
        (["model.output=tanh"], "model.output='tanh': expected one of sigmoid, linear, residual"),
        (["model.photo_colors=yes"], "model.photo_colors='yes' must be true or false"),
        (["style.cel=2"], "style.cel=2 must be true or false"),
        (["style.image=/no/such/art.jpg"], "not found"),
        (["style=custom"], "has no image"),
        (["loss.style_layers=[relu1_2,relu9_9]"], "unknown vgg16 layer(s) ['relu9_9']"),
        (["loss.content_layers=[conv7_1]"], "unknown vgg16 layer(s) ['conv7_1']"),
        (["style.style_weight=-1e10"], "style.style_weight=-1e+10 must be a finite number >= 0"),
        (["style.content_weight=-5"], "style.content_weight=-5 must be"),
        (["style.tv_weight=nan"], "style.tv_weight=nan must be"),
        (["style.style_weight=abc"], "must be a finite number"),
        (["lr=-0.1"], "lr=-0.1 must be a finite number > 0"),
        (["lr=inf"], "lr=inf must be"),
        (["data=folder", "data.root=/no/such/folder"], "is not a folder of images"),
        (["ckpt_path=/no/such/last.ckpt"], "no such checkpoint file"),
    ],
)
def test_check_config_names_the_mistake_in_one_line(overrides, words):
    with pytest.raises(ConfigError) as e:
        check_config(composed(*overrides))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_check_config_passes_the_shipped_defaults():
    assert check_config(composed()).name == "anime.png"


def test_unknown_group_options_are_caught_before_hydra():
    with pytest.raises(ConfigError, match="unknown style 'foo'; choose one of anime, custom"):
        check_groups(["trainer.max_steps=3", "style=foo"])
    with pytest.raises(ConfigError, match="unknown trainer 'tpu'"):
        check_groups(["trainer=tpu"])
    check_groups(["style=wave", "data=folder", "data.root=x", "+style.extra=1", "logger=csv"])


@pytest.mark.parametrize(
    "args, words",
    [
        (["style=foo"], "unknown style 'foo'"),
        (["style.style_weight=-1"], "style.style_weight=-1 must be a finite number >= 0"),
        (["loss.style_layers=[relu9_9]"], "unknown vgg16 layer(s)"),
    ],
)
def test_command_line_gives_one_line_and_builds_nothing(tmp_path, args, words):
    run = tmp_path / "run"
    torch_home = tmp_path / "torch_home"  # ImageNet VGG weights would be downloaded here
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, str(trainrun.ROOT / "train.py"), *args, f"hydra.run.dir={run}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**trainrun.env(), "TORCH_HOME": str(torch_home)},
        cwd=tmp_path,
    )
    took = time.monotonic() - t0
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert r.returncode == 2
    assert len(lines) == 1 and words in lines[0] and "error" in lines[0], lines
    assert not torch_home.exists()  # no download was attempted
    assert not (run / "checkpoints").exists()
    print(f"{args}: exit 2 after {took:.1f} s: {lines[0]}")
