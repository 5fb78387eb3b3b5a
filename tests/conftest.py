"""Shared fixtures: real photos from ../shared/images, a tiny random-VGG setup, offline W&B."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = next(  # ../shared/images, also from a worktree further down
    (p / "shared" / "images" for p in ROOT.parents if (p / "shared" / "images").is_dir()),
    ROOT.parent / "shared" / "images",
)

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def content_dir() -> Path:
    d = SHARED / "content"
    if not d.is_dir():
        pytest.fail(f"real test photos expected in {d}")
    return d


@pytest.fixture(scope="session")
def style_dir() -> Path:
    return SHARED / "style"


@pytest.fixture(autouse=True)
def _isolated_torch_home(tmp_path_factory, monkeypatch):
    """No test may touch the user's torch cache or the network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
