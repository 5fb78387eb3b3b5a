"""Validation: a grid at the last step (also when resumed at the end); a small held-out set."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import trainrun
from PIL import Image

from stylenet.training.data import sample_photos, split_holdout


def wandb_images(run: Path) -> list[Path]:
    """The run's logged val/stylized images in logging order (W&B names them key_step_hash)."""
    (offline,) = (run / "wandb").glob("offline-run-*")
    files = (offline / "files" / "media" / "images" / "val").glob("stylized_*.png")
    return sorted(files, key=lambda p: int(re.match(r"stylized_(\d+)_", p.name).group(1)))


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.slow
def test_final_grid_at_the_last_step_also_when_resumed_at_the_end(tmp_path, monkeypatch):
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    wandb = ["logger=wandb", "logger.offline=true", "trainer.max_steps=5"]
    run = tmp_path / "run"
    r = trainrun.train(run, *wandb, "trainer.val_check_interval=2")
    assert r.returncode == 0, r.stderr[-3000:]
    pngs = sorted(p.name for p in (run / "val").glob("*.png"))
    assert pngs == ["step_0000002.png", "step_0000004.png", "step_0000005.png"]
    logged = wandb_images(run)
    assert len(logged) == 3, "one W&B image per grid, the last one for step 5"
    final = pixels(run / "val" / "step_0000005.png")
    assert np.array_equal(pixels(logged[-1]), final)
    assert final.std() > 10, "a real picture (W&B once got all-black float tensors)"

    # resumed at its last step: Lightning skips the training loop, the grid still comes
    again = tmp_path / "again"
    r = trainrun.train(again, *wandb, f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in (again / "val").glob("*.png")] == ["step_0000005.png"]
    assert np.array_equal(pixels(again / "val" / "step_0000005.png"), final)
    (logged,) = wandb_images(again)
    assert np.array_equal(pixels(logged), final)


def test_small_folders_keep_most_photos_for_training():
    files = [Path(f"{i:02d}.jpg") for i in range(40)]
    held_out = [len(split_holdout(files[:n], 4)[1]) for n in range(8)]
    assert held_out == [0, 0, 1, 1, 1, 1, 2, 2]  # never more than a third, at least one
    assert len(split_holdout(files[:12], 4)[1]) == 4 and len(split_holdout(files, 4)[1]) == 4
    assert len(split_holdout(files, 0)[1]) == 0
    train, val = split_holdout(files[:30], 4)
    assert sorted(train + val) == files[:30] and not set(train) & set(val)
    # the built-in sample set: 5 photos to train on, 2 to look at
    train, val = split_holdout(sample_photos(), 2)
    assert len(train) == 5
    assert sorted(p.name for p in val) == ["astronaut.png", "hubble_deep_field.jpg"]
