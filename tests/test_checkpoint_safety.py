"""Hostile checkpoints are refused before any of their code runs; writes are atomic."""

from __future__ import annotations

import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import trainrun

from stylenet.nets.transform_net import TransformNet
from stylenet.stylize.checkpoint import CheckpointError, check_resumable, load_model, save_model
from stylenet.training.lightning_io import SafeCheckpointIO


class Payload:
    """Unpickling this runs exec(), which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def small_net() -> TransformNet:
    torch.manual_seed(0)
    return TransformNet(8, 1)


def hostile_files(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    marker = tmp_path / "PWNED"
    state = {f"net.{k}": v for k, v in small_net().state_dict().items()}
    lightning_like = {
        "state_dict": state,
        "global_step": 3,
        "loops": {},
        "optimizer_states": [],
        "hyper_parameters": {"style_name": "x", "evil": Payload(marker)},
    }
    files = {
        "zip.ckpt": ({"format": "stylenet-model", "state_dict": {}, "x": Payload(marker)}, "zip"),
        "legacy.ckpt": ({"state_dict": Payload(marker)}, "legacy"),
        "raw_pickle.ckpt": (Payload(marker), "pickle"),
        "last.ckpt": (lightning_like, "zip"),
        "pickle_named.safetensors": (Payload(marker), "pickle"),
    }
    out = {}
    for name, (obj, how) in files.items():
        path = tmp_path / name
        if how == "pickle":
            path.write_bytes(pickle.dumps(obj))
        else:
            torch.save(obj, path, _use_new_zipfile_serialization=how == "zip")
        out[name] = path
    return marker, out


def test_crafted_file_really_runs_code_when_unpickled_unsafely(tmp_path):
    marker, files = hostile_files(tmp_path)
    torch.load(files["zip.ckpt"], weights_only=False)  # what an unsafe loader would do
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize(
    "name", ["zip.ckpt", "legacy.ckpt", "raw_pickle.ckpt", "last.ckpt", "pickle_named.safetensors"]
)
def test_hostile_checkpoints_are_refused_and_nothing_runs(tmp_path, name):
    marker, files = hostile_files(tmp_path)
    with pytest.raises(CheckpointError) as e:
        load_model(files[name])
    msg = str(e.value)
    assert name in msg and "\n" not in msg
    if not name.endswith(".safetensors"):
        assert "refused" in msg and "could run code" in msg
    with pytest.raises(CheckpointError):
        SafeCheckpointIO().load_checkpoint(files[name])  # the resume path
    with pytest.raises(CheckpointError):
        check_resumable(files[name])
    assert not marker.exists()


def test_hostile_checkpoint_on_the_command_lines(tmp_path):
    marker, files = hostile_files(tmp_path)
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (10, 200, 30)).save(photo)
    infer = subprocess.run(
        [
            sys.executable,
            str(trainrun.ROOT / "infer.py"),
            "--ckpt",
            str(files["zip.ckpt"]),
            str(photo),
        ],
        capture_output=True,
        text=True,
        env=trainrun.env(),
    )
    assert infer.returncode == 2
    assert infer.stderr.count("\n") == 1 and "refused" in infer.stderr
    run = tmp_path / "run"
    t0 = time.monotonic()
    train = trainrun.train(run, "trainer.max_steps=2", f"ckpt_path={files['last.ckpt']}")
    assert train.returncode == 2
    assert "refused" in (run / "train.log").read_text()
    assert "Traceback" not in train.stderr and "Total params" not in train.stdout
    assert not (run / "checkpoints").exists() and not (run / "export").exists()
    assert not marker.exists()
    print(f"train.py refused the hostile last.ckpt in {time.monotonic() - t0:.1f} s")


def test_export_formats_round_trip_with_metadata(tmp_path):
    net = small_net()
    meta = {"style": "ink", "steps": 7, "training": {"style_weight": 1e10, "layers": ["relu2_2"]}}
    x = torch.rand(1, 3, 24, 40)
    for suffix in (".ckpt", ".safetensors"):
        path = save_model(tmp_path / f"ink{suffix}", net, meta)
        loaded, m = load_model(path)
        assert m["style"] == "ink" and m["steps"] == 7 and m["training"] == meta["training"]
        assert m["arch"] == {
            "channels": 8,
            "num_residual": 1,
            "output": "sigmoid",
            "photo_colors": False,
            "cel": False,
        }
        with torch.no_grad():
            assert torch.equal(loaded(x), net.eval()(x))
        assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    colored = TransformNet(8, 1, "residual", photo_colors=True, cel=True)
    loaded, _ = load_model(save_model(tmp_path / "tint.safetensors", colored, meta))
    assert (loaded.output, loaded.photo_colors, loaded.cel) == ("residual", True, True)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


@pytest.mark.parametrize("name", ["truncated.ckpt", "truncated.safetensors", "empty.ckpt"])
def test_truncated_or_empty_model_files_give_a_clear_error(tmp_path, name):
    good = save_model(tmp_path / f"good{Path(name).suffix}", small_net(), {"style": "s"})
    data = good.read_bytes()
    (tmp_path / name).write_bytes(b"" if name.startswith("empty") else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=name):
        load_model(tmp_path / name)


def test_failed_write_leaves_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = SafeCheckpointIO()
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)

    def half_then_crash(obj, f, *a, **k):
        Path(f).write_bytes(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_crash)
    with pytest.raises(OSError):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


WRITER = """
import sys, torch
from stylenet.stylize.checkpoint import save_model
from stylenet.training.lightning_io import SafeCheckpointIO
from stylenet.nets.transform_net import TransformNet
out, i = sys.argv[1], 0
net = TransformNet(16, 2)
while True:
    i += 1
    big = torch.full((2_000_000,), float(i))  # 8 MB: a write takes a while
    SafeCheckpointIO().save_checkpoint({"global_step": i, "big": big}, out + "/last.ckpt")
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(float(i))
    save_model(out + "/m.safetensors", net, {"style": "s", "steps": i})
    print(i, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_writes_never_leaves_a_broken_file(tmp_path):
    rng = random.Random(0)
    for _ in range(4):
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)],
            env=trainrun.env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdout.readline()  # at least one complete round
        time.sleep(rng.uniform(0.0, 0.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        ckpt = SafeCheckpointIO().load_checkpoint(tmp_path / "last.ckpt")
        assert (ckpt["big"] == ckpt["global_step"]).all()  # complete, not a mix of two writes
        net, meta = load_model(tmp_path / "m.safetensors")
        assert all((q == meta["steps"]).all() for q in net.parameters())
