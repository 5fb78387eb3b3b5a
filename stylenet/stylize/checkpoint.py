"""Exported style models: transform-net weights plus primitive metadata, nothing executable.

Two formats carry the same content: `<style>.ckpt` (torch, read with weights_only=True) and
`<style>.safetensors` (metadata as JSON in the header). Lightning's own `last.ckpt` files also load.
Every write goes to a temporary file that is renamed into place, so a kill never leaves half a file.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from stylenet.files.atomic import atomic_write
from stylenet.nets.cin import CINNet
from stylenet.nets.stylebank import StyleBankNet
from stylenet.nets.transform_net import TransformNet

FORMAT = "stylenet-model"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and why."""


MULTI_STYLE = {"cin": CINNet, "stylebank": StyleBankNet}  # kind -> net class


def save_model(
    path: str | os.PathLike, net: nn.Module, meta: dict[str, Any], half: bool = False
) -> Path:
    """Write net + meta to path; the suffix (.ckpt/.pt or .safetensors) picks the format.

    half: floating-point tensors are stored as float16 (they load back into float32 nets).

    meta["kind"] names the kind: johnson (the default) and the multi-style nets record their
    arch here, a multi-style net also its style names (meta["styles"]); an AdaIN checkpoint holds
    the decoder only (net: the AdaINNet or its decoder), and meta["encoder"] the VGG weights to
    load it with.
    """
    from stylenet.nets.adain import AdaINNet

    base: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": "johnson"}
    if isinstance(net, AdaINNet):  # the encoder is the VGG19 that meta["encoder"] names
        net, base["kind"] = net.decoder, "adain"
    if isinstance(net, TransformNet):
        base["arch"] = {
            "channels": net.channels,
            "num_residual": net.num_residual,
            "output": net.output,
            "photo_colors": net.photo_colors,
            "cel": net.cel,
        }
    elif isinstance(net, (CINNet, StyleBankNet)):
        base.update(kind=net.kind, arch=net.arch())
        meta = {**meta, "styles": list(net.styles)}
    meta = {**base, **meta}
    json.dumps(meta)  # primitives only: fail here rather than write something unloadable
    dtype = torch.float16 if half else torch.float32
    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v).cpu().contiguous()
        for k, v in net.state_dict().items()
    }
    if Path(path).suffix == ".safetensors":
        return atomic_write(path, lambda tmp: save_file(state, tmp, {"stylenet": json.dumps(meta)}))
    return atomic_write(path, lambda tmp: torch.save({**meta, "state_dict": state}, tmp))


def safe_torch_load(path: Path) -> Any:
    """torch.load restricted to tensors and plain data; a pickle that could run code is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unpickling refused"
        raise CheckpointError(
            f"{path}: refused, the file holds more than tensors and plain data, which could run "
            f"code when loaded ({first[:200]}). Only load checkpoints from sources you trust."
        ) from None
    except Exception as e:  # zip, EOF, OS, safetensors (by suffix) ... errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first[:200]})") from None


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """A model file's metadata (kind, styles, arch, training ...) without building its net."""
    return read_checkpoint(Path(path))[1]


