"""model.spike_weight: the instance-norm spike penalty (stylenet/losses/spikes.py)."""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader
from trainrun import train

from stylenet.losses.loss_net import LossNet
from stylenet.losses.spikes import SpikePenalty
from stylenet.nets.cin import CINNet
from stylenet.stylize.checkpoint import load_model
from stylenet.training.multistyle_module import MultiStyleModule


def test_the_penalty_is_zero_for_ordinary_features_and_falls_as_a_spike_is_flattened():
    torch.manual_seed(0)
    net = nn.Sequential(nn.InstanceNorm2d(4), nn.ReLU(), nn.InstanceNorm2d(4))
    penalty = SpikePenalty(net)
    with penalty.watch():
        net(torch.randn(2, 4, 32, 32))
    assert len(penalty.collected) == 2 and float(penalty.total()) < 1e-3
    x = torch.randn(1, 4, 32, 32)
    x[0, 1, 5:7, 5:7] = 200.0  # a 2x2 spike in one channel
    x.requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=5.0)
    seen = []
    for _ in range(40):
        with penalty.watch():
            net(x)
        loss = penalty.total()
        seen.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert seen[0] > 1 and seen[-1] < 0.1 * seen[0], seen
    assert float(x[0, 0].detach().std()) > 0.5  # the rest of the features are left alone
    with torch.no_grad():
        net(x)  # not watched: nothing collected, nothing kept
    assert penalty.terms is None


def test_a_cin_run_with_spike_weight_logs_and_records_it(tmp_path):
    run = train(tmp_path / "a", "model=cin", "styles=[starry_night,wave]", "model.name=s",
                "model.spike_weight=0.5", "trainer.max_steps=4")  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    _, meta = load_model(tmp_path / "a" / "export" / "s.ckpt")
    assert meta["training"]["wave"]["spike_weight"] == 0.5
    header = next((tmp_path / "a").glob("csv/*/metrics.csv")).read_text().splitlines()[0]
    assert "train/wave/spike_loss" in header
    bad = train(tmp_path / "b", "model=cin", "styles=[starry_night,wave]", "model.spike_weight=-1")
    said = bad.stdout + bad.stderr
    assert bad.returncode == 2 and "model.spike_weight=-1 must be" in said, said[-2000:]


def test_training_with_spike_weight_flattens_a_planted_spike():
    """Grey photos with one bright pixel each give a fresh cin net spikes in its first norm.
    30 steps with model.spike_weight=1 flatten them; without the penalty they stay."""
    styles = ["a", "b"]
    photos = torch.full((4, 3, 32, 32), 0.3)
    for i in range(4):
        photos[i, :, 8 + 4 * i, 10 + 3 * i] = 1.0

    def penalty(net: CINNet) -> float:
        p = SpikePenalty(net)
        with torch.no_grad(), p.watch():
            for s in styles:
                net(photos, s)
        return float(p.total())

    after = {}
    for weight in (0.0, 1.0):
        pl.seed_everything(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random VGG weights
            vgg = LossNet(["relu1_2", "relu2_2"], weights="random")
        net = CINNet(styles, 8, 1)
        module = MultiStyleModule(
            net, {s: torch.rand(3, 32, 32) for s in styles},
            dict.fromkeys(styles, {"content_weight": 1.0, "style_weight": 5.0}), vgg,
            content_layers=["relu2_2"], style_layers=["relu1_2", "relu2_2"], normalize=True,
            spike_weight=weight,
        )  # fmt: skip
        before = penalty(net)
        trainer = pl.Trainer(
            max_steps=30, accelerator="cpu", logger=False, limit_val_batches=0,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        trainer.fit(module, DataLoader(list(photos), batch_size=2))
        after[weight] = penalty(net)
    assert before > 5, before
    assert after[1.0] < 0.25 * before and after[0.0] > 0.75 * before, (before, after)
