"""The image-transform network of Johnson et al. (2016), with instance norm.

Image in [0, 1] -> stylized image in [0, 1] of exactly the same H x W.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.ops.cartoon import cartoon, cel_scale
from stylenet.ops.preserve_color import transfer_luminance


class ConvLayer(nn.Sequential):
    """Reflection-padded convolution, optionally followed by instance norm and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm_relu: bool = True):
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(kernel // 2),
            nn.Conv2d(cin, cout, kernel, stride),
        ]
        if norm_relu:
            layers += [nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TrainingForm(nn.Sequential):
    """Layers in order, which in training mode run as one faster form of the same function
    (`_fast`, where `_fast_fits` the input). Eval mode (inference, export), TorchScript and
    `fast = False` (the reference benchmark) run the modules in order."""

    def __init__(self, *layers: nn.Module):
        super().__init__(*layers)
        self.fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and self.training and self.fast and self._fast_fits(x):
            return self._fast(x)
        for m in self:
            x = m(x)
        return x

    def _fast_fits(self, x: torch.Tensor) -> bool:
        return True

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _replicate_pad1(x: torch.Tensor) -> torch.Tensor:
    """x with its edge rows and columns repeated once. Under torch.compile by concatenation:
    inductor fails on replication_pad2d's backward (torch 2.14), which is 3x faster eagerly."""
    if not torch.compiler.is_compiling():
        return F.pad(x, (1, 1, 1, 1), mode="replicate")
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], 2)
    return torch.cat([x[..., :1], x, x[..., -1:]], 3)


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 kernel (O, C, 3, 3) after x2 nearest upsampling as the 2x2 kernels of the four
    output phases, (2, 2, O, C, 2, 2) [row phase][column phase]: each sums the 3x3 weights that
    fall on the same source pixel."""
    # taps[a, p, u]: whether tap u of a kernel row, for output rows of phase a, reads row p of
    # the 2x2 window: ((1, 0, 0), (0, 1, 1)) for even rows, ((1, 1, 0), (0, 0, 1)) for odd ones
    # (made on the device: no host-to-device copy in a step)
    phase = torch.arange(2, device=weight.device)[:, None, None]
    row = torch.arange(2, device=weight.device)[None, :, None]
    tap = torch.arange(3, device=weight.device)[None, None, :]
    taps = (row == (phase + tap - 1).div(2, rounding_mode="floor") - phase + 1).to(weight.dtype)
    return torch.einsum("aik,ockl,bjl->abocij", taps, weight, taps)


def upsampled_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """conv(reflection_pad1(nearest_upsample2(x))) for a 3x3 conv, without the upsampled copy.

    Each output phase (even/odd row, even/odd column) sees a 2x2 window of x (phase_kernels), and
    reflecting the upsampled image by one pixel repeats x's edge. So one 2x2 convolution of
    replicate-padded x, with four times the output channels (one set per phase), gives the
    output with 4/9 of the multiplications; the kernel is derived from conv.weight, so gradients
    reach it."""
    with torch.autocast(x.device.type, enabled=False):  # the kernel sums stay float32
        kernel = phase_kernels(conv.weight).flatten(0, 2)
    bias = None if conv.bias is None else conv.bias.repeat(4)
    y = F.conv2d(_replicate_pad1(x), kernel, bias)
    return _Interleave.apply(y.unflatten(1, (2, 2, conv.out_channels)))


class _Interleave(torch.autograd.Function):
    """The phase outputs (n, 2, 2, C, h + 1, w + 1) [row phase a][column phase b] as one image
    (n, C, 2h, 2w): phase (a, b) from offset (a, b) goes to pixels (2i + a, 2j + b). Written out,
    because autograd through slices and stacks zeroes and sums four gradients of the phase
    outputs' size: both upsampling layers' interleaving, forward and backward, 199 -> 77 ms at
    256 px, batch 4 (about 6% of a step)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor) -> torch.Tensor:
        n, _, _, c, h, w = y.shape
        h, w = h - 1, w - 1
        out = y.new_empty(n, c, h, 2, w, 2)
        for a in (0, 1):
            for b in (0, 1):
                out[:, :, :, a, :, b] = y[:, a, b, :, a : a + h, b : b + w]
        ctx.phase_shape = y.shape
        return out.view(n, c, 2 * h, 2 * w)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        n, _, _, c, h, w = ctx.phase_shape
        h, w = h - 1, w - 1
        g = g.reshape(n, c, h, 2, w, 2)
        gy = g.new_zeros(ctx.phase_shape)
        for a in (0, 1):
            for b in (0, 1):
                gy[:, a, b, :, a : a + h, b : b + w] = g[:, :, :, a, :, b]
        return gy


