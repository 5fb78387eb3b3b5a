"""Training multi-style models: each style's loss falls; adding a style leaves the old ones
bit-identical (train.py model=cin/stylebank styles=[...] model.init=...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT
from PIL import Image
from trainrun import losses, train

from stylenet.files.images import load_image
from stylenet.infer import main as infer
from stylenet.losses.loss_net import LossNet
from stylenet.nets.cin import CINNet
from stylenet.nets.stylebank import StyleBankNet
from stylenet.stylize.checkpoint import load_model
from stylenet.training.data import PhotoDataModule
from stylenet.training.multistyle_module import MultiStyleModule

STYLES = ["starry_night", "wave"]
pytestmark = pytest.mark.slow


def held_out(module: MultiStyleModule, photos: torch.Tensor) -> dict[str, float]:
    """Each style's style loss and total on the photos (and StyleBank's reconstruction MSE)."""
    out = {}
    with torch.no_grad():
        for s in STYLES:
            _, parts = module.style_losses(photos, s)
            out[f"{s}/style_loss"], out[f"{s}/loss"] = (
                float(parts["style_loss"]),
                float(parts["loss"]),
            )
        if isinstance(module.net, StyleBankNet):
            out["reconstruction"] = float(module.reconstruction(photos)[1])
    return out


@pytest.mark.parametrize("family", ["cin", "stylebank"])
def test_each_style_learns(family, content_dir, tmp_path):
    """60 steps at 64 px (random VGG): every style's held-out style loss drops by 30% or more;
    StyleBank's reconstruction error too (T+1 schedule: 40 stylizing and 20 auto-encoder steps)."""
    pl.seed_everything(0)
    data = PhotoDataModule(
        "folder", str(content_dir), image_size=64, batch_size=2, num_workers=0, val_images=4
    )
    data.setup()
    photos = next(iter(data.val_dataloader()))
    images = {s: load_image(ROOT / f"data/styles/{s}.jpg", max_side=64) for s in STYLES}
    settings = dict.fromkeys(STYLES, {"content_weight": 1.0, "style_weight": 5.0})
    layers = ["relu1_2", "relu2_2", "relu3_3"]
    with pytest.warns(UserWarning, match="RANDOM"):
        loss_net = LossNet(layers, weights="random")
    net = CINNet(STYLES, 16, 2) if family == "cin" else StyleBankNet(STYLES, 16, 1)
    module = MultiStyleModule(
        net, images, settings, loss_net, content_layers=["relu2_2"], style_layers=layers,
        normalize=True,
    )  # fmt: skip
    before = held_out(module, photos)
    trainer = pl.Trainer(
        max_steps=60,
        accelerator="cpu",
        logger=False,
        limit_val_batches=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, datamodule=data)
    after = held_out(module, photos)
    print({k: f"{before[k]:.3g} -> {after[k]:.3g}" for k in before})
    for s in STYLES:
        assert after[f"{s}/style_loss"] <= 0.7 * before[f"{s}/style_loss"], s
        assert after[f"{s}/loss"] < before[f"{s}/loss"], s
    if family == "stylebank":
        assert [module.branch(i) for i in range(6)] == [*STYLES, None, *STYLES, None]
        assert after["reconstruction"] <= 0.7 * before["reconstruction"]


def stylized(ckpt: Path, photo: Path, out: Path, styles: list[str]) -> dict[str, np.ndarray]:
    """infer.py --style ... on one photo: style -> output pixels."""
    assert infer(["--ckpt", str(ckpt), str(photo), "-o", str(out), "--style", *styles]) == 0
    return {s: np.asarray(Image.open(out / f"{photo.stem}_{s}.png")) for s in styles}


