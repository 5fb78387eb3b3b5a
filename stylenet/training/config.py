"""Checks of the composed training config: one line naming the setting, before any work.

Used by `python train.py` (stylenet/train.py), which composes the config with Hydra.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from stylenet.losses.loss_net import check_layers
from stylenet.nets.transform_net import OUTPUTS
from stylenet.stylize.checkpoint import CheckpointError, check_resumable
from stylenet.stylize.precision import cpu_has_bf16
from stylenet.training.data import find_artworks

log = logging.getLogger("stylenet")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """A mistake in the composed configuration, reported in one line before any model is built."""


def resolve_path(p: str) -> Path:
    """A path as given, else relative to the project root (so configs work from any folder)."""
    path = Path(p).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path if (PROJECT_ROOT / path).exists() else path


def check_run(cfg: DictConfig) -> None:
    """The checks every model kind shares: lr, the photo folder, the checkpoint to resume."""
    lr = cfg.get("lr")
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"lr={lr!r} must be a finite number > 0")
    for key in ("cpu_minutes", "snapshot_minutes", "model.spike_weight"):
        v = OmegaConf.select(cfg, key) or 0
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{key}={v!r} must be a finite number >= 0 (0: off)")
    ema_decay(cfg)
    kind = cfg.model.get("kind", "johnson")
    if cfg.get("snapshot_minutes") and kind != "johnson":
        raise ConfigError(f"snapshot_minutes: single-style nets only, not model.kind={kind}")
    if cfg.data.source in ("coco", "folder"):
        root = cfg.data.get("root")
        if not root or not resolve_path(root).is_dir():
            hint = " (python -m stylenet.coco downloads it)" if cfg.data.source == "coco" else ""
            raise ConfigError(f"data.root={root!r} is not a folder of images{hint}")
    if cfg.get("ckpt_path"):
        try:
            check_resumable(resolve_path(cfg.ckpt_path))
        except CheckpointError as e:
            raise ConfigError(str(e)) from None


def ema_decay(cfg: DictConfig) -> float:
    """ema_decay=: 0 (off) or the decay of the weights' moving average, between 0 and 1."""
    v = cfg.get("ema_decay") or 0
    if not isinstance(v, (int, float)) or not (v == 0 or 0 < v < 1):
        raise ConfigError(f"ema_decay={v!r}: expected a number between 0 and 1 (0: off)")
    return float(v)


def check_config(cfg: DictConfig) -> Path:
    """Validate what can be validated without building anything; return the style image path."""
    s = cfg.style
    for key in ("content_weight", "style_weight", "tv_weight", "color_weight", "cartoon_weight"):
        v = s.get(key, 0.0)
        if not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
            shown = f"{v:g}" if isinstance(v, (int, float)) else repr(v)
            raise ConfigError(f"style.{key}={shown} must be a finite number >= 0")
    check_run(cfg)
    try:
        check_layers(list(cfg.loss.content_layers) + list(cfg.loss.style_layers), cfg.loss.arch)
    except ValueError as e:
        raise ConfigError(f"loss layers: {e}") from None
    for key in ("photo_colors", "cel"):
        for where, v in (("model", cfg.model.get(key)), ("style", s.get(key))):
            if v is not None and not isinstance(v, bool):
                raise ConfigError(f"{where}.{key}={v!r} must be true or false")
    output = model_output(cfg)
    if output not in OUTPUTS:
        raise ConfigError(f"model.output={output!r}: expected one of {', '.join(OUTPUTS)}")
    if not cfg.style.get("image"):
        raise ConfigError(f"style {s.name!r} has no image; pass style.image=<path>")
    image = resolve_path(s.image)
    if not image.is_file():
        raise ConfigError(
            f"style image {str(image)!r} for style {s.name!r} not found: put the artwork there "
            "or pass style.image=<path>"
        )
    return image


def luminance_only(cfg: DictConfig) -> bool:
    """loss.style_luminance_only when set (true/false), else the style's own choice."""
    forced = cfg.loss.get("style_luminance_only")
    return bool(cfg.style.get("luminance_only", False) if forced is None else forced)


def model_output(cfg: DictConfig) -> str:
    """model.output when set (sigmoid/linear/residual), else the style's own choice (default
    sigmoid)."""
    forced = cfg.model.get("output")
    return str(cfg.style.get("output", "sigmoid") if forced is None else forced)


def model_flag(cfg: DictConfig, key: str) -> bool:
    """model.<key> (photo_colors, cel) when set (true/false), else the style's own choice (default
    false)."""
    forced = cfg.model.get(key)
    return bool(cfg.style.get(key, False) if forced is None else forced)