class UpsampleConv(TrainingForm):
    """x2 nearest-neighbour upsampling then a 3x3 conv (no checkerboard artefacts); in training
    as upsampled_conv (the same function, 2-2.5x faster forward and backward on a CPU)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(cin, cout, 3))

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        _pad, conv, *after = self[1]
        y = upsampled_conv(x, conv)
        for m in after:  # the norm and ReLU
            y = m(y)
        return y


def block_kernel(weight: torch.Tensor, r: int) -> torch.Tensor:
    """An (O, C, k, k) kernel as the (r*r*O, r*r*C, kb, kb) kernel of the same conv on r x r
    pixel blocks: output channels ordered (row phase, column phase, O), input channels
    (row, column, C)."""
    o, c, k, _ = weight.shape
    kb = (r - 1 + k - 1) // r + 1
    wext = F.pad(weight, (r, r * kb, r, r * kb))  # out-of-kernel taps read zeros
    u, d = torch.arange(r, device=weight.device), torch.arange(kb, device=weight.device)
    idx = r * d[None, None, :] + u[None, :, None] - u[:, None, None] + r  # [out, in phase, dI]
    w2 = wext[:, :, idx[:, :, :, None, None, None], idx[None, None, None]]  # o c u p dI v q dJ
    return w2.permute(2, 5, 0, 3, 6, 1, 4, 7).reshape(r * r * o, r * r * c, kb, kb)


def blocked_conv(xp: torch.Tensor, conv: nn.Conv2d, r: int = 2) -> torch.Tensor:
    """conv(xp) for a stride-1, unpadded conv, computed on r x r pixel blocks (space to depth).

    The last 9x9 conv to RGB has 3 output channels, which leave most of a CPU's SIMD lanes idle
    (76 GFLOP/s against 370 for the residual blocks' convs, forward and backward); on 2x2 blocks
    the same sums are a 5x5 conv with 12 outputs and 128 inputs, and forward plus backward run
    about 1.5x faster though some products are zeros. The kernel is derived from conv.weight, so
    gradients reach it. xp's sides and k - 1 must be multiples of r."""
    o, c, k, _ = conv.weight.shape
    kb = (k + 2 * r - 2) // r
    with torch.autocast(xp.device.type, enabled=False):  # the kernel stays float32
        kernel = block_kernel(conv.weight, r).view(r, r, o, r, r, c, kb, kb)
    # reordered for pixel_(un)shuffle: output channels (O, row phase, column phase), input (C, ...)
    kernel = kernel.permute(2, 0, 1, 5, 3, 4, 6, 7).reshape(o * r * r, c * r * r, kb, kb)
    bias = None if conv.bias is None else conv.bias.repeat_interleave(r * r)
    return F.pixel_shuffle(F.conv2d(F.pixel_unshuffle(xp, r), kernel, bias), r)


class RGBConv(TrainingForm):
    """The last conv, to RGB, reflection-padded, without norm; in training (on even sides) as
    blocked_conv, the same function (stylenet.stylize.strips blocks it itself at inference)."""

    def __init__(self, cin: int, kernel: int = 9):
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, 3, kernel))

    def _fast_fits(self, x: torch.Tensor) -> bool:
        return x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0

    def _fast(self, x: torch.Tensor) -> torch.Tensor:
        pad, conv = self
        return blocked_conv(pad(x), conv)


OUTPUTS = ("sigmoid", "linear", "residual")


def finish(y: torch.Tensor, photo: torch.Tensor, photo_colors: bool, cel: bool) -> torch.Tensor:
    """The stages after the pixels: the photo's U and V (photo_colors), then cel shading (cel).

    The cel lines come from the most smoothed image and are a little lighter and fewer than the
    cartoon filter's defaults: outlines of objects rather than of texture. With the defaults the
    dense black texture lines moved held-out photos' Gram statistics away from the clip art's
    (README, "Styles")."""
    if photo_colors:
        y = transfer_luminance(y, photo)
    return cel_stage(y, cel_scale(*y.shape[-2:])) if cel else y


CEL_SUPERSAMPLE = 1 << 22  # pixels up to which the cel stage is drawn at twice the size


def cel_stage(y: torch.Tensor, scale: int, supersample: bool | None = None) -> torch.Tensor:
    """finish()'s cel shading at `scale` (cel_scale). Supersampled (by default up to
    CEL_SUPERSAMPLE pixels, as the 2x copies cost memory) the net's output is first smoothed by a
    3x3 binomial filter, and the lines and luminance steps are drawn at twice the size and
    averaged back (anti-aliased). Pixel-level texture of the net then seeds no lines, and when the
    picture moves by part of a pixel, lines and steps shift smoothly instead of flipping whole
    pixels: on two held-out pans the shipped anime's warping error fell 2.6-2.8x (docs/video.md)."""
    if supersample is None:
        supersample = y.shape[-2] * y.shape[-1] <= CEL_SUPERSAMPLE
    if supersample:
        k = y.new_tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None] / 16).expand(3, 1, 3, 3)  # per RGB channel
        y = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k, groups=3)
    return cartoon(y, line_strength=0.8, line_tau=0.96, line_pass=3, scale=scale,
                   supersample=2 if supersample else 1)  # fmt: skip


