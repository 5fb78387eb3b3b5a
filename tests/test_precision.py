"""Precision choice and its quality guards: bf16 inference and training stay close to fp32."""

from __future__ import annotations

import copy
import math
import statistics

import pytest
import torch
from conftest import psnr
from omegaconf import OmegaConf
from test_tiling import styled_net

from stylenet.files.images import load_image
from stylenet.losses.loss_net import LossNet
from stylenet.stylize import precision as P
from stylenet.stylize.stylizer import run_plain as stylize
from stylenet.training import config as T
from stylenet.training.johnson_module import StyleTransferModule


def test_compute_dtype(monkeypatch):
    assert P.compute_dtype("fp32", "cpu") == torch.float32
    assert P.compute_dtype("bf16", "cpu") == torch.bfloat16
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: False)
    assert P.compute_dtype("auto", "cpu") == torch.float32
    monkeypatch.setattr(P, "cpu_has_bf16", lambda: True)
    assert P.compute_dtype("auto", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        P.compute_dtype("fp16", "cpu")


def test_precision_and_compile_resolve(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = OmegaConf.create({"trainer": {"accelerator": "auto", "precision": "auto"}})
    monkeypatch.setattr(T, "cpu_has_bf16", lambda: True)
    assert T.resolve_speed(cfg) == ("bf16-mixed", False)
    monkeypatch.setattr(T, "cpu_has_bf16", lambda: False)
    assert T.resolve_speed(cfg) == ("32-true", False)
    cfg.trainer.precision, cfg.compile = "32-true", True
    assert T.resolve_speed(cfg) == ("32-true", True)
    cfg.compile = "sometimes"
    with pytest.raises(T.ConfigError, match="compile"):
        T.resolve_speed(cfg)


def test_bf16_inference_close_to_fp32_on_real_photos(content_dir):
    net = styled_net(2)
    photos = sorted(content_dir.glob("*"))[:4]
    assert photos
    for path in photos:
        photo = load_image(path, max_side=192)
        fp32 = stylize(net, photo, precision="fp32")
        bf16 = stylize(net, photo, precision="bf16")
        assert bf16.shape == photo.shape
        assert psnr(bf16, fp32) >= 35, path.name


def _train(content_dir, style_dir, bf16: bool, steps: int, seed: int) -> tuple[float, float]:
    """(fp32 loss of the untrained net, lowest fp32 loss at every 5th of the last 50 steps) on a
    fixed batch of real photos. The lowest of several, because a run can end on a spike it would
    have left a few steps later: one seed's bf16 run ended 27% below its float32 run on one machine
    and within 1.5% of it on another."""
    photos = torch.stack(
        [
            torch.nn.functional.interpolate(
                load_image(p, max_side=96)[None], size=(64, 64), mode="area"
            )[0]
            for p in sorted(content_dir.glob("*"))[:2]
        ]
    )
    style = load_image(sorted(style_dir.glob("*"))[0], max_side=64)
    torch.manual_seed(seed)
    loss_net = LossNet(["relu2_2", "relu1_2", "relu3_3"], weights="random")
    module = StyleTransferModule(style, loss_net, style_layers=["relu1_2", "relu2_2", "relu3_3"])
    module.compute_style_targets()
    reference = copy.deepcopy(module)  # fp32 loss network that judges the trained net

    def evaluate() -> float:
        reference.net.load_state_dict(module.net.state_dict())
        with torch.no_grad():
            return reference.losses(photos)[1]["loss"].item()

    before, late = evaluate(), []
    if bf16:
        module.loss_net.to(torch.bfloat16)  # as StyleTransferModule.setup does under bf16-mixed
    opt = module.configure_optimizers()
    for step in range(1, steps + 1):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = module.losses(photos)[1]["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step > steps - 50 and step % 5 == 0:
            late.append(evaluate())
    return before, min(late)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:loss.vgg_weights=random")
@pytest.mark.skipif(
    not (torch.cuda.is_available() or P.cpu_has_bf16()),
    reason="bf16 is emulated on this CPU (no AVX512-BF16 or AMX), so precision auto trains in "
    "float32 here; the 1200 emulated bf16 steps of this check took over 15 minutes",
)
def test_bf16_training_matches_fp32(content_dir, style_dir):
    """Short runs diverge chaotically: after 200 steps bf16 ended 0-4% above fp32 on three seeds
    out of four and 19% above on one. So the check is on the median run of three seeds (each
    seed's bf16 and fp32 runs start from the same weights), with a looser bound on every run. That
    bound is one-sided: it guards against bf16 training worse, and a float32 run that ends on a
    spike makes bf16 look better by chance."""
    gaps = []
    for seed in (0, 1, 2):
        start32, end32 = _train(content_dir, style_dir, bf16=False, steps=200, seed=seed)
        start16, end16 = _train(content_dir, style_dir, bf16=True, steps=200, seed=seed)
        assert start16 == start32
        assert end32 < 0.7 * start32 and end16 < 0.7 * start16  # both learn
        assert math.isfinite(end16)
        gaps.append((end16 - end32) / end32)
    assert abs(statistics.median(gaps)) <= 0.05, gaps
    assert max(gaps) <= 0.25, gaps
