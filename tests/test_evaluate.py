"""Held-out evaluation (stylenet.evaluate): model vs N L-BFGS steps, table, JSON, from training."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from stylenet import evaluate
from stylenet.eval import held_out
from stylenet.files.images import save_image
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize.checkpoint import load_model, save_model


@pytest.fixture
def ckpt(tmp_path, style_dir) -> Path:
    torch.manual_seed(0)
    meta = {
        "style": "wave",
        "training": {
            "style_image": str(style_dir / "great_wave_hokusai.jpg"),
            "content_layers": ["relu2_2"],
            "style_layers": ["relu1_2", "relu2_2", "relu3_3"],
            "content_weight": 1e5,
            "style_weight": 1e10,
            "tv_weight": 0.0,
            "style_size": 64,
        },
    }
    return save_model(tmp_path / "wave.ckpt", TransformNet(8, 1), meta)


@pytest.fixture
def photos(tmp_path, content_dir) -> Path:
    folder = tmp_path / "photos"
    for name in ("mate_storm.jpg", "lomiri_bridge.jpg"):
        (folder).mkdir(exist_ok=True)
        (folder / name).write_bytes((content_dir / name).read_bytes())
    return folder


def test_summary_finds_the_first_step_below_the_model():
    def row(model, curve):
        parts = [{"content_loss": 0.0, "style_loss": 0.0, "total": c} for c in curve]
        return {"model": {"content_loss": 0.0, "style_loss": 0.0, "total": model, "seconds": 0.1},
                "optimized": {**parts[-1], "seconds": 2.0}, "curve_parts": parts,
                "curve": curve}  # fmt: skip

    rows = [row(5.0, [10, 8, 6, 4, 3]), row(3.0, [10, 9, 5, 2.5, 2])]
    for r in rows:  # both curves first fall below their model at step 3
        r["steps_to_match"] = 3
    r = held_out.summarize(rows, 4, "noise")
    assert r["model"]["total"] == 4.0
    assert [o["total"] for o in r["optimization"]] == [10.0, 2.5]  # steps 0 and 4
    assert r["steps_to_match"] == 3  # mean curve 10, 8.5, 5.5, 3.25 (< 4) ...
    assert "worth 3 L-BFGS steps" in held_out.verdict(r) and "per image: 3, 3" in held_out.verdict(
        r
    )
    r = held_out.summarize([{**row(1.0, [10, 8, 6]), "steps_to_match": None}], 2, "photo")
    assert r["steps_to_match"] is None and "more than 2" in held_out.verdict(r)
    assert "per image: >2" in held_out.verdict(r)


def test_evaluate_measures_the_model_and_the_optimization(ckpt, photos):
    net, meta = load_model(ckpt)
    objective = held_out.objective_from_meta(meta, "random", None)
    imgs = held_out.load_photos([photos], 48)
    report = held_out.evaluate(net, objective, imgs, steps=6, init="noise")
    assert report["images"] == 2 and report["steps"] == 6
    for r in report["per_image"]:
        assert len(r["curve"]) == 7 and r["curve"][-1] < r["curve"][0]
        with torch.no_grad():  # the model's loss is the objective of its own output
            name = r["image"]
            x = next(img for n, img in imgs if n == name)[None]
            again = objective(net(x), objective.content_targets(x))["loss"].item()
        assert again == pytest.approx(r["model"]["total"], rel=1e-4)
    mean = [sum(r["curve"][s] for r in report["per_image"]) / 2 for s in range(7)]
    first = next((s for s, v in enumerate(mean) if v < report["model"]["total"]), None)
    assert report["steps_to_match"] == first
    table = held_out.format_table(report)
    assert "model, 1 forward pass" in table and "L-BFGS 6 steps from noise" in table
    assert report["model"]["seconds_per_image"] > 0 and report["optimization_seconds_per_image"] > 0


def test_cli_table_and_json(ckpt, photos, tmp_path, capsys):
    args = ["--ckpt", str(ckpt), "--images", str(photos), "--steps", "2", "--size", "40",
            "--vgg-weights", "random"]  # fmt: skip
    assert evaluate.main(args) == 0
    out = capsys.readouterr().out
    assert "model, 1 forward pass" in out and "L-BFGS" in out and "forward pass is worth" in out
    assert evaluate.main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["style"] == "wave" and report["steps"] == 2 and report["images"] == 2
    assert {"content_loss", "style_loss", "total", "seconds_per_image"} <= set(report["model"])


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_images", "no such file or folder"),
        ("empty", "no readable images"),
        ("no_style", "records no style image"),
        ("imagenet", "ImageNet weights"),
        ("ckpt", "no such checkpoint"),
    ],
)
def test_cli_errors_are_one_line(case, expected, ckpt, photos, tmp_path, capsys, monkeypatch):
    images, weights, model = str(photos), "random", str(ckpt)
    if case == "no_images":
        images = str(tmp_path / "missing")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        images = str(tmp_path / "empty")
    elif case == "no_style":
        model = str(save_model(tmp_path / "bare.ckpt", TransformNet(8, 1), {"style": "bare"}))
    elif case == "imagenet":
        weights = "imagenet"

        def offline(*a, **k):
            raise OSError("network unreachable")

        monkeypatch.setattr("torch.hub.load_state_dict_from_url", offline)
    elif case == "ckpt":
        model = str(tmp_path / "nope.ckpt")
    rc = evaluate.main(
        ["--ckpt", model, "--images", images, "--steps", "1", "--vgg-weights", weights]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and expected in err[0], err
    if case == "imagenet":
        assert "--vgg-weights" in err[0]


@pytest.mark.slow
def test_training_runs_the_evaluation_and_logs_it(tmp_path, photos):
    save_image(torch.rand(3, 40, 40), photos / "noise.png")
    cmd = [
        sys.executable, "train.py", "loss.vgg_weights=random", "trainer=smoke",
        "trainer.max_steps=16", "trainer.log_every_n_steps=1", "trainer.val_check_interval=100",
        "data.image_size=64", "data.batch_size=2", "data.num_workers=0", "logger=csv",
        "loss.normalize=true", "evaluate.steps=3", f"evaluate.images={photos}", "evaluate.size=48",
        f"export_dir={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    log = (tmp_path / "run" / "train.log").read_text()
    assert "model, 1 forward pass" in log and "L-BFGS 3 steps" in log and "3 held-out" in log
    (metrics,) = (tmp_path / "run").rglob("metrics.csv")
    rows = list(csv.DictReader(metrics.open()))
    evals = [r for r in rows if r.get("eval/model_total")]
    assert evals and float(evals[-1]["eval/model_total"]) > 0
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), losses  # normalized training learns
    meta = torch.load(tmp_path / "anime.ckpt", weights_only=True)["training"]
    assert meta["normalize"] is True
    last = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    assert not any("loss_net" in k for k in last["state_dict"])


def test_independent_check_on_the_original_vgg19(ckpt, photos, style_dir, capsys):
    """The unchanged photo scores 0 content error and its own style distance; a real picture of
    something else scores far; the CLI prints the same numbers as a table."""
    named = held_out.load_photos([str(photos)], 64)
    art = held_out.load_image(style_dir / "great_wave_hokusai.jpg", max_side=64)
    rows = held_out.independent_check(torch.nn.Identity(), named, art, grey=False)
    assert len(rows) == len(named) >= 2
    for r in rows:
        assert r["content_error"] == 0 and r["style_stylized"] == r["style_photo"] > 0.1
        assert r["content_error_other"] > 0.3
    grey = held_out.independent_check(torch.nn.Identity(), named, art, grey=True)
    assert grey[0]["style_photo"] != rows[0]["style_photo"]
    assert evaluate.main(["--ckpt", str(ckpt), "--images", str(photos), "--size", "64",
                          "--independent"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("| photo | relu4_2 error") and out.count("\n") == 4 + len(named)
    n = len(named)
    assert re.search(rf"another photo on \d of {n} photos; style distance .* on \d of {n}\.", out)
    # the photo itself keeps its content on every photo and takes the style on none
    assert held_out.half_rules(rows) == {"content": n, "compared": n, "style": 0, "photos": n}