def as_seen(
    y: torch.Tensor,
    photos: torch.Tensor,
    forward: Callable[[torch.Tensor], torch.Tensor],
    cel: bool,
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """(output, forward) as users see them. In training mode a cel net skips its fixed cel stage;
    with cel both go through it, so a loss on them (the temporal one) sees its lines and steps."""
    if not cel:
        return y, forward
    return finish(y, photos, False, True), lambda x: finish(forward(x), x, False, True)


def to_pixels(
    z: torch.Tensor, output: str, photo: torch.Tensor, training: bool = False
) -> torch.Tensor:
    """The last conv's values as pixels (see TransformNet's `output`; `photo`, of z's size, is
    used by residual)."""
    if output == "sigmoid":
        return torch.sigmoid(z)
    if output == "residual":
        return torch.sigmoid(torch.logit(photo.float(), eps=1e-3) + z)  # photo clamped to 1e-3..
    return 0.5 + z if training else (0.5 + z).clamp(0, 1)


class TransformNet(nn.Module):
    """9x9 conv 32, stride-2 convs 64 and 128, residual blocks, two upsample stages, 9x9 conv 3.

    Inputs whose sides are not multiples of 4 are padded (replicate) and the output cropped back,
    so any H x W of at least 8 x 8 works.

    output: how the last conv's values become pixels in [0, 1]. "sigmoid" (the default, and what
    every checkpoint without the key was trained with); "linear": 0.5 + z, unbounded in training
    (the losses, whose targets are all in [0, 1], pull stray values back) and clipped to [0, 1] in
    eval mode, as in pytorch/examples' fast_neural_style. Under a sigmoid, a region the loss pushes
    towards pure white or black saturates, stops getting a gradient and stays a flat blob.
    "residual": sigmoid(logit(photo) + z), a change to the photo: z = 0 returns the photo itself.
    The instance norms remove each image's mean colour and contrast from the features, so the
    other outputs must guess the photo's colours back (skin drifts to grey-green); a residual
    output keeps them unless the loss asks for a change.

    photo_colors: the output keeps the photo's chrominance (YUV U and V) and takes only its
    luminance from the net (Gatys et al. 2017, "Preserving color"): for styles whose loss is
    colour-blind (luminance_only), whose colours would otherwise drift.

    cel: in eval mode (inference, export, validation pictures) the output goes through
    stylenet.ops.cartoon's fixed cel shading: edge-preserving smoothing, soft luminance steps, dark
    lines. Training optimises the net's own output: trained through the stage, the content loss
    against the photo penalised the lines it draws, and the net learned to blur them away.
    """

    def __init__(
        self,
        channels: int = 32,
        num_residual: int = 5,
        output: str = "sigmoid",
        photo_colors: bool = False,
        cel: bool = False,
    ):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r}: expected one of {', '.join(OUTPUTS)}")
        c = channels
        self.channels, self.num_residual, self.output = channels, num_residual, output
        self.photo_colors, self.cel = photo_colors, cel
        self.net = nn.Sequential(
            ConvLayer(3, c, 9),
            ConvLayer(c, 2 * c, 3, stride=2),
            ConvLayer(2 * c, 4 * c, 3, stride=2),
            *[ResidualBlock(4 * c) for _ in range(num_residual)],
            UpsampleConv(4 * c, 2 * c),
            UpsampleConv(2 * c, c),
            RGBConv(c),
        )
        if output == "residual":  # start near the photo itself
            last = self.net[-1][1]
            with torch.no_grad():
                last.weight.mul_(0.1)
                last.bias.zero_()

    def load_shallower(self, state: dict[str, torch.Tensor], num_residual: int) -> None:
        """Load the weights of a net like this one with fewer residual blocks. The extra blocks
        follow the loaded ones and start as the identity (their last norm's scale and shift are
        zero: He et al. 2019's zero-gamma start), so the deeper net starts as the trained one."""
        for norm in self.added_block_ends(num_residual):
            if norm.weight is not None:  # CINNet's body: its styles hold them
                nn.init.zeros_(norm.weight)
                nn.init.zeros_(norm.bias)
        renamed = {k: self.deeper_key(k, num_residual) for k in state}
        self.load_state_dict({**self.state_dict(), **{renamed[k]: v for k, v in state.items()}})

    def added_block_ends(self, num_residual: int) -> list[nn.InstanceNorm2d]:
        """The last norm of each block this net has beyond a net with num_residual blocks."""
        if num_residual > self.num_residual:
            raise ValueError(f"num_residual={num_residual}: more blocks than this net's")
        return [self.net[i].body[-1] for i in range(3 + num_residual, 3 + self.num_residual)]

    def deeper_key(self, key: str, num_residual: int) -> str:
        """This net's name for `key` ("net.<i>...") of a net with num_residual blocks."""
        _, i, rest = key.split(".", 2)
        i = int(i) + self.num_residual - num_residual if int(i) >= 3 + num_residual else int(i)
        return f"net.{i}.{rest}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        y = to_pixels(self.net(x), self.output, x, self.training)
        cel = self.cel and not self.training
        return finish(y[..., :h, :w], x[..., :h, :w], self.photo_colors, cel)
