"""Bad training files are skipped and counted; they never stop training."""

from __future__ import annotations

import logging

import pytest
import torch
import trainrun
from imagecases import CASES, write_cases

from stylenet.training.data import NoImagesError, PhotoDataModule, PhotoDataset, StepSampler

BAD = sorted(n for n, v in CASES.items() if v == "bad")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    write_cases(d)
    return d


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_skips_and_counts_bad_files_across_workers(folder, workers, caplog):
    dm = PhotoDataModule("folder", str(folder), 32, 4, workers, val_images=0, epoch_length=64)
    dm.setup("fit")
    with caplog.at_level(logging.WARNING, logger="stylenet.training.data"):
        batches = list(dm.train_dataloader())
    assert len(batches) == 16 and all(b.shape == (4, 3, 32, 32) for b in batches)
    assert all(torch.isfinite(b).all() for b in batches)
    # 64 samples over 16 files: every file was tried, the bad ones flagged in the shared mask
    assert sorted(p.name for p in dm.skipped()) == BAD
    if workers == 0:  # worker processes log to their own stderr, not to caplog
        assert sum("skipping" in r.message for r in caplog.records) == len(BAD)
        assert "5 unreadable file(s) skipped so far" in caplog.text


def test_bad_validation_files_are_dropped_at_setup(folder):
    files = sorted(folder.iterdir())
    dm = PhotoDataModule("folder", str(folder), 32, 2, 0, val_images=len(files) - 1)
    dm.setup("fit")
    names = {p.name for p in dm.val_files}
    assert names and not names & set(BAD)
    batch = next(iter(dm.val_dataloader()))
    assert batch.shape[0] == len(dm.val_files)


def test_all_files_bad_gives_one_clear_error(tmp_path):
    (tmp_path / "a.jpg").write_text("no")
    (tmp_path / "b.png").write_bytes(b"")
    ds = PhotoDataset(sorted(tmp_path.iterdir()), 32)
    with pytest.raises(NoImagesError, match="none of the 2 images could be read"):
        ds[0]


def test_sampler_is_a_function_of_seed_and_position():
    a = list(StepSampler(7, 30, seed=3))
    assert list(StepSampler(7, 30, seed=3)) == a
    assert list(StepSampler(7, 30, seed=4)) != a
    # each pass of 7 positions is a permutation of the 7 files, with fresh dataset indices
    assert sorted(i % 7 for i in a[7:14]) == list(range(7)) and min(a[7:14]) >= 7
    # starting at position 11 continues the same stream
    assert list(StepSampler(7, 19, seed=3, start=lambda: 11)) == a[11:]


@pytest.mark.slow
def test_training_on_a_folder_full_of_bad_files(folder, tmp_path):
    run = tmp_path / "run"
    r = trainrun.train(
        run,
        "data=folder",
        f"data.root={folder}",
        "data.image_size=32",
        "data.batch_size=4",
        "data.num_workers=2",
        "data.epoch_length=32",
        "trainer.max_steps=12",
        "trainer.val_check_interval=6",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (run / "anime.safetensors").is_file()
    log = (run / "train.log").read_text()
    assert f"skipped {len(BAD)} unreadable image file(s)" in log
    assert "Traceback" not in r.stderr
