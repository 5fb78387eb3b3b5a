"""Wall-clock timing that waits for the device (one call, and several calls side by side), and
the CPU time a process has used."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its children that have exited, since
    it started: loader workers that are still running are not counted yet."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def median_ms(
    runs: dict[str, Callable[[], object]], repeats: int, device: torch.device
) -> dict[str, float]:
    """Median ms of each run after one warm-up each, the runs alternating (side by side)."""
    for fn in runs.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(timed(fn, device))
    return {k: 1000 * statistics.median(v) for k, v in times.items()}
