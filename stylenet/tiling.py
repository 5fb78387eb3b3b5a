"""Stylize photos layer by layer in horizontal strips: bounded memory, no seams.

Instance norm needs statistics over the whole image, so cutting a photo into independent tiles would
normalise each tile differently and leave seams. Instead the transform net runs layer by layer: each
convolution is computed strip by strip (with the rows its kernel needs above and below) into one
output, the instance-norm statistics are then taken over that whole output, and the normalisation is
applied in place. The result equals the untiled forward pass up to rounding, while only one layer's
input and output (bf16 or fp32) plus one strip of temporaries are alive at a time. Up to about
1920 x 1080 most layers are one strip (fastest: no copies besides the padding); 4K photos are cut
into a few strips per layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.nets.stylebank import BankMix, Stylizer
from stylenet.nets.transform_net import (
    ConvLayer,
    ResidualBlock,
    TransformNet,
    UpsampleConv,
    to_pixels,
)

STRIP_ELEMENTS = 1 << 26  # elements in a strip's widest temporary: 128 MB in bf16


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reflection-pad index map (no edge repeat), as nn.ReflectionPad2d does."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def _rows(rows: int | None, width: int) -> int:
    return rows or max(8, STRIP_ELEMENTS // width)


def _padded_strip(xv: torch.Tensor, a: int, b: int, pad: int, dtype: torch.dtype) -> torch.Tensor:
    """Rows a..b-1 of reflection_pad(x), from the NHWC view xv, as NHWC."""
    n, h, w, c = xv.shape
    if a == 0 and b == h + 2 * pad:  # the whole image: one copy
        x = xv.permute(0, 3, 1, 2).to(dtype)
        return (F.pad(x, (pad,) * 4, mode="reflect") if pad else x).permute(0, 2, 3, 1)
    src = xv.index_select(1, _reflect(torch.arange(a, b, device=xv.device) - pad, h))
    strip = src.new_empty(n, b - a, w + 2 * pad, c, dtype=dtype)
    strip[:, :, pad : pad + w] = src
    if pad:
        strip[:, :, :pad] = strip[:, :, pad + 1 : 2 * pad + 1].flip(2)
        strip[:, :, pad + w :] = strip[:, :, w - 1 : w - 1 + pad].flip(2)
    return strip


def _conv_strips(
    x: torch.Tensor, conv: nn.Conv2d, pad: int, dtype: torch.dtype, rows: int | None
) -> torch.Tensor:
    """conv(reflection_pad(x)) for channels_last (B, C, H, W) x, in row strips."""
    _, cin, h, w = x.shape
    weight = conv.weight.to(dtype).contiguous(memory_format=torch.channels_last)
    bias = None if conv.bias is None else conv.bias.to(dtype)
    k, s = conv.kernel_size[0], conv.stride[0]
    hout, wout = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    xv = x.permute(0, 2, 3, 1)  # NHWC view, no copy
    rows = _rows(rows, max(cin * (w + 2 * pad) * s, conv.out_channels * wout))
    if rows >= hout:
        strip = _padded_strip(xv, 0, h + 2 * pad, pad, dtype).permute(0, 3, 1, 2)
        if conv.out_channels < 8 and s == 1:
            return _blocked_conv(strip, conv, dtype)
        return F.conv2d(strip, weight, bias, s)
    out = x.new_empty(x.shape[0], hout, wout, conv.out_channels, dtype=dtype)  # NHWC
    for a in range(0, hout, rows):
        b = min(hout, a + rows)
        strip = _padded_strip(xv, a * s, (b - 1) * s + k, pad, dtype)
        out[:, a:b] = F.conv2d(strip.permute(0, 3, 1, 2), weight, bias, s).permute(0, 2, 3, 1)
    return out.permute(0, 3, 1, 2)


def _blocked_weight(weight: torch.Tensor, r: int) -> torch.Tensor:
    """(O, C, k, k) kernel -> (r*r*O, r*r*C, kb, kb) kernel acting on r x r pixel blocks."""
    o, c, k, _ = weight.shape
    kb = (r - 1 + k - 1) // r + 1
    wext = F.pad(weight, (r, r * kb, r, r * kb))  # out-of-kernel taps read zeros
    u, d = torch.arange(r), torch.arange(kb)
    idx = r * d[None, None, :] + u[None, :, None] - u[:, None, None] + r  # [out, in phase, dI]
    w2 = wext[:, :, idx[:, :, :, None, None, None], idx[None, None, None]]  # o c u p dI v q dJ
    return w2.permute(2, 5, 0, 3, 6, 1, 4, 7).reshape(r * r * o, r * r * c, kb, kb)


def _blocked_conv(
    xp: torch.Tensor, conv: nn.Conv2d, dtype: torch.dtype, r: int = 2
) -> torch.Tensor:
    """conv(xp) for a padded channels_last xp, computed on r x r pixel blocks (space-to-depth).

    For layers with few output channels (the final 9x9 conv to RGB has 3) a direct convolution
    leaves most SIMD lanes idle; on 2x2 blocks the same sums have 12 outputs and 128 inputs, and
    run about 1.6x faster despite multiplying some zeros.
    """
    n, c, hp, wp = xp.shape
    o, k = conv.out_channels, conv.kernel_size[0]
    kb = (r - 1 + k - 1) // r + 1
    h, w = hp - k + 1, wp - k + 1
    hb, wb = -(-h // r), -(-w // r)
    xp = F.pad(xp, (0, (wb + kb - 1) * r - wp, 0, (hb + kb - 1) * r - hp))
    hq, wq = xp.shape[2] // r, xp.shape[3] // r
    x2 = xp.permute(0, 2, 3, 1).reshape(n, hq, r, wq, r, c).transpose(2, 3)
    x2 = x2.reshape(n, hq, wq, r * r * c).permute(0, 3, 1, 2)
    w2 = _blocked_weight(conv.weight.float(), r).to(dtype)
    bias = None if conv.bias is None else conv.bias.to(dtype).repeat(r * r)
    y2 = F.conv2d(x2, w2.contiguous(memory_format=torch.channels_last), bias)
    y = y2.permute(0, 2, 3, 1).reshape(n, hb, wb, r, r, o).transpose(2, 3)
    return y.reshape(n, hb * r, wb * r, o)[:, :h, :w].permute(0, 3, 1, 2)


def _upconv_strips(
    x: torch.Tensor, conv: nn.Conv2d, dtype: torch.dtype, rows: int | None
) -> torch.Tensor:
    """conv3x3(reflection_pad1(nearest_upsample2(x))) without the upsampled input, in row strips.

    Each of the four output phases (even/odd row, even/odd column) sees a 2x2 window of x, whose
    kernel sums the 3x3 weights that fall on the same source pixel; and reflecting the upsampled
    image by one pixel repeats x's edge. So four 2x2 convolutions of replicate-padded x give the
    output exactly, with 4/9 of the multiplications and no 4x larger upsampled copy of x.
    """
    n, cin, h, w = x.shape
    cout = conv.out_channels
    taps = conv.weight.new_tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]])  # (phase, 2, 3)
    weights = [
        [
            torch.einsum("ik,ockl,jl->ocij", taps[a], conv.weight, taps[b])
            .to(dtype)
            .contiguous(memory_format=torch.channels_last)
            for b in (0, 1)
        ]
        for a in (0, 1)
    ]
    bias = None if conv.bias is None else conv.bias.to(dtype)
    xv = x.permute(0, 2, 3, 1)  # NHWC view
    cols = torch.arange(-1, w + 1, device=x.device).clamp(0, w - 1)
    out = x.new_empty(n, h, 2, w, 2, cout, dtype=dtype)  # NHWC of the (2h, 2w) output
    step = max(1, _rows(rows, max(cin * (w + 2), 4 * cout * w)) // 2)
    for i0 in range(0, h, step):
        i1 = min(h, i0 + step)
        src = torch.arange(i0 - 1, i1 + 1, device=x.device).clamp(0, h - 1)
        strip = xv.index_select(1, src).index_select(2, cols).to(dtype).permute(0, 3, 1, 2)
        for a in (0, 1):
            for b in (0, 1):
                y = F.conv2d(strip[:, :, a : a + i1 - i0 + 1, b : b + w + 1], weights[a][b], bias)
                out[:, i0:i1, a, :, b] = y.permute(0, 2, 3, 1)
    return out.view(n, 2 * h, 2 * w, cout).permute(0, 3, 1, 2)


def _instance_norm_(x: torch.Tensor, norm: nn.InstanceNorm2d, relu: bool) -> None:
    """Normalise channels_last x in place with whole-image per-channel statistics (float32)."""
    n, c, h, w = x.shape
    flat = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view for channels_last x
    for v in flat:
        mean, var = v.new_zeros(c, dtype=torch.float32), v.new_ones(c, dtype=torch.float32)
        torch.ops.aten.batch_norm_update_stats(v, mean, var, 1.0)  # var is unbiased
        scale = torch.rsqrt(var * ((h * w - 1) / (h * w)) + norm.eps)
        shift = -mean * scale
        if norm.affine:
            scale, shift = scale * norm.weight.float(), shift * norm.weight.float() + norm.bias
        torch.addcmul(shift.to(v.dtype), v, scale.to(v.dtype), out=v)
        if relu:
            v.clamp_min_(0)


def _conv_layer(
    x: torch.Tensor, layer: ConvLayer, upsample: bool, dtype: torch.dtype, rows: int | None
) -> torch.Tensor:
    """One ConvLayer; `upsample`: preceded by UpsampleConv's x2 nearest upsampling."""
    pad, conv = layer[0].padding[0], layer[1]
    if upsample:
        y = _upconv_strips(x, conv, dtype, rows)
    else:
        y = _conv_strips(x, conv, pad, dtype, rows)
    if len(layer) > 2:
        _instance_norm_(y, layer[2], relu=True)
    return y