def net_args(cfg: DictConfig) -> dict[str, Any]:
    """The model group's constructor arguments (all its keys but `kind`, `init` and `name`)."""
    return {k: v for k, v in cfg.model.items() if k not in ("kind", "init", "name")}


def resolve_speed(cfg: DictConfig) -> tuple[str, bool]:
    """(Lightning precision, compile?) for `trainer.precision=auto` and `compile=auto`.

    precision auto: bf16-mixed on GPUs and CPUs with native bf16, 16-mixed on older GPUs, else
    32-true. compile auto: on for CUDA only; on CPU torch.compile measured slower than eager here
    (see README, Speed) and its start-up cost would dominate short runs.
    """
    accel = str(cfg.trainer.get("accelerator", "auto"))
    cuda = torch.cuda.is_available() and accel in ("auto", "gpu", "cuda")
    precision = str(cfg.trainer.get("precision", "auto"))
    if precision == "auto":
        if cuda:
            precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        else:
            precision = "bf16-mixed" if cpu_has_bf16() else "32-true"
    compile_ = cfg.get("compile", "auto")
    if str(compile_) == "auto":
        compile_ = cuda
    elif not isinstance(compile_, bool):
        raise ConfigError(f"compile={compile_!r} must be auto, true or false")
    return precision, bool(compile_)


def check_adain(cfg: DictConfig) -> list[Path]:
    """Validate an AdaIN run's config; return the artworks to train on."""
    check_run(cfg)
    for key in ("content_weight", "style_weight", "lr_decay"):
        v = cfg.model.get(key)
        if not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v):
            raise ConfigError(f"model.{key}={v!r} must be a finite number >= 0")
    sd = cfg.style_data
    roots = [sd.root] if isinstance(sd.root, str) else list(sd.root or [])
    folders = [resolve_path(r) for r in roots]
    for r, folder in zip(roots, folders, strict=True):
        if not folder.is_dir():
            raise ConfigError(f"style_data.root: {r!r} is not a folder of artworks")
    files = find_artworks(folders, list(sd.get("exclude") or []))
    if not files:
        raise ConfigError(
            f"style_data.root={roots} holds no artworks (jpg/png/webp/bmp) "
            f"outside style_data.exclude={list(sd.get('exclude') or [])}"
        )
    return files


def style_configs(
    cfg: DictConfig, configs: Path = PROJECT_ROOT / "configs"
) -> dict[str, DictConfig]:
    """Each name in cfg.styles -> its configs/style/<name>.yaml; ConfigError for bad names."""
    styles = cfg.get("styles")
    kind = cfg.model.kind
    if not styles or isinstance(styles, str) or not all(isinstance(s, str) for s in styles):
        raise ConfigError(f"model={kind} needs styles=[name,name,...] (got {styles!r})")
    if len(set(styles)) != len(styles):
        raise ConfigError(f"styles={list(styles)}: a style is listed twice")
    known = sorted(p.stem for p in (configs / "style").glob("*.yaml"))
    out = {}
    for name in styles:
        if name not in known or name == "custom":
            choices = ", ".join(k for k in known if k != "custom")
            raise ConfigError(f"unknown style {name!r} in styles=; choose from {choices}")
        out[name] = OmegaConf.load(configs / "style" / f"{name}.yaml")
    return out


def with_style(cfg: DictConfig, style: DictConfig) -> DictConfig:
    """A copy of cfg whose style group is `style` (for the single-style checks and choices)."""
    out = cfg.copy()
    out.style = style
    return out


def cin_stages(cfg: DictConfig, configs: dict[str, DictConfig]) -> dict[str, list[str]]:
    """CINNet's photo_colors and cel: the styles whose own config (or model.<key>) asks for it."""
    return {
        k: [n for n, c in configs.items() if model_flag(with_style(cfg, c), k)]
        for k in ("photo_colors", "cel")
    }


def check_groups(overrides: list[str], configs: Path = PROJECT_ROOT / "configs") -> None:
    """ConfigError for `group=option` overrides naming no configs/<group>/<option>.yaml.

    Runs before Hydra, whose own message for this spans a dozen lines.
    """
    for arg in overrides:
        key, eq, value = arg.lstrip("+~").partition("=")
        folder = configs / key
        if not eq or "." in key or "@" in key or not folder.is_dir() or not value:
            continue
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        for option in value.split(","):
            if option not in known and option != "null":
                hint = " (or style=custom style.image=<path>)" if key == "style" else ""
                raise ConfigError(
                    f"unknown {key} {option!r}; choose one of {', '.join(known)}{hint}"
                )
