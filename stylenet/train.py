"""Train one style: `python train.py style=anime [data=coco data.root=...] [trainer.max_steps=N]`.

The only module that knows Hydra: it composes configs/, checks them, builds plain objects, fits and
exports checkpoints/<style>.ckpt (+ .safetensors).

Several styles in one net: `python train.py model=cin styles=[starry_night,wave]` (or
model=stylebank); add one to a trained model with `styles=[starry_night,wave,scream]
model.init=checkpoints/cin-starry_night-wave.ckpt` (see fit_multistyle).
"""

from __future__ import annotations

import logging
import math
import netrc
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from stylenet.evaluate import evaluate, format_table, load_photos, table_rows
from stylenet.files.images import ImageError, load_image
from stylenet.losses.loss_net import LossNet, VGGWeightsError, check_layers
from stylenet.nets.adain import Encoder
from stylenet.nets.cin import CINNet
from stylenet.nets.stylebank import StyleBankNet
from stylenet.nets.transform_net import OUTPUTS
from stylenet.stylize.checkpoint import CheckpointError, check_resumable, load_model, save_model
from stylenet.stylize.precision import cpu_has_bf16
from stylenet.stylize.shipped import resolve_model
from stylenet.training.adain_module import AdaINModule
from stylenet.training.data import NoImagesError, PairDataModule, PhotoDataModule, find_artworks
from stylenet.training.johnson_module import NonFiniteLossError, StyleTransferModule
from stylenet.training.lightning_io import SafeCheckpointIO
from stylenet.training.multistyle_module import MULTI_STYLE_KINDS, MultiStyleModule

log = logging.getLogger("stylenet")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_name(name: str | None, kind: str, styles: Any, style: str) -> str:
    """The run folder's name (outputs/<name>/<time>): model.name, else <kind>-<styles> for a
    multi-style run (the export's default name), else the style."""
    if name:
        return str(name)
    if kind in MULTI_STYLE_KINDS and styles:
        return "-".join([kind, *map(str, styles)])
    return str(style)


OmegaConf.register_new_resolver("run_name", run_name, replace=True)


class ConfigError(ValueError):
    """A mistake in the composed configuration, reported in one line before any model is built."""


class Interrupted(Exception):
    """Training was stopped by Ctrl-C or SIGTERM after last.ckpt was saved."""


class StopOnSignal(Callback):
    """First Ctrl-C or SIGTERM: finish the current step, then stop (last.ckpt is saved after fit).

    A second Ctrl-C aborts at once.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        self.trainer.should_stop = True
        log.warning("%s: stopping after this step", signal.Signals(signum).name)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.trainer = trainer
        self._previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for sig in self._previous:  # after Lightning's own SIGTERM handler, which exits with 0
            signal.signal(sig, self._handle)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


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
    """The model group's constructor arguments (all its keys but `kind` and `init`)."""
    return {k: v for k, v in cfg.model.items() if k not in ("kind", "init")}


def load_init(init: str) -> tuple[torch.nn.Module, dict[str, Any], Path]:
    """(net, meta, file) of model.init: a path (or relative to the project), the user's
    checkpoints/<name>.ckpt, or a shipped model's name; ConfigError if it cannot be used."""
    try:
        path = resolve_path(str(init))
        path = path if path.is_file() else resolve_model(str(init), announce=log.info)
        net, meta = load_model(path)
    except CheckpointError as e:
        raise ConfigError(f"model.init: {e}") from None
    return net, meta, path


def johnson_init(cfg: DictConfig, net: torch.nn.Module) -> dict[str, Any]:
    """Load model.init (a trained single-style model, shipped name or file) into net; return its
    meta ({} without model.init). Its architecture must match the configured one."""
    init = cfg.model.get("init")
    if not init:
        return {}
    source, meta, path = load_init(init)
    if meta.get("kind", "johnson") != "johnson":
        raise ConfigError(f"model.init={init}: a {meta.get('kind')} model, not a johnson net")
    try:
        net.load_state_dict(source.state_dict())
    except RuntimeError:
        raise ConfigError(
            f"model.init={init}: its net ({meta.get('arch')}) differs from the configured "
            "model (channels, num_residual, output, photo_colors, cel)"
        ) from None
    log.info("model.init: starting from %s (%s steps)", path, meta.get("steps", "?"))
    return {**meta, "file": str(path)}


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


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def build_logger(cfg: DictConfig, run_dir: Path) -> Any:
    """Logger from configs/logger/*.yaml; W&B runs offline unless the user is logged in."""
    if not cfg.get("_target_"):
        return False
    kwargs: dict[str, Any] = {"save_dir": str(run_dir)}
    if "WandbLogger" in cfg._target_:
        if cfg.get("offline") is None:
            kwargs["offline"] = not wandb_logged_in()
        mode = "offline" if kwargs.get("offline", cfg.get("offline")) else "online"
        log.info("W&B logging %s into %s", mode, run_dir / "wandb")
    return instantiate(cfg, **kwargs)