def _run(
    x: torch.Tensor, layers: Iterable[nn.Module], dtype: torch.dtype, rows: int | None
) -> torch.Tensor:
    """The layers one after the other on channels_last x (not modified)."""
    for m in layers:
        if isinstance(m, ResidualBlock):
            body = m.body
            y = _conv_layer(x, body[0], False, dtype, rows)
            y = _conv_strips(y, body[2], body[1].padding[0], dtype, rows)
            _instance_norm_(y, body[3], relu=False)
            x = y.add_(x)
        elif isinstance(m, UpsampleConv):
            x = _conv_layer(x, m[1], True, dtype, rows)
        elif isinstance(m, BankMix):  # StyleBank fusion: weighted sum of the banks' outputs
            y = None
            for w, bank in zip(m.weights, m.banks, strict=True):
                out = _run(x, bank, dtype, rows)
                out = out if w == 1.0 else out.mul_(w)
                y = out if y is None else y.add_(out)
            x = y
        else:
            x = _conv_layer(x, m, False, dtype, rows)
    return x


@torch.inference_mode()
def stylize_strips(
    net: TransformNet | Stylizer,
    x: torch.Tensor,
    dtype: torch.dtype = torch.bfloat16,
    rows: int | None = None,
) -> torch.Tensor:
    """net(x) for a (B, 3, H, W) batch, layer by layer in strips of `rows` rows (None: auto).

    net: a TransformNet, or any module whose `net` is a sequence of the layer types above and
    `output` its output activation (a bound multi-style model: see stylenet/nets/).
    Activations are stored in `dtype`; statistics and the output activation are float32 (as
    returned).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    x = _run(x.contiguous(memory_format=torch.channels_last), net.net, dtype, rows)
    return to_pixels(x[..., :h, :w].float(), net.output)
