"""Loss network: frozen, cut at the deepest layer, pure; ImageNet weights from the torch cache."""

import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision import models

from stylenet.losses.loss_net import (
    LossNet,
    VGGWeightsError,
    check_layers,
    imagenet_cache_file,
    layer_names,
    original_weights_file,
)

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
    assert "loss=vgg19" in str(e.value)  # the offline remedy


def test_state_dict_path(tmp_path: Path):
    torch.manual_seed(5)
    state = models.vgg16(weights=None).state_dict()
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    net = LossNet(["relu1_2"], weights=str(path))
    assert torch.equal(net.features[0].weight, state["features.0.weight"])
    with pytest.raises(VGGWeightsError, match="no such file"):
        LossNet(["relu1_2"], weights=str(tmp_path / "missing.pth"))


def test_original_weights_decode_by_hand():
    """Index -> centroid lookup, bias as stored; the first conv takes RGB (Caffe's BGR reversed)."""
    q_state = torch.load(original_weights_file(), map_location="cpu", weights_only=True)
    net = LossNet(["relu4_1"], weights="original", arch="vgg19")
    q, table = q_state["block3_conv2_W_q"], q_state["block3_conv2_W_table"]
    conv = net.features[layer_names(net.features)["conv3_2"]]
    assert conv.weight[5, 7, 1, 2].item() == table[int(q[5, 7, 1, 2])].item()
    assert torch.equal(conv.bias, q_state["block3_conv2_b"])
    q1, t1 = q_state["block1_conv1_W_q"], q_state["block1_conv1_W_table"]
    first = net.features[0]
    for rgb, bgr in ((0, 2), (1, 1), (2, 0)):
        assert first.weight[3, rgb, 0, 1].item() == t1[int(q1[3, bgr, 0, 1])].item()


def test_original_weights_use_the_caffe_convention_on_a_known_pixel():
    """One pixel (R, G, B) = (1, 0.5, 0): conv1_1 sees BGR 0-255 minus the Caffe mean pixel."""
    q_state = torch.load(original_weights_file(), map_location="cpu", weights_only=True)
    w = q_state["block1_conv1_W_table"][q_state["block1_conv1_W_q"].long()]  # (64, 3, 3, 3) BGR
    b = q_state["block1_conv1_b"]
    net = LossNet(["conv1_1"], weights="original", arch="vgg19")
    assert net.convention == "caffe"
    x = torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    bgr = torch.tensor([0.0 - 103.939, 127.5 - 116.779, 255.0 - 123.68])
    expected = (w[:, :, 1, 1] * bgr).sum(1) + b  # a 1x1 image: only the kernel centre sees it
    got = net(x)["conv1_1"].flatten()
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_original_weights_are_vgg19_only():
    with pytest.raises(VGGWeightsError, match="loss=vgg19"):
        LossNet(["relu2_2"], weights="original", arch="vgg16")
