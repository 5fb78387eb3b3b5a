"""Which number format this hardware runs fast: bf16 where it is native, float32 otherwise."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 AVX512-BF16 / AMX, Arm BF16


@cache
def cpu_has_bf16() -> bool:
    """True when /proc/cpuinfo lists native bf16 instructions (emulated bf16 is slow)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & BF16_CPU_FLAGS)


def has_bf16(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def compute_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """precision 'auto' | 'bf16' | 'fp32' -> the dtype activations are stored in."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision={precision!r}: choose auto, bf16 or fp32")
    if precision == "auto":
        return torch.bfloat16 if has_bf16(device) else torch.float32
    return torch.bfloat16 if precision == "bf16" else torch.float32