def run_training(
    cfg: DictConfig, run_dir: Path, module: pl.LightningModule, data: Any, precision: str
) -> pl.Trainer:
    """Fit with the run folder's machinery (periodic and final last.ckpt, resume from ckpt_path,
    Ctrl-C/SIGTERM stop, loggers, unreadable-file report); raises Interrupted after a signal."""
    ckpt_dir = run_dir / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_train_steps=cfg.checkpoint_every
    )
    stop = StopOnSignal()
    trainer = pl.Trainer(
        **{**OmegaConf.to_container(cfg.trainer, resolve=True), "precision": precision},
        logger=build_logger(cfg.logger, run_dir),
        callbacks=[checkpoint, stop],
        plugins=[SafeCheckpointIO()],
        default_root_dir=str(run_dir),
    )
    ckpt_path = str(resolve_path(cfg.ckpt_path)) if cfg.ckpt_path else None
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    finally:
        if skipped := data.skipped():
            names = ", ".join(p.name for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
            log.warning("skipped %d unreadable image file(s): %s", len(skipped), names)
    # collective under ddp: every rank calls it
    trainer.save_checkpoint(ckpt_dir / "last.ckpt", weights_only=False)
    if trainer.global_rank == 0 and stop.signal is not None:
        raise Interrupted(
            f"stopped by {signal.Signals(stop.signal).name} at step {trainer.global_step}; saved "
            f"{ckpt_dir / 'last.ckpt'} (resume with ckpt_path={ckpt_dir / 'last.ckpt'})"
        )
    return trainer


def export(out: Path, net: torch.nn.Module, meta: dict[str, Any], run_dir: Path) -> None:
    """The trained model as out (.ckpt) and a .safetensors twin in the run folder (not beside
    out: checkpoints/<name>.safetensors is the shipped model's file)."""
    save_model(out, net, meta)
    twin = save_model(run_dir / out.with_suffix(".safetensors").name, net, meta)
    log.info("run folder: %s", run_dir)
    log.info("exported %s after %d steps (safetensors: %s)", out, meta["steps"], twin)


def fit(cfg: DictConfig, run_dir: Path) -> Path:
    """Build everything from cfg, train, export; returns the exported checkpoint path."""
    return RECIPES[cfg.model.get("kind", "johnson")](cfg, run_dir)


def fit_johnson(cfg: DictConfig, run_dir: Path) -> Path:
    """One style: the Johnson transform net (model=johnson)."""
    style_path = check_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    try:
        style_image = load_image(style_path, max_side=cfg.style.image_size)
    except ImageError as e:
        raise ConfigError(f"style image: {e}") from None
    loss_net = LossNet(
        list(cfg.loss.content_layers) + list(cfg.loss.style_layers),
        weights=str(cfg.loss.vgg_weights),
        arch=cfg.loss.arch,
    )
    precision, compile_ = resolve_speed(cfg)
    log.info(
        "precision %s, torch.compile %s (trainer.precision=%s, compile=%s)",
        precision,
        "on" if compile_ else "off",
        cfg.trainer.get("precision", "auto"),
        cfg.get("compile", "auto"),
    )
    normalize = bool(cfg.loss.get("normalize", False))
    module = StyleTransferModule(
        style_image,
        loss_net,
        style_name=cfg.style.name,
        content_layers=list(cfg.loss.content_layers),
        style_layers=list(cfg.loss.style_layers),
        content_weight=float(cfg.style.content_weight),
        style_weight=float(cfg.style.style_weight),
        tv_weight=cfg.style.tv_weight,
        lr=cfg.lr,
        style_luminance_only=luminance_only(cfg),
        normalize=normalize,
        color_weight=float(cfg.style.get("color_weight", 0.0)),
        cartoon_weight=float(cfg.style.get("cartoon_weight", 0.0)),
        temporal_weight=float(cfg.style.get("temporal_weight", 0.0)),
        compile=compile_,
        **{
            **net_args(cfg),
            "output": model_output(cfg),
            "photo_colors": model_flag(cfg, "photo_colors"),
            "cel": model_flag(cfg, "cel"),
        },
    )
    init_meta = johnson_init(cfg, module.net)  # a resume then restores its own weights
    data = PhotoDataModule(**cfg.data, seed=cfg.seed)
    trainer = run_training(cfg, run_dir, module, data, precision)
    if trainer.global_rank != 0:
        return run_dir / "checkpoints" / "last.ckpt"
    meta = {
        "style": cfg.style.name,
        "steps": trainer.global_step + int(init_meta.get("steps", 0)),
        "training": {
            "style_image": str(style_path),
            "content_layers": list(cfg.loss.content_layers),
            "style_layers": list(cfg.loss.style_layers),
            "content_weight": cfg.style.content_weight,
            "style_weight": cfg.style.style_weight,
            "tv_weight": cfg.style.tv_weight,
            "vgg_weights": str(cfg.loss.vgg_weights),
            "image_size": cfg.data.image_size,
            "arch": cfg.loss.arch,
            "style_size": cfg.style.image_size,
            "style_luminance_only": module.objective.style_luminance_only,
            "normalize": normalize,
            "color_weight": module.objective.color_weight,
            "cartoon_weight": module.objective.cartoon_weight,
            "temporal_weight": module.hparams.temporal_weight,
            "batch_size": cfg.data.batch_size,
            "lr": cfg.lr,
            "run_steps": trainer.global_step,
        },
    }
    if init_meta:
        meta["training"]["init"] = {
            "file": Path(init_meta["file"]).name,
            "style": init_meta.get("style"),
            "steps": init_meta.get("steps"),
        }
    out = Path(cfg.export_dir) / f"{cfg.style.name}.ckpt"
    export(out, module.net, meta, run_dir)
    if cfg.get("evaluate") and cfg.evaluate.steps > 0:
        run_evaluation(cfg, module, data, trainer)
    return out


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


def fit_adain(cfg: DictConfig, run_dir: Path) -> Path:
    """model=adain: learn the AdaIN decoder from photos (data=...) and artworks (style_data=...)."""
    artworks = check_adain(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    m, sd = cfg.model, cfg.style_data
    encoder = Encoder(weights=str(m.vgg_weights))
    precision, _ = resolve_speed(cfg)
    log.info("precision %s; %d artworks from style_data.root", precision, len(artworks))
    module = AdaINModule(
        encoder,
        content_weight=float(m.content_weight),
        style_weight=float(m.style_weight),
        lr=cfg.lr,
        lr_decay=float(m.lr_decay),
        channels_last=bool(m.channels_last),
        identity_weight=float(m.identity_weight),
    )
    init_meta: dict[str, Any] = {}
    if m.get("init"):
        source, init_meta, path = load_init(m.init)
        if init_meta.get("kind") != "adain":
            raise ConfigError(f"model.init={m.init}: a {init_meta.get('kind', 'johnson')} model")
        module.decoder.load_state_dict(source.decoder.state_dict())
        log.info("model.init: the decoder starts from %s (%s steps)", path, init_meta.get("steps"))
    data = PairDataModule(
        artworks,
        style_image_size=sd.image_size,
        val_styles=sd.val_images,
        **cfg.data,
        seed=cfg.seed,
    )
    trainer = run_training(cfg, run_dir, module, data, precision)
    if trainer.global_rank != 0:
        return run_dir / "checkpoints" / "last.ckpt"
    meta = {
        "kind": "adain",
        "style": str(m.name),
        "steps": trainer.global_step + int(init_meta.get("steps", 0)),
        "encoder": {"arch": "vgg19", "weights": str(m.vgg_weights), "layer": "relu4_1"},
        "training": {
            "artworks": [p.name for p in artworks],
            "excluded": list(sd.get("exclude") or []),
            "content_weight": float(m.content_weight),
            "style_weight": float(m.style_weight),
            "lr": float(cfg.lr),
            "image_size": cfg.data.image_size,
            "style_size": sd.image_size,
            "batch_size": cfg.data.batch_size,
        },
    }
    if init_meta:
        meta["training"]["init"] = {k: init_meta.get(k) for k in ("style", "steps")}
    out = Path(cfg.export_dir) / f"{m.name}.ckpt"
    export(out, module.decoder, meta, run_dir)
    return out


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


def multistyle_init(cfg: DictConfig, configs: dict[str, DictConfig]) -> tuple[Any, dict, list[str]]:
    """(net, its meta, the styles to add) from model.init, a trained model of the same kind
    (or, for CIN, a single-style net to start every style from); (None, {}, styles) without
    one. configs: each style's config (style_configs)."""
    styles = list(configs)
    init = cfg.model.get("init")
    if not init:
        return None, {}, styles
    net, meta, _ = load_init(init)
    kind = meta.get("kind", "johnson")
    if kind == "johnson" and cfg.model.kind == "cin":  # a warm start: every style trains
        m = cfg.model
        cin = CINNet(styles, m.channels, m.num_residual, net.output, **cin_stages(cfg, configs))
        try:
            cin.load_transform_net(net)
        except RuntimeError:
            raise ConfigError(f"model.init={init}: its net differs from model.channels and "
                              "model.num_residual") from None  # fmt: skip
        log.info("model.init: CIN starts from the single-style net %s (%s)", init, meta["style"])
        return cin.train(), {}, styles
    if kind != cfg.model.kind:
        raise ConfigError(f"model.init={init}: a {kind} model, not {cfg.model.kind}")
    new = [s for s in styles if s not in net.styles]
    if not new:
        raise ConfigError(
            f"model.init={init} already has styles {', '.join(net.styles)}; list a new one in "
            "styles= to add it"
        )
    net.add_styles(new)
    return net.train(), meta, new


def fit_multistyle(cfg: DictConfig, run_dir: Path) -> Path:
    """model=cin / stylebank: one net for cfg.styles; with model.init, only the styles that model
    lacks are trained and everything else stays frozen. Returns the exported checkpoint path."""
    kind = cfg.model.kind
    configs = style_configs(cfg)
    paths = {name: check_config(with_style(cfg, c)) for name, c in configs.items()}
    outputs = {model_output(with_style(cfg, c)) for c in configs.values()}
    if len(outputs) > 1:
        raise ConfigError(f"the styles ask for different model.output {sorted(outputs)}; set one")
    pl.seed_everything(cfg.seed, workers=True)
    net, init_meta, train_styles = multistyle_init(cfg, configs)
    if net is None:
        m = cfg.model
        arch = {"channels": m.channels, "output": outputs.pop()}
        if kind == "cin":
            stages = cin_stages(cfg, configs)
            net = CINNet(list(configs), num_residual=m.num_residual, **arch, **stages)
        else:
            net = StyleBankNet(list(configs), bank_layers=m.bank_layers, **arch)
    images, settings = {}, {}
    for name in train_styles:
        c = configs[name]
        try:
            images[name] = load_image(paths[name], max_side=c.image_size)
        except ImageError as e:
            raise ConfigError(f"style image of {name}: {e}") from None
        settings[name] = {
            "content_weight": float(c.content_weight),
            "style_weight": float(c.style_weight),
            "tv_weight": float(c.tv_weight),
            "style_luminance_only": luminance_only(with_style(cfg, c)),
            "color_weight": float(c.get("color_weight", 0.0)),
            "cartoon_weight": float(c.get("cartoon_weight", 0.0)),
            "temporal_weight": float(c.get("temporal_weight", 0.0)),
        }
    loss_net = LossNet(
        list(cfg.loss.content_layers) + list(cfg.loss.style_layers),
        weights=str(cfg.loss.vgg_weights),
        arch=cfg.loss.arch,
    )
    precision, _ = resolve_speed(cfg)  # torch.compile: single-style nets only for now
    normalize = bool(cfg.loss.get("normalize", False))
    module = MultiStyleModule(
        net,
        images,
        settings,
        loss_net,
        train_styles=train_styles,
        freeze_shared=bool(init_meta),
        content_layers=list(cfg.loss.content_layers),
        style_layers=list(cfg.loss.style_layers),
        normalize=normalize,
        lr=cfg.lr,
        stylize_steps=int(cfg.model.get("stylize_steps", 2)),
        reconstruction_weight=float(cfg.model.get("reconstruction_weight", 1.0)),
        channels_last=bool(cfg.model.get("channels_last", True)),
    )
    log.info(
        "%s: training %s%s", kind, ", ".join(train_styles),
        f" (added to {cfg.model.init}; its styles and shared weights frozen)" if init_meta else "",
    )  # fmt: skip
    data = PhotoDataModule(**cfg.data, seed=cfg.seed)
    trainer = run_training(cfg, run_dir, module, data, precision)
    if trainer.global_rank != 0:
        return run_dir / "checkpoints" / "last.ckpt"
    steps = [module.branch(i) for i in range(trainer.global_step)]
    training = dict(init_meta.get("training", {}))
    for name in train_styles:
        training[name] = {
            **settings[name],
            "style_image": str(paths[name]),
            "content_layers": list(cfg.loss.content_layers),
            "style_layers": list(cfg.loss.style_layers),
            "vgg_weights": str(cfg.loss.vgg_weights),
            "image_size": cfg.data.image_size,
            "arch": cfg.loss.arch,
            "style_size": configs[name].image_size,
            "normalize": normalize,
            "steps": steps.count(name),
            "lr": cfg.lr,
        }
    name = cfg.model.get("name") or "-".join([kind, *net.styles])
    meta = {"style": name, "steps": trainer.global_step, "training": training}
    if kind == "stylebank":
        meta["autoencoder"] = {
            "steps": steps.count(None) + init_meta.get("autoencoder", {}).get("steps", 0),
            "stylize_steps": module.hparams.stylize_steps,
            "reconstruction_weight": module.hparams.reconstruction_weight,
        }
    out = Path(cfg.export_dir) / f"{name}.ckpt"
    if init_meta and out.resolve() == resolve_path(cfg.model.init).resolve():
        raise ConfigError(f"{out} would overwrite model.init; set model.name=<new name>")
    export(out, net, meta, run_dir)
    if cfg.get("evaluate") and cfg.evaluate.steps > 0:
        log.warning("evaluate.steps: run python -m stylenet.evaluate --style NAME per style")
    return out


RECIPES = {  # model=<kind> -> its fit recipe
    "johnson": fit_johnson,
    "cin": fit_multistyle,
    "stylebank": fit_multistyle,
    "adain": fit_adain,
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


def run_evaluation(
    cfg: DictConfig, module: StyleTransferModule, data: PhotoDataModule, trainer: pl.Trainer
) -> dict:
    """stylenet.evaluate on held-out photos (evaluate.images, else the validation photos); the
    table goes to the log and to every logger (a W&B table, or eval/* metrics for CSV)."""
    e = cfg.evaluate
    if e.images:
        photos = load_photos([str(resolve_path(e.images))], e.size)
    else:
        photos = load_photos(data.val_files or data.train_files[:2], e.size)
    report = evaluate(module.net, module.objective, photos, e.steps, device=module.device)
    log.info("held-out evaluation:\n%s", format_table(report))
    cols, rows = table_rows(report)
    for logger in trainer.loggers:
        if hasattr(logger, "log_table"):
            logger.log_table("eval/table", columns=cols, data=rows)
        summary = {
            "eval/model_total": report["model"]["total"],
            "eval/optimized_total": report["optimization"][-1]["total"],
            "eval/steps_to_match": -1
            if report["steps_to_match"] is None
            else report["steps_to_match"],
        }
        logger.log_metrics(summary, step=trainer.global_step)
        logger.save()
    return report


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "configs"), config_name="train")
def hydra_main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if str(cfg.loss.vgg_weights) == "random":
        warnings.simplefilter("always", UserWarning)
    # the training sampler restarts at the restored global step (data.StepSampler), so a
    # mid-epoch resume is exact although the DataLoader has no state_dict of its own
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable")
    torch.set_float32_matmul_precision("high")
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode")  # the frozen VGG
    warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")  # Lightning
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        fit(cfg, run_dir)
    except (ConfigError, VGGWeightsError, FileNotFoundError, CheckpointError) as e:
        log.error("error: %s", e)
        sys.exit(2)
    except NoImagesError as e:
        line = str(e).strip().splitlines()[-1]  # raised in a worker: its traceback comes first
        log.error("error: %s", line.removeprefix("stylenet.training.data.NoImagesError: "))
        sys.exit(2)
    except NonFiniteLossError as e:
        kept = f"last good checkpoint: {last}" if last.is_file() else "no checkpoint was written"
        log.error("error: %s; %s", e, kept)
        sys.exit(3)
    except Interrupted as e:
        log.warning("%s", e)
        sys.exit(130)


def main() -> None:
    """Entry point: check config-group names, then let Hydra compose and run."""
    try:
        check_groups(sys.argv[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
