"""The process's memory allocator: freed memory kept for reuse (glibc's malloc, on Linux)."""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters, glibc's malloc.h
OFF = "STYLENET_KEEP_MEMORY"


def keep_freed_memory() -> bool:
    """Serve large allocations from the heap and keep what is freed there for the next ones.
    Returns whether it applied: with glibc on Linux, unless STYLENET_KEEP_MEMORY=0.

    A training step frees and allocates the same large tensors over and over. By default glibc
    maps each large one fresh and unmaps it when freed, so the kernel zeroes its pages again on
    first touch: about 150 000 page faults per 256 px step at batch 4, about 9% of its time on a
    2-core CPU. The cost: the process keeps its peak memory until it exits. train.py sets it;
    infer.py does not: it would stylize a 1024 x 1024 photo 13-18% faster, but the layers of a
    large photo differ in size, freed blocks are not always reused, and a 3840 x 2160 photo in
    float32 peaked at 3.5-3.8 GB instead of 2.9."""
    if os.environ.get(OFF, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
