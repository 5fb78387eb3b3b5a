"""trainer=ddp under Hydra: two CPU processes (gloo) train, rank 0 alone exports."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    run, export = tmp_path / "run", tmp_path / "export"
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "style=starry_night",
        "lr=0.001",  # at 0.01 the loss jumps 90-fold at step 2 and the 8th lands anywhere
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_steps=24",
        "trainer.val_check_interval=12",
        "trainer.log_every_n_steps=1",
        "data.image_size=64",
        "data.batch_size=2",
        "data.num_workers=0",
        "style.image_size=64",
        "loss.vgg_weights=random",
        "model.init=null",
        "logger=csv",
        f"hydra.run.dir={run}",
        f"export_dir={export}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "GLOBAL_RANK: 1" in res.stderr + res.stdout
    assert sorted(p.name for p in export.iterdir()) == ["starry_night.ckpt"]
    assert (run / "starry_night.safetensors").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "exported" in (run / "train.log").read_text()
    assert "exported" not in (run / "train_ddp_process_1.log").read_text()
    rows = list(csv.DictReader(open(next(run.glob("csv/*/metrics.csv")))))
    losses = [float(r["train/loss"]) for r in rows if r["train/loss"]]
    assert len(losses) == 24
    assert losses[-1] < 0.6 * losses[0]
