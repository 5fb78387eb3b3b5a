"""Loss network: frozen, cut at the deepest layer, pure; ImageNet weights from the torch cache."""

import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision import models

from stylenet.loss_net import LossNet, VGGWeightsError, check_layers, imagenet_cache_file

LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def test_frozen_cut_and_leaves_its_input_untouched():
    net = LossNet(LAYERS, weights="random")
    assert len(net.features) == 23  # up to relu4_3, nothing deeper
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    x = torch.rand(2, 3, 64, 64)
    before = x.clone()
    feats = net(x)
    assert torch.equal(x, before)
    assert [feats[k].shape[1] for k in LAYERS] == [64, 128, 256, 512]
    assert list(net(x, ["relu2_2"])) == ["relu2_2"]


def test_gradients_flow_to_the_input_only():
    net = LossNet(["relu2_2"], weights="random")
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    net(x)["relu2_2"].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in net.parameters())


def test_random_weights_warn_and_are_seeded():
    with pytest.warns(UserWarning, match="RANDOM"):
        a = LossNet(["relu1_2"], weights="random")
    with pytest.warns(UserWarning):
        b = LossNet(["relu1_2"], weights="random")
    assert torch.equal(a.features[0].weight, b.features[0].weight)


def test_unknown_layer_is_named():
    with pytest.raises(ValueError, match="relu9_9"):
        check_layers(["relu2_2", "relu9_9"])


def test_imagenet_weights_load_from_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(123)
    state = models.vgg16(weights=None).state_dict()  # synthetic stand-in for the real file
    cache = imagenet_cache_file("vgg16")
    assert cache == tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    cache.parent.mkdir(parents=True)
    torch.save(state, cache)
    net = LossNet(["relu2_2"], weights="imagenet")
    assert torch.equal(net.features[2].weight, state["features.2.weight"])


def test_offline_imagenet_names_the_cache_file_and_the_override(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(VGGWeightsError) as e:
        LossNet(["relu2_2"], weights="imagenet")
    assert str(imagenet_cache_file("vgg16")) in str(e.value)
    assert "loss.vgg_weights=random" in str(e.value)


def test_state_dict_path(tmp_path: Path):
    torch.manual_seed(5)
    state = models.vgg16(weights=None).state_dict()
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    net = LossNet(["relu1_2"], weights=str(path))
    assert torch.equal(net.features[0].weight, state["features.0.weight"])
    with pytest.raises(VGGWeightsError, match="no such file"):
        LossNet(["relu1_2"], weights=str(tmp_path / "missing.pth"))
