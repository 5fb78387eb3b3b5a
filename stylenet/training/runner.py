"""The training runner: loggers, the Lightning Trainer with safe checkpoints and signals,
export of the trained net and the held-out evaluation at the end of a run.
"""

from __future__ import annotations

import logging
import netrc
import os
import signal
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from stylenet.eval.held_out import evaluate, format_table, load_photos, table_rows
from stylenet.eval.timing import cpu_seconds
from stylenet.stylize.checkpoint import CheckpointError, load_model, save_model
from stylenet.stylize.shipped import resolve_model
from stylenet.training.config import ConfigError, ema_decay, resolve_path
from stylenet.training.data import PhotoDataModule
from stylenet.training.johnson_module import StyleTransferModule
from stylenet.training.lightning_io import SafeCheckpointIO
from stylenet.training.weight_average import WeightAverage

log = logging.getLogger("stylenet")


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


class CpuClock(Callback):
    """CPU time as the clock of a run: every `snapshot_minutes` of it, `snapshot(path, step,
    seconds)` writes the net to snapshots/cpu_<seconds>.ckpt (also at the start and the end;
    with a moving average of the weights, the average: what the run would export then);
    after `cpu_minutes` training stops as after its last step. 0 turns either off. The time
    counts from the process's start (loading, style targets and validation included; a resumed
    run counts from its own start), so use data.num_workers=0 for loader work to be counted too."""

    def __init__(
        self,
        folder: Path,
        snapshot: Callable[[Path, int, float], None] | None,
        snapshot_minutes: float,
        cpu_minutes: float,
        average: WeightAverage | None = None,
    ) -> None:
        self.folder, self.snapshot, self.average = folder, snapshot, average
        self.every, self.budget = 60 * snapshot_minutes, 60 * cpu_minutes
        self.last: tuple[int, float] | None = None  # (step, seconds) of the last snapshot

    def _save(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = cpu_seconds()
        if self.snapshot and trainer.is_global_zero and self.every > 0:
            average = self.average.swapped_in(pl_module) if self.average else nullcontext()
            with average:
                self.snapshot(self.folder / f"cpu_{round(seconds):06d}.ckpt",
                              trainer.global_step, seconds)  # fmt: skip
        self.last = (trainer.global_step, seconds)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        seconds = cpu_seconds()
        if self.budget > 0 and not trainer.should_stop:
            # under ddp every rank stops at the same step: the first one out of time decides
            if trainer.strategy.reduce_boolean_decision(seconds >= self.budget, all=False):
                log.info("cpu_minutes: %.1f CPU minutes used, stopping", seconds / 60)
                trainer.should_stop = True
                return
        if self.every > 0 and self.last and seconds - self.last[1] >= self.every:
            self._save(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.last and self.last[0] != trainer.global_step:
            self._save(trainer, pl_module)


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
    cfg: DictConfig,
    run_dir: Path,
    module: pl.LightningModule,
    data: Any,
    precision: str,
    snapshot: Callable[[Path, int, float], None] | None = None,
) -> pl.Trainer:
    """Fit with the run folder's machinery (periodic and final last.ckpt, resume from ckpt_path,
    Ctrl-C/SIGTERM stop, loggers, unreadable-file report, CPU-time snapshots and budget);
    raises Interrupted after a signal."""
    decay = ema_decay(cfg)
    average = WeightAverage(decay) if decay else None
    clock = CpuClock(  # check_run allows snapshot_minutes where a snapshot function is passed
        run_dir / "snapshots",
        snapshot,
        float(cfg.get("snapshot_minutes") or 0),
        float(cfg.get("cpu_minutes") or 0),
        average,
    )
    ckpt_dir = run_dir / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_train_steps=cfg.checkpoint_every
    )
    stop = StopOnSignal()
    # the average updates before the clock's snapshot of the same step
    callbacks: list[Callback] = [checkpoint, stop, *([average] if average else []), clock]
    trainer = pl.Trainer(
        **{**OmegaConf.to_container(cfg.trainer, resolve=True), "precision": precision},
        logger=build_logger(cfg.logger, run_dir),
        callbacks=callbacks,
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
