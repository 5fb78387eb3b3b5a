"""Lightning's checkpoint I/O for training runs: atomic saves, weights_only loads.

Kept apart from stylenet/stylize/checkpoint.py so that infer.py does not import Lightning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from stylenet.files.atomic import atomic_write
from stylenet.stylize.checkpoint import safe_torch_load


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes atomically (temp file, fsync, rename in the same folder)
    and only ever loads with weights_only=True."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: Any = None) -> Any:
        return safe_torch_load(Path(path))
