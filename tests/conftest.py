"""Shared fixtures: real photos from ../shared/images, tiny models of every kind, offline W&B.

Helpers are imported by the test files (`from conftest import ROOT, psnr, save_tiny`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

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


KINDS = ("johnson", "cin", "stylebank", "adain")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.float() - b.float()).square().mean().item()
    return math.inf if mse == 0 else -10 * math.log10(mse)


def assert_fast_form_is_the_same_function(
    module: torch.nn.Module, x: torch.Tensor, skip: tuple[str, ...] = ()
) -> torch.Tensor:
    """A TrainingForm in training mode, its fast form off and on: the output and the gradients of
    x (which requires one) and of every parameter not in skip match. Returns the output."""
    results = []
    for fast in (False, True):
        module.train().zero_grad()
        module.fast, x.grad = fast, None
        y = module(x)
        y.backward(torch.rand(y.shape, generator=torch.Generator().manual_seed(1)))
        grads = [p.grad for n, p in module.named_parameters() if n not in skip]
        results.append([y.detach(), x.grad, *grads])
    for plain, fast_form in zip(*results, strict=True):
        torch.testing.assert_close(fast_form, plain, rtol=0, atol=1e-5 * plain.abs().max())
    return results[0][0]


def run_cli(capsys, main, *argv) -> tuple[int, str, list[str]]:
    """A command's main(argv) in process: (exit code, stdout, the non-empty stderr lines)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def save_tiny(kind: str, path: Path, seed: int = 0) -> Path:
    """A tiny random model of kind saved at path: johnson (8 channels, 1 residual block), cin and
    stylebank (styles a and b, whose pictures differ), adain (the random VGG encoder, nothing to
    download, and a He-initialised decoder whose picture depends on the artwork and alpha)."""
    from stylenet.nets.adain import ENCODER_LAYER, Decoder, layer_scales
    from stylenet.nets.cin import CINNet
    from stylenet.nets.stylebank import StyleBankNet
    from stylenet.nets.transform_net import TransformNet
    from stylenet.stylize.checkpoint import save_model

    torch.manual_seed(seed)
    styles = ROOT / "data" / "styles"
    training = {  # what evaluate reads: each style's artwork
        s: {"style_image": str(styles / f"{art}.jpg"), "style_size": 64}
        for s, art in (("a", "wave"), ("b", "scream"))
    }
    if kind == "johnson":
        return save_model(path, TransformNet(8, 1), {"style": "ink"})
    if kind == "cin":
        net = CINNet(["a", "b"], channels=8, num_residual=1)
        with torch.no_grad():
            for p in net.style_parameters(["b"]):
                p.add_(0.5 * torch.randn_like(p))
        return save_model(path, net, {"training": training})
    if kind == "stylebank":
        net = StyleBankNet(["a", "b"], channels=8, bank_layers=1)
        return save_model(path, net, {"training": training})
    meta = {"kind": "adain", "style": "adain", "encoder": {"arch": "vgg19", "weights": "random"}}
    decoder = Decoder(layer_scales("random")[ENCODER_LAYER])
    convs = [m for m in decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv in convs:
            torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            conv.bias.zero_()
        convs[-1].bias.fill_(0.5)
    return save_model(path, decoder, meta)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """{kind: checkpoint file} of save_tiny's models, one of every kind."""
    folder = tmp_path_factory.mktemp("tiny_models")
    return {kind: save_tiny(kind, folder / f"{kind}.ckpt") for kind in KINDS}
