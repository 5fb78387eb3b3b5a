"""One fit recipe per model kind (RECIPES): build the net, module and data from the config,
train with the runner, export checkpoints/<name>.ckpt.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig

from stylenet.files.images import ImageError, load_image
from stylenet.losses.loss_net import LossNet
from stylenet.nets.adain import Encoder
from stylenet.nets.cin import CINNet
from stylenet.nets.stylebank import StyleBankNet
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize.checkpoint import CheckpointError, read_meta, save_model
from stylenet.stylize.shipped import shipped_names, verified
from stylenet.training.adain_module import AdaINModule
from stylenet.training.config import (
    ConfigError,
    check_adain,
    check_config,
    cin_stages,
    ema_decay,
    luminance_only,
    model_flag,
    model_output,
    net_args,
    resolve_path,
    resolve_speed,
    style_configs,
    with_style,
)
from stylenet.training.data import PairDataModule, PhotoDataModule
from stylenet.training.johnson_module import StyleTransferModule
from stylenet.training.multistyle_module import MultiStyleModule
from stylenet.training.runner import export, load_init, run_evaluation, run_training

log = logging.getLogger("stylenet")


AUTO_DONOR = "starry_night"  # model.init=auto's start for a painting with no shipped net of its own


def auto_init(style: str, net: TransformNet) -> Path | None:
    """model.init=auto: the shipped net of `style`, else the shipped AUTO_DONOR, if its net is the
    configured one; None (from scratch) for a net with the cel stage, whose start has not been
    measured to pay. From a trained painting net a new painting reaches the held-out objective of
    a from-scratch run in a seventh of its CPU time (docs/speed.md, "Time to quality")."""
    if net.cel:
        return None
    arch = {k: getattr(net, k) for k in ("channels", "num_residual", "output", "photo_colors")}
    shipped = shipped_names()
    for name in dict.fromkeys((style, AUTO_DONOR)):
        if name in shipped:
            try:
                path = verified(name)
            except CheckpointError as e:
                raise ConfigError(f"model.init=auto: {e}") from None
            theirs = read_meta(path).get("arch", {})
            if all(theirs.get(k) == v for k, v in arch.items()) and not theirs.get("cel"):
                return path
    return None


def johnson_init(cfg: DictConfig, net: TransformNet) -> dict[str, Any]:
    """Load model.init (a trained single-style model, shipped name or file, or auto) into net;
    return its meta ({} without one). Its architecture must match the configured one."""
    init = cfg.model.get("init")
    if init == "auto":
        init = auto_init(cfg.style.name, net)
        if init is None:
            why = "a net with the cel stage" if net.cel else "no shipped painting net of its shape"
            log.info("model.init=auto: training from scratch (%s)", why)
            return {}
        log.info("model.init=auto: starting from the shipped %s (null: from scratch)", init.stem)
    if not init:
        return {}
    source, meta, path = load_init(init)
    if meta.get("kind", "johnson") != "johnson":
        raise ConfigError(f"model.init={init}: a {meta.get('kind')} model, not a johnson net")
    added = net.num_residual - source.num_residual
    try:
        if added > 0:  # a deeper net: the trained one plus identity blocks
            net.load_shallower(source.state_dict(), source.num_residual)
        else:
            net.load_state_dict(source.state_dict())
    except RuntimeError:
        raise ConfigError(
            f"model.init={init}: its net ({meta.get('arch')}) differs from the configured "
            "model (channels, num_residual, output, photo_colors, cel); a deeper "
            "model.num_residual than its own starts from it"
        ) from None
    deeper = f", {added} identity blocks added" if added > 0 else ""
    log.info("model.init: starting from %s (%s steps%s)", path, meta.get("steps", "?"), deeper)
    return {**meta, "file": str(path)}


def fit(cfg: DictConfig, run_dir: Path) -> Path:
    """Build everything from cfg, train, export; returns the exported checkpoint path."""
    return RECIPES[cfg.model.get("kind", "johnson")](cfg, run_dir)


def johnson_meta(
    cfg: DictConfig,
    module: StyleTransferModule,
    style_path: Path,
    init_meta: dict[str, Any],
    run_steps: int,
) -> dict[str, Any]:
    """What a single-style model file records after run_steps steps of this run."""
    normalize = bool(cfg.loss.get("normalize", False))
    meta = {
        "style": cfg.style.name,
        "steps": run_steps + int(init_meta.get("steps", 0)),
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
            "ema_decay": ema_decay(cfg),
            "run_steps": run_steps,
        },
    }
    if init_meta:
        meta["training"]["init"] = {
            "file": Path(init_meta["file"]).name,
            "style": init_meta.get("style"),
            "steps": init_meta.get("steps"),
        }
    return meta


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

    def snapshot(path: Path, step: int, seconds: float) -> None:
        meta = johnson_meta(cfg, module, style_path, init_meta, step)
        save_model(path, module.net, {**meta, "cpu_seconds": seconds})

    trainer = run_training(cfg, run_dir, module, data, precision, snapshot)
    if trainer.global_rank != 0:
        return run_dir / "checkpoints" / "last.ckpt"
    meta = johnson_meta(cfg, module, style_path, init_meta, trainer.global_step)
    out = Path(cfg.export_dir) / f"{cfg.model.get('name') or cfg.style.name}.ckpt"
    export(out, module.net, meta, run_dir)
    if cfg.get("evaluate") and cfg.evaluate.steps > 0:
        run_evaluation(cfg, module, data, trainer)
    return out


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


def multistyle_init(cfg: DictConfig, configs: dict[str, DictConfig]) -> tuple[Any, dict, list[str]]:
    """(net, its meta, the styles to train) from model.init, a trained model of the same kind
    (the styles it lacks, or all of them when `styles` lists exactly its own) or, for CIN, a
    single-style net to start every style from; (None, {}, styles) without one. configs: each
    style's config (style_configs)."""
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
    if kind == "cin" and cfg.model.num_residual > net.body.num_residual:  # plus identity blocks
        b = net.body
        grown = CINNet(net.styles, b.channels, cfg.model.num_residual, b.output, net.photo_colors,
                       net.cel)  # fmt: skip
        grown.load_shallower(net)
        log.info("model.init: %d identity blocks added", grown.body.num_residual - b.num_residual)
        net = grown
    new = [s for s in styles if s not in net.styles]
    if not new:
        if net.styles != styles:
            raise ConfigError(
                f"model.init={init} has styles {', '.join(net.styles)}: list them all, in that "
                "order, to continue its training, or add a new one to train only that"
            )
        log.info("model.init: continuing %s (%s steps), every style trains", init, meta["steps"])
        return net.train(), meta, styles
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
    stylize_steps = int(cfg.model.get("stylize_steps", 2))
    turns = dict(cfg.model.get("turns") or {})
    try:
        MultiStyleModule.check_schedule(train_styles, stylize_steps, turns)
    except ValueError as e:  # model.turns naming a style that does not train, or not >= 1
        raise ConfigError(f"model.{e}") from None
    spike_weight = float(cfg.model.get("spike_weight") or 0)  # checked by check_run
    if net is None:
        m = cfg.model
        arch = {"channels": m.channels, "output": outputs.pop()}
        if kind == "cin":
            stages = cin_stages(cfg, configs)
            net = CINNet(list(configs), num_residual=m.num_residual, **arch, **stages)
        else:
            net = StyleBankNet(list(configs), bank_layers=m.bank_layers, **arch)
    # model.init of the same kind: it continues (all its styles train) or gains new styles (only
    # they train, the rest frozen)
    continued = bool(init_meta) and train_styles == net.styles
    added = bool(init_meta) and not continued
    images, settings = {}, {}
    temporal = cfg.model.get("temporal_weight")  # null: each style's own
    if temporal is None:
        temporal = {n: float(c.get("temporal_weight", 0.0)) for n, c in configs.items()}
    else:
        temporal = dict.fromkeys(configs, float(temporal))
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
            "temporal_weight": temporal[name],
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
        freeze_shared=added,
        content_layers=list(cfg.loss.content_layers),
        style_layers=list(cfg.loss.style_layers),
        normalize=normalize,
        lr=cfg.lr,
        stylize_steps=stylize_steps,
        reconstruction_weight=float(cfg.model.get("reconstruction_weight", 1.0)),
        channels_last=bool(cfg.model.get("channels_last", True)),
        turns=turns,
        spike_weight=spike_weight,
    )
    log.info(
        "%s: training %s%s", kind, ", ".join(train_styles),
        f" (added to {cfg.model.init}; its styles and shared weights frozen)" if added else "",
    )  # fmt: skip
    data = PhotoDataModule(**cfg.data, seed=cfg.seed)
    trainer = run_training(cfg, run_dir, module, data, precision)
    if trainer.global_rank != 0:
        return run_dir / "checkpoints" / "last.ckpt"
    steps = module.branch_steps
    training = dict(init_meta.get("training", {}))
    for name in train_styles:
        before = training.get(name, {}).get("steps", 0) if continued else 0
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
            "steps": steps.get(name, 0) + before,
            "lr": cfg.lr,
            "ema_decay": ema_decay(cfg),
            "spike_weight": spike_weight,
        }
    name = cfg.model.get("name") or "-".join([kind, *net.styles])
    steps_before = int(init_meta.get("steps", 0)) if continued else 0
    meta = {"style": name, "steps": trainer.global_step + steps_before, "training": training}
    if kind == "stylebank":
        meta["autoencoder"] = {
            "steps": steps.get("autoencoder", 0) + init_meta.get("autoencoder", {}).get("steps", 0),
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
