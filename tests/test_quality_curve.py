"""Time to quality: CPU-time snapshots of real trainings, scored on held-out photos and plotted."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import run_cli

from stylenet import quality_curve
from stylenet.eval.curve import minutes_to_reach

TINY = (
    "loss.vgg_weights=random style.image_size=64 data.batch_size=2 "
    "trainer.val_check_interval=1000 trainer.log_every_n_steps=1"
)


def test_minutes_to_reach_interpolates_between_snapshots():
    curve = [
        {"cpu_minutes": 1.0, "objective": 10.0},
        {"cpu_minutes": 2.0, "objective": 6.0},
        {"cpu_minutes": 4.0, "objective": 2.0},
    ]
    assert minutes_to_reach(curve, 4.0) == pytest.approx(3.0)
    assert minutes_to_reach(curve, 6.0) == pytest.approx(2.0)
    assert minutes_to_reach(curve, 20.0) == pytest.approx(1.0)
    assert minutes_to_reach(curve, 1.0) is None


@pytest.mark.slow
def test_recipes_train_for_equal_cpu_time_and_the_curve_falls(
    content_dir: Path, tmp_path: Path, capsys, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "curve"
    photos = [
        content_dir / "kodak_kodim04_portrait.png",
        content_dir / "kodak_kodim21_lighthouse.png",
    ]
    args = [
        "--out", out, "--minutes", 0.3, "--snapshots", 3, "--jobs", 2, "--threads", 1,
        "--size", 64, "--vgg-weights", "random", "--style", "starry_night", "--images", *photos,
        "--recipe", f"small=data.image_size=48 {TINY}",
        "--recipe", f"larger=data.image_size=64 {TINY}",
        "--recipe", f"broken=data.image_size=64 {TINY} lr=-1",
    ]  # fmt: skip
    code, stdout, err = run_cli(capsys, quality_curve.main, *args)
    assert code == 1, "a failed recipe makes the exit status 1"
    assert any("recipe broken failed" in line for line in err), err
    assert any("lr=-1 must be" in line for line in err), err
    report = json.loads((out / "curve.json").read_text())
    assert set(report["recipes"]) == {"small", "larger"}
    for name, r in report["recipes"].items():
        c = r["curve"]
        assert len(c) >= 3, (name, c)
        minutes = [p["cpu_minutes"] for p in c]
        assert minutes == sorted(minutes) and minutes[-1] >= 0.3 * 0.95, (name, minutes)
        assert minutes[-1] < 0.3 + 0.2, "training stops soon after its CPU budget"
        assert c[-1]["steps"] > c[0]["steps"] == 0
        assert c[-1]["objective"] < 0.8 * c[0]["objective"], (name, c)
    assert report["target"] == report["recipes"]["small"]["curve"][-1]["objective"]
    assert report["recipes"]["small"]["minutes_to_target"] is not None
    lines = {line.split()[0]: line for line in stdout.splitlines() if line.split()}
    assert "small" in lines and "larger" in lines and "1.00" in lines["small"], stdout
    svg = ET.parse(out / "time_to_quality.svg").getroot()
    assert len(svg.findall("{http://www.w3.org/2000/svg}polyline")) == 2

    # run again: nothing is retrained and the figures stay; the broken recipe is tried again
    stamps = {p: p.stat().st_mtime for p in (out / "small" / "snapshots").iterdir()}
    code, stdout, _ = run_cli(capsys, quality_curve.main, *args)
    assert "small: reusing the snapshots" in stdout
    assert {p: p.stat().st_mtime for p in (out / "small" / "snapshots").iterdir()} == stamps
    assert json.loads((out / "curve.json").read_text())["target"] == report["target"]


def test_bad_recipe_arguments_are_named(capsys):
    with pytest.raises(SystemExit):
        quality_curve.main(["--recipe", "no-equals-sign"])
    assert "expected NAME=OVERRIDES" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        quality_curve.main(["--recipe", "a=x", "--recipe", "a=y"])
    assert "given twice" in capsys.readouterr().err


def test_the_default_held_out_photos_are_the_shipped_recipes_four():
    names = sorted(p.name for p in quality_curve.held_out_photos())
    assert len(names) == 4 and all(os.path.exists(p) for p in quality_curve.held_out_photos())
    assert any("kodim21" in n for n in names) and any("lomiri" in n for n in names)
