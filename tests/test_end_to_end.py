"""Train on real photos (random VGG), show held-out style loss falling, then run the CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT
from PIL import Image

from stylenet.files.images import load_image
from stylenet.losses.loss_net import LossNet
from stylenet.training.data import PhotoDataModule
from stylenet.training.johnson_module import StyleTransferModule

ANIME = ROOT / "data" / "styles" / "anime.png"
pytestmark = pytest.mark.slow


def held_out_losses(module: StyleTransferModule, photos: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        _, parts = module.losses(photos)
    return {k: float(v) for k, v in parts.items()}


def test_training_lowers_held_out_style_loss(content_dir: Path, tmp_path: Path):
    pl.seed_everything(0)
    data = PhotoDataModule(
        "folder", str(content_dir), image_size=128, batch_size=4, num_workers=0, val_images=4
    )
    data.setup()
    photos = next(iter(data.val_dataloader()))
    assert len(photos) == 4 and not set(data.val_files) & set(data.train_files)
    style = load_image(ANIME, max_side=128)
    layers = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    with pytest.warns(UserWarning, match="RANDOM"):
        loss_net = LossNet(layers, weights="random")
    module = StyleTransferModule(style, loss_net, "anime", ["relu2_2"], layers)
    before = held_out_losses(module, photos)
    trainer = pl.Trainer(
        max_steps=50,
        accelerator="cpu",
        logger=False,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    after = held_out_losses(module, photos)
    print(
        f"held-out style loss {before['style_loss']:.3g} -> {after['style_loss']:.3g}, "
        f"total {before['loss']:.3g} -> {after['loss']:.3g}"
    )
    assert trainer.global_step == 50
    assert after["style_loss"] <= 0.7 * before["style_loss"]
    assert after["loss"] < before["loss"]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def test_train_cli_then_infer_cli(content_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    r = run(
        [
            str(ROOT / "train.py"),
            "style=anime",
            "data=folder",
            f"data.root={content_dir}",
            "data.image_size=64",
            "data.num_workers=0",
            "loss.vgg_weights=random",
            "trainer.max_steps=4",
            "trainer.val_check_interval=2",
            "logger=wandb",
            f"hydra.run.dir={run_dir}",
            f"export_dir={tmp_path / 'checkpoints'}",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "anime.ckpt").is_file()
    assert (run_dir / "anime.safetensors").is_file()  # the twin stays in the run folder
    assert not (tmp_path / "checkpoints" / "anime.safetensors").exists()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "train.log").is_file()
    assert sorted(p.name for p in (run_dir / "val").glob("*.png")) == [
        "step_0000002.png",
        "step_0000004.png",
    ]
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    media = list(offline_runs[0].glob("files/media/images/val/*.png"))
    assert len(media) == 2, "validation images should be logged to the W&B run"

    photo = tmp_path / "portrait.png"  # portrait orientation, odd size
    Image.open(content_dir / "kodak_kodim04_portrait.png").resize((251, 377)).save(photo)
    r = run([str(ROOT / "infer.py"), "--ckpt", "anime.ckpt", str(photo)], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "portrait_anime.png"
    assert Image.open(out).size == (251, 377)
