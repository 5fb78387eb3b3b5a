"""Run `python train.py ...` in a subprocess with small, quick settings (tests only)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# 64 px crops, batch 2, random VGG, from scratch, CSV logs every step: a step takes a fraction
# of a second
QUICK = [
    "loss.vgg_weights=random",
    "logger=csv",
    "data.image_size=64",
    "data.batch_size=2",
    "data.num_workers=0",
    "trainer.log_every_n_steps=1",
    "trainer.val_check_interval=1000",
    "style.image_size=64",
    "model.init=null",
]


def env() -> dict[str, str]:
    # one OpenMP thread: on a shared 2-core machine spinning threads make steps ~8x slower
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def command(run: Path, *overrides: str) -> list[str]:
    """train.py with QUICK, less the QUICK settings that `overrides` set otherwise."""
    keys = {o.split("=", 1)[0] for o in overrides}
    return [
        sys.executable,
        str(ROOT / "train.py"),
        *(q for q in QUICK if q.split("=", 1)[0] not in keys),
        f"hydra.run.dir={run}",
        f"export_dir={run / 'export'}",
        *overrides,
    ]


def train(run: Path, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(run, *overrides),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        cwd=run.parent,
        stdin=subprocess.DEVNULL,
    )


def popen(run: Path, *overrides: str, new_session: bool = False) -> subprocess.Popen:
    """new_session: its own process group, as a terminal's job (for os.killpg)."""
    return subprocess.Popen(
        command(run, *overrides),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=run.parent,
        stdin=subprocess.DEVNULL,
        start_new_session=new_session,
    )


def losses(run: Path) -> dict[int, float]:
    """step -> train/loss from the run's CSV log."""
    out = {}
    for f in sorted((run / "csv").glob("version_*/metrics.csv")):
        with open(f) as fh:
            for row in csv.DictReader(fh):
                if row.get("train/loss"):
                    out[int(row["step"])] = float(row["train/loss"])
    return out
