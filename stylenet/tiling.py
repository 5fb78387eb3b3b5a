"""Stylize photos in horizontal strips: bounded memory, no seams, and faster than one big pass.

Instance norm needs statistics over the whole image, so cutting a photo into independent tiles would
normalise each tile differently and leave seams. Instead the transform net runs layer by layer: each
convolution is computed strip by strip (with the rows its kernel needs above and below) into one
preallocated output, the instance-norm statistics are then taken over that whole output, and the
normalisation is applied strip by strip in place. The result equals the untiled forward pass up to
rounding, while only one layer's input and output (bf16 or fp32) plus one strip of temporaries are
alive at a time. Cache-sized strips also run faster on CPUs than whole-image convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.transform_net import ConvLayer, ResidualBlock, TransformNet, UpsampleConv

STRIP_ELEMENTS = 1 << 20  # elements in a strip's widest temporary: 2 MB in bf16, cache-sized


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reflection-pad index map (no edge repeat), as nn.ReflectionPad2d does."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def _rows(rows: int | None, width: int) -> int:
    return rows or max(8, STRIP_ELEMENTS // width)


def _conv_strips(
    x: torch.Tensor, conv: nn.Conv2d, pad: int, upsample: int, dtype: torch.dtype, rows: int | None
) -> torch.Tensor:
    """conv(reflection_pad(nearest_upsample(x))) for a channels_last (B, C, H, W) x, in row strips.

    Strips are cut, upsampled and padded in the NHWC view, where rows are contiguous memory.
    """
    _, cin, h, w = x.shape
    weight = conv.weight.to(dtype).contiguous(memory_format=torch.channels_last)
    bias = None if conv.bias is None else conv.bias.to(dtype)
    hu, wu = h * upsample, w * upsample
    k, s = conv.kernel_size[0], conv.stride[0]
    hout, wout = (hu + 2 * pad - k) // s + 1, (wu + 2 * pad - k) // s + 1
    out = x.new_empty(x.shape[0], conv.out_channels, hout, wout, dtype=dtype)
    out = out.contiguous(memory_format=torch.channels_last)
    xv, outv = x.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1)  # NHWC views, no copies
    rows = _rows(rows, max(cin * (wu + 2 * pad) * s, conv.out_channels * wout))
    for a in range(0, hout, rows):
        b = min(hout, a + rows)
        padded_rows = torch.arange(a * s, (b - 1) * s + k, device=x.device) - pad
        strip = xv.index_select(1, _reflect(padded_rows, hu) // upsample).to(dtype)
        if upsample > 1:
            strip = strip.repeat_interleave(upsample, dim=2)
        if pad:
            left, right = strip[:, :, 1 : pad + 1].flip(2), strip[:, :, -pad - 1 : -1].flip(2)
            strip = torch.cat([left, strip, right], dim=2)
        y = F.conv2d(strip.permute(0, 3, 1, 2), weight, bias, s)
        outv[:, a:b] = y.permute(0, 2, 3, 1)
    return out


def _instance_norm_(x: torch.Tensor, norm: nn.InstanceNorm2d, relu: bool, rows: int | None) -> None:
    """Normalise channels_last x in place with whole-image per-channel statistics (float32)."""
    v = x.permute(0, 2, 3, 1)  # NHWC view
    h, n = v.shape[1], v.shape[1] * v.shape[2]
    rows = _rows(rows, v.shape[2] * v.shape[3])
    total = v.new_zeros((v.shape[0], v.shape[3]), dtype=torch.float64)
    for a in range(0, h, rows):
        total += v[:, a : a + rows].sum((1, 2), dtype=torch.float32).double()
    mean = (total / n).float()[:, None, None]
    sq = torch.zeros_like(total)
    for a in range(0, h, rows):
        sq += (v[:, a : a + rows].float() - mean).square_().sum((1, 2)).double()
    scale = torch.rsqrt((sq / n).float() + norm.eps)[:, None, None]
    shift = -mean * scale
    if norm.affine:
        w, b = norm.weight.float(), norm.bias.float()
        scale, shift = scale * w, shift * w + b
    for a in range(0, h, rows):
        y = torch.addcmul(shift, v[:, a : a + rows].float(), scale)
        v[:, a : a + rows] = y.clamp_min_(0) if relu else y


def _conv_layer(
    x: torch.Tensor, layer: ConvLayer, upsample: int, dtype: torch.dtype, rows: int | None
) -> torch.Tensor:
    pad, conv = layer[0].padding[0], layer[1]
    y = _conv_strips(x, conv, pad, upsample, dtype, rows)
    if len(layer) > 2:
        _instance_norm_(y, layer[2], relu=True, rows=rows)
    return y


@torch.inference_mode()
def stylize_strips(
    net: TransformNet, x: torch.Tensor, dtype: torch.dtype = torch.bfloat16, rows: int | None = None
) -> torch.Tensor:
    """net(x) for a (B, 3, H, W) batch, layer by layer in strips of `rows` rows (None: auto).

    Activations are stored in `dtype`; statistics and the final sigmoid are float32 (as returned).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    x = x.contiguous(memory_format=torch.channels_last)
    for m in net.net:
        if isinstance(m, ResidualBlock):
            body = m.body
            y = _conv_layer(x, body[0], 1, dtype, rows)
            y = _conv_strips(y, body[2], body[1].padding[0], 1, dtype, rows)
            _instance_norm_(y, body[3], relu=False, rows=rows)
            x = y.add_(x)
        elif isinstance(m, UpsampleConv):
            x = _conv_layer(x, m[1], int(m[0].scale_factor), dtype, rows)
        else:
            x = _conv_layer(x, m, 1, dtype, rows)
    return torch.sigmoid(x[..., :h, :w].float())
