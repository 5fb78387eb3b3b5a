"""The process's memory allocator: freed memory kept for reuse (glibc's malloc, on Linux)."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

import torch

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, glibc's malloc.h
TRIM, MMAP_MAX = 128 * 1024, 65536  # their defaults
OFF = "STYLENET_KEEP_MEMORY"
KEEP_PIXELS = 1920 * 1080  # infer.py keeps freed memory for images up to this size


def _glibc() -> tuple[Callable[..., int], Callable[..., int]] | None:
    """(mallopt, malloc_trim), or None without glibc (musl has no mallopt)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None


GLIBC = _glibc()


def keeps(image: torch.Tensor, pixels: int = KEEP_PIXELS) -> bool:
    """Whether `up_to_size` keeps freed memory for a (..., H, W) image."""
    return image.shape[-2] * image.shape[-1] <= pixels


def keep_freed_memory(keep: bool = True) -> bool:
    """Serve large allocations from the heap and keep what is freed there for the next ones; with
    keep False, return to glibc's defaults and hand back what the heap holds free. Returns whether
    it applied: with glibc on Linux, unless STYLENET_KEEP_MEMORY=0.

    A training step frees and allocates the same large tensors over and over. By default glibc
    maps each large one fresh and unmaps it when freed, so the kernel zeroes its pages again on
    first touch: about 150 000 page faults per 256 px step at batch 4, about 9% of its time on a
    2-core CPU. The cost: the process keeps its peak memory until it exits or returns to the
    defaults. train.py keeps it throughout; infer.py only for images up to KEEP_PIXELS
    (`up_to_size`): the layers of a large photo differ in size, freed blocks are not always
    reused, and a 3840 x 2160 photo in float32 peaked at 3.5-3.8 GB instead of 2.9."""
    if os.environ.get(OFF, "1") == "0" or GLIBC is None:
        return False
    mallopt, trim = GLIBC
    if keep:
        return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    applied = bool(mallopt(M_MMAP_MAX, MMAP_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
    trim(0)
    return applied


def up_to_size(
    stylize: Callable[[torch.Tensor], torch.Tensor], pixels: int = KEEP_PIXELS
) -> Callable[[torch.Tensor], torch.Tensor]:
    """stylize, with freed memory kept while it runs on a (..., H, W) image of at most pixels
    and returned to the system before a larger one."""

    def run(image: torch.Tensor) -> torch.Tensor:
        keep_freed_memory(keeps(image, pixels))
        return stylize(image)

    return run
