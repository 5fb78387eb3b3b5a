"""ema_decay=: the moving average of the weights is what validation sees and the run exports."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from trainrun import train

from stylenet.stylize.checkpoint import load_model
from stylenet.training.weight_average import WeightAverage


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))
        self.frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)


def test_the_average_follows_the_weights_and_is_swapped_in_and_saved():
    m, avg = Tiny(), WeightAverage(0.5)
    for value in (2.0, 4.0, 8.0):  # the weights after three steps
        m.w.data.fill_(value)
        avg.on_train_batch_end(None, m)
    # starts at the first step's weights, then avg <- 0.5 avg + 0.5 w: 2 -> 3 -> 5.5
    assert torch.equal(avg.average["w"], torch.full((3,), 5.5)) and "frozen" not in avg.average
    avg.on_validation_epoch_start(None, m)
    assert torch.equal(m.w.data, torch.full((3,), 5.5))  # validation sees the average
    avg.on_validation_epoch_end(None, m)
    assert torch.equal(m.w.data, torch.full((3,), 8.0))  # and training goes on with its own
    again = WeightAverage(0.5)
    again.load_state_dict(avg.state_dict())
    again.on_train_end(None, m)
    assert torch.equal(m.w.data, torch.full((3,), 5.5))
    with pytest.raises(ValueError, match="ema_decay=1.5"):
        WeightAverage(1.5)


@pytest.mark.slow
def test_a_run_with_ema_decay_exports_the_average(tmp_path):
    runs = {}
    for name, extra in (("plain", []), ("ema", ["ema_decay=0.9"])):
        run = train(tmp_path / name, "style=starry_night", "trainer.max_steps=6",
                    "snapshot_minutes=1e-4", *extra)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        runs[name] = load_model(tmp_path / name / "export" / "starry_night.ckpt")
    (plain, plain_meta), (ema, meta) = runs["plain"], runs["ema"]
    assert meta["training"]["ema_decay"] == 0.9 and plain_meta["training"]["ema_decay"] == 0.0
    # the same seed and steps: only the averaging differs, and the average lags the weights
    last = torch.load(tmp_path / "ema" / "checkpoints" / "last.ckpt", weights_only=False)
    kept = last["callbacks"]["WeightAverage"]["average"]
    for name, p in ema.named_parameters():
        assert torch.equal(p, kept[f"net.{name}"])
    diffs = [(p - q).abs().max() for p, q in zip(ema.parameters(), plain.parameters(), strict=True)]
    assert max(diffs) > 1e-4
    # its CPU-time snapshots hold the average too: the last one is the export
    snaps = sorted((tmp_path / "ema" / "snapshots").iterdir())
    last_snap, snap_meta = load_model(snaps[-1])
    assert len(snaps) >= 2 and snap_meta["steps"] == 6
    for p, q in zip(last_snap.parameters(), ema.parameters(), strict=True):
        assert torch.equal(p, q)
    bad = train(tmp_path / "bad", "style=starry_night", "ema_decay=1.5")
    assert bad.returncode == 2 and "ema_decay=1.5" in bad.stdout + bad.stderr
