"""A NaN/inf loss stops training with a clear message; the last good checkpoint is kept."""

from __future__ import annotations

import pytest
import torch
import trainrun
from hydra import compose, initialize_config_dir

from stylenet.training import recipes as train_mod
from stylenet.training.johnson_module import NonFiniteLossError, StyleTransferModule
from stylenet.training.lightning_io import SafeCheckpointIO


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_nan_after_a_checkpoint_keeps_that_checkpoint(tmp_path, monkeypatch, one_thread):
    real = StyleTransferModule.losses

    def poisoned(self, photos):
        y, parts = real(self, photos)
        if self.training and self.global_step >= 5:  # the 6th step goes bad
            parts["loss"] = parts["loss"] * float("nan")
        return y, parts

    monkeypatch.setattr(StyleTransferModule, "losses", poisoned)
    with initialize_config_dir(str(trainrun.ROOT / "configs"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                *trainrun.QUICK,
                "logger=none",
                "trainer.max_steps=30",
                "checkpoint_every=4",
                f"export_dir={tmp_path / 'export'}",
            ],
        )
    with pytest.raises(NonFiniteLossError, match="became NaN/inf at step 6"):
        train_mod.fit(cfg, tmp_path)
    ckpt = SafeCheckpointIO().load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4  # the save at step 8 was refused, step 4's file kept
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "export").exists()


def test_command_line_stops_with_one_clear_line(tmp_path):
    run = tmp_path / "run"
    r = trainrun.train(run, "lr=1e10", "trainer.max_steps=40", "checkpoint_every=20")
    assert r.returncode == 3
    errors = [line for line in r.stdout.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "the training loss became NaN/inf at step" in errors[0], r.stdout
    assert "Traceback" not in r.stderr
    assert not (run / "export").exists() and not (run / "checkpoints" / "last.ckpt").exists()
    print(errors[0])