def header_meta(path: Path) -> dict[str, Any]:
    """A .safetensors file's metadata from its header alone: the tensors are neither read nor
    checked, so only for files already verified (the shipped ones, by their sha256)."""
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as f:
            return json.loads((f.metadata() or {}).get("stylenet", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors model ({e})") from None


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) of a .ckpt, .safetensors or Lightning last.ckpt; CheckpointError."""
    if path.suffix == ".safetensors":
        try:
            state = load_file(path)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors model ({e})") from None
        return state, header_meta(path)
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise CheckpointError(f"{path}: not a stylenet checkpoint (no state_dict)")
    state = obj["state_dict"]
    if obj.get("format") == FORMAT:
        meta = {k: v for k, v in obj.items() if k != "state_dict"}
        return state, meta
    # a Lightning training checkpoint (outputs/<style>/<run>/checkpoints/last.ckpt)
    hp = obj.get("hyper_parameters", {})
    if any(k.startswith("decoder.") for k in state):  # model=adain
        dec = {k.removeprefix("decoder."): v for k, v in state.items() if k.startswith("decoder.")}
        return dec, {"kind": "adain", "style": "adain"}
    net_state = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    kind = hp.get("kind", hp.get("family"))  # runs before the layout change said "family"
    if kind in MULTI_STYLE:  # stylenet.training.multistyle_module's module
        names = ("channels", "num_residual", "bank_layers", "output")
        arch = {k: v for k, v in hp.get("net_args", {}).items() if k in names}
        return net_state, {"kind": kind, "styles": list(hp["styles"]), "arch": arch}
    meta = {
        "style": hp.get("style_name", path.stem),
        "arch": {
            "channels": hp.get("channels", 32),
            "num_residual": hp.get("num_residual", 5),
            "output": hp.get("output", "sigmoid"),
            "photo_colors": hp.get("photo_colors", False),
            "cel": hp.get("cel", False),
        },
    }
    return net_state, meta


def load_model(
    path: str | os.PathLike, single_style: bool = False
) -> tuple[nn.Module, dict[str, Any]]:
    """(net in eval mode on CPU, metadata) from a .ckpt, .safetensors or last.ckpt.

    The net's class follows meta["kind"]: TransformNet (johnson, also when the file predates the
    key); CINNet or StyleBankNet (whose `bind(style)` gives the stylizer of a style or mix); an
    AdaINNet (decoder from the file, VGG19 encoder from the weights meta["encoder"] names).
    single_style: CheckpointError for a multi-style model (commands that cannot pick a style).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    state, meta = read_checkpoint(path)
    kind = meta.get("kind", "johnson")
    if kind == "adain" and single_style:
        raise CheckpointError(
            f"{path}: an AdaIN model; this command takes single-style models (infer.py --ckpt "
            "... --style art.jpg stylizes with it)"
        )
    if kind == "adain":
        return _load_adain(path, state, meta)
    arch = meta.get("arch", {})
    if kind in MULTI_STYLE and single_style:
        raise CheckpointError(
            f"{path}: a {kind} model with styles {', '.join(meta.get('styles') or [])}; this "
            "command takes single-style models (infer.py --ckpt ... --style NAME stylizes with one)"
        )
    if kind in MULTI_STYLE:
        try:
            net = MULTI_STYLE[kind](list(meta.get("styles") or []), **arch)
            net.load_state_dict(state)
        except (ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{path}: not a usable {kind} model ({e})") from None
        meta.setdefault("style", path.stem)
        return net.eval(), meta
    if kind != "johnson":
        raise CheckpointError(f"{path}: a model of kind {kind!r}, which this version cannot load")
    try:
        net = TransformNet(
            int(arch.get("channels", 32)),
            int(arch.get("num_residual", 5)),
            str(arch.get("output", "sigmoid")),
            bool(arch.get("photo_colors", False)),
            bool(arch.get("cel", False)),
        )
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the transform net ({e})") from None
    meta.setdefault("style", path.stem)
    return net.eval(), meta


def _load_adain(
    path: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]
) -> tuple[nn.Module, dict[str, Any]]:
    from stylenet.losses.loss_net import VGGWeightsError
    from stylenet.nets.adain import ENCODER_LAYER, AdaINNet, Decoder, Encoder, layer_scales

    weights = str(meta.setdefault("encoder", {}).get("weights", "original"))
    decoder = Decoder(layer_scales(weights)[ENCODER_LAYER])
    try:
        decoder.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the AdaIN decoder ({e})") from None
    try:
        encoder = Encoder(weights)
    except VGGWeightsError as e:
        raise CheckpointError(f"{path}: the AdaIN encoder's VGG19 weights: {e}") from None
    meta.setdefault("style", path.stem)
    return AdaINNet(decoder, encoder).eval(), meta


def check_resumable(path: str | os.PathLike) -> int:
    """Global step of a Lightning training checkpoint (last.ckpt); CheckpointError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={str(path)!r}: no such checkpoint file")
    obj = safe_torch_load(path)
    keys = ("state_dict", "loops", "optimizer_states", "global_step")
    missing = [k for k in keys if k not in obj] if isinstance(obj, dict) else list(keys)
    if missing:
        raise CheckpointError(
            f"{path}: not a training checkpoint to resume from (missing {missing}); "
            "resume from a run's checkpoints/last.ckpt"
        )
    return int(obj["global_step"])
