"""Same seed and data: bitwise identical weights after N steps on CPU, with or without workers."""

from __future__ import annotations

import pytest
import torch
import trainrun

from stylenet.stylize.checkpoint import load_model

ARGS = ["trainer.max_steps=6", "checkpoint_every=100", "data.epoch_length=8"]  # crosses an epoch


def weights(run, *extra):
    r = trainrun.train(run, *ARGS, *extra)
    assert r.returncode == 0, r.stderr[-3000:]
    return load_model(run / "anime.safetensors")[0].state_dict(), trainrun.losses(run)


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path):
    a, loss_a = weights(tmp_path / "a")
    b, loss_b = weights(tmp_path / "b")
    c, loss_c = weights(tmp_path / "c", "data.num_workers=2")
    d, _ = weights(tmp_path / "d", "seed=1")
    assert loss_a == loss_b == loss_c and len(loss_a) == 6
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert torch.equal(a[k], c[k]), k  # worker processes change nothing
    assert any(not torch.equal(a[k], d[k]) for k in a)  # and the seed does matter
