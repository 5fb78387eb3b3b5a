"""Run an exported .onnx model (from `python -m stylenet.export`) with ONNX Runtime."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from stylenet.stylize.checkpoint import CheckpointError


def load_onnx(path: str | Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Any]]:
    """(stylize, meta) for an exported .onnx file: stylize maps (3, H, W) in [0, 1] to the same."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only, no warnings on stderr
        opts.intra_op_num_threads = torch.get_num_threads()  # as torch: OMP_NUM_THREADS counts
        providers = [p for p in ort.get_available_providers() if p != "TensorrtExecutionProvider"]
        session = ort.InferenceSession(str(path), opts, providers=providers)
        props = session.get_modelmeta().custom_metadata_map
        meta = json.loads(props.get("stylenet", "{}"))
        name = session.get_inputs()[0].name
    except Exception as e:  # ONNX Runtime raises its own classes for every kind of bad file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable ONNX model ({first[:200]})") from None
    meta["style"] = meta.get("style") or path.stem

    def stylize(image: torch.Tensor) -> torch.Tensor:
        x = image.detach().float().cpu().unsqueeze(0).numpy()
        return torch.from_numpy(session.run(None, {name: x})[0][0])

    return stylize, meta
