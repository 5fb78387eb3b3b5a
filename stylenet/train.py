"""Train one style: `python train.py style=anime [data=coco data.root=...] [trainer.max_steps=N]`.

The only command that knows Hydra: it composes configs/ and hands the config to the fit recipe
of its model kind (stylenet/training/recipes.py: RECIPES), which checks it (training/config.py),
builds plain objects, trains (training/runner.py) and exports checkpoints/<style>.ckpt
(+ .safetensors).

Several styles in one net: `python train.py model=cin styles=[starry_night,wave]` (or
model=stylebank); add one to a trained model with `styles=[starry_night,wave,scream]
model.init=checkpoints/cin-starry_night-wave.ckpt` (see recipes.fit_multistyle).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from stylenet.allocator import keep_freed_memory
from stylenet.losses.loss_net import VGGWeightsError
from stylenet.stylize.checkpoint import CheckpointError
from stylenet.training.config import PROJECT_ROOT, ConfigError, check_groups
from stylenet.training.data import NoImagesError
from stylenet.training.johnson_module import NonFiniteLossError
from stylenet.training.multistyle_module import MULTI_STYLE_KINDS
from stylenet.training.recipes import fit
from stylenet.training.runner import Interrupted

log = logging.getLogger("stylenet")


def run_name(name: str | None, kind: str, styles: Any, style: str) -> str:
    """The run folder's name (outputs/<name>/<time>): model.name, else <kind>-<styles> for a
    multi-style run (the export's default name), else the style."""
    if name:
        return str(name)
    if kind in MULTI_STYLE_KINDS and styles:
        return "-".join([kind, *map(str, styles)])
    return str(style)


OmegaConf.register_new_resolver("run_name", run_name, replace=True)


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
    keep_freed_memory()
    try:
        check_groups(sys.argv[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