@pytest.mark.parametrize("family", ["cin", "stylebank"])
def test_adding_a_style_keeps_the_old_ones_bit_identical(family, content_dir, tmp_path):
    first = train(
        tmp_path / "two", f"model={family}", f"styles=[{','.join(STYLES)}]",
        "trainer.max_steps=6", "trainer.val_check_interval=3", "model.name=two",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    two = tmp_path / "two" / "export" / "two.ckpt"
    net, meta = load_model(two)
    assert (
        meta["kind"] == family and meta["styles"] == STYLES and set(meta["training"]) == {*STYLES}
    )
    header = (
        next((tmp_path / "two" / "csv").glob("version_*/metrics.csv")).read_text().split("\n")[0]
    )
    assert all(f"train/{s}/loss" in header and f"val/{s}/loss" in header for s in STYLES)
    grid = Image.open(next((tmp_path / "two" / "val").glob("step_*.png")))
    rows = 1 + len(STYLES) + (family == "stylebank")  # photos, one row per style (+ auto-encoder)
    assert grid.height == rows * (64 + 4) + 4

    second = train(
        tmp_path / "three", f"model={family}", f"styles=[{','.join(STYLES)},scream]",
        f"model.init={two}", "trainer.max_steps=4", "model.name=three", "model.temporal_weight=2",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    three = tmp_path / "three" / "export" / "three.ckpt"
    _, meta3 = load_model(three)
    assert meta3["styles"] == [*STYLES, "scream"] and meta3["training"]["scream"]["steps"] == 4
    assert meta3["training"]["scream"]["temporal_weight"] == 2  # model.temporal_weight: all styles
    assert meta3["training"]["wave"] == meta["training"]["wave"]

    photo = tmp_path / "bridge.png"  # PNG outputs: pixels compared exactly
    Image.open(content_dir / "lomiri_bridge.jpg").convert("RGB").reduce(4).save(photo)
    old = stylized(two, photo, tmp_path / "old", STYLES)
    new = stylized(
        tmp_path / "three" / "three.safetensors", photo, tmp_path / "new", [*STYLES, "scream"]
    )
    for s in STYLES:
        assert np.array_equal(old[s], new[s]), f"{s} changed when scream was added"
    assert np.abs(new["scream"].astype(int) - new["wave"]).mean() > 0.5
    if family == "stylebank":
        assert (
            infer(["--ckpt", str(three), str(photo), "-o", str(tmp_path), "--style", "none"]) == 0
        )


def test_bad_style_name_is_one_line(tmp_path):
    r = train(tmp_path / "bad", "model=cin", "styles=[starry_night,nope]")
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "error" in ln.lower()]
    assert r.returncode == 2 and len(lines) == 1, (r.stdout + r.stderr)[-2000:]
    assert "unknown style 'nope' in styles=; choose from anime, kandinsky" in lines[0]


def test_model_init_with_the_same_styles_continues_every_style(tmp_path):
    """model.init=<cin model> listing exactly its styles: every style and the shared weights
    train on from it (its first losses are the first run's late ones, not a fresh net's) and the
    export counts the steps on; the styles in another order are refused."""
    first = train(
        tmp_path / "a", "model=cin", f"styles=[{','.join(STYLES)}]", "trainer.max_steps=40",
        "model.name=d",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    d = tmp_path / "a" / "export" / "d.ckpt"
    again = train(
        tmp_path / "b", "model=cin", f"styles=[{','.join(STYLES)}]", f"model.init={d}",
        "trainer.max_steps=4", "model.name=e",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "every style trains" in (tmp_path / "b" / "train.log").read_text()
    _, meta = load_model(tmp_path / "b" / "export" / "e.ckpt")
    assert meta["steps"] == 44 and meta["training"]["wave"]["steps"] == 22
    early, late = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert np.mean([late[0], late[1]]) < 0.8 * np.mean([early[0], early[1]]), (early, late)
    deep = train(
        tmp_path / "d", "model=cin", f"styles=[{','.join(STYLES)}]", f"model.init={d}",
        "trainer.max_steps=1", "model.name=f", "model.num_residual=7",
    )  # fmt: skip
    assert deep.returncode == 0, deep.stderr[-3000:]
    assert "2 identity blocks added" in (tmp_path / "d" / "train.log").read_text()
    assert losses(tmp_path / "d")[0] == pytest.approx(late[0], rel=1e-3)  # the same function
    wrong = train(tmp_path / "c", "model=cin", "styles=[wave,starry_night]", f"model.init={d}")
    said = wrong.stdout + wrong.stderr
    assert wrong.returncode == 2 and "in that order" in said, said[-2000:]


def test_turns_give_a_style_more_batches_per_cycle(tmp_path, content_dir):
    """model.turns: the schedule, the steps each style is credited with in the export (also after
    a resume with other turns), and a clear error for a style that does not train."""
    three = ["starry_night", "wave", "scream"]
    images = {s: load_image(ROOT / f"data/styles/{s}.jpg", max_side=32) for s in three}
    settings = dict.fromkeys(three, {"content_weight": 1.0, "style_weight": 5.0})
    with pytest.warns(UserWarning, match="RANDOM"):
        loss_net = LossNet(["relu1_2", "relu2_2"], weights="random")
    module = MultiStyleModule(
        CINNet(three, 8, 1), images, settings, loss_net, content_layers=["relu2_2"],
        style_layers=["relu1_2"], turns={"starry_night": 3, "wave": 2},
    )  # fmt: skip
    cycle = ["starry_night", "wave", "scream", "starry_night", "wave", "starry_night"]
    assert [module.branch(i) for i in range(12)] == cycle * 2
    with pytest.raises(ValueError, match=r"turns: \['kandinsky'\] not among"):
        MultiStyleModule(CINNet(three, 8, 1), images, settings, loss_net, turns={"kandinsky": 2})
    run = train(tmp_path / "a", "model=cin", "styles=[starry_night,wave]", "model.name=t",
                "model.turns={wave:3}", "trainer.max_steps=8", "checkpoint_every=4")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    _, meta = load_model(tmp_path / "a" / "export" / "t.ckpt")
    assert meta["training"]["wave"]["steps"] == 6 and meta["training"]["starry_night"]["steps"] == 2
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    resumed = train(tmp_path / "r", "model=cin", "styles=[starry_night,wave]", "model.name=t",
                    f"ckpt_path={last}", "trainer.max_steps=12")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, meta = load_model(tmp_path / "r" / "export" / "t.ckpt")  # 8 steps as above, then 2 + 2
    assert meta["steps"] == 12
    assert meta["training"]["wave"]["steps"] == 8 and meta["training"]["starry_night"]["steps"] == 4
    bad = train(tmp_path / "b", "model=cin", "styles=[starry_night,wave]", "model.turns={ink:2}")
    said = bad.stdout + bad.stderr
    assert bad.returncode == 2 and "model.turns: ['ink'] not among the trained styles" in said
