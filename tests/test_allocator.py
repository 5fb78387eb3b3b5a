"""Freed memory kept for reuse: checked by the page faults of allocating a large tensor again
(counts, not timings)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = """
import resource, sys, torch
from stylenet.allocator import keep_freed_memory
kept = keep_freed_memory()
for _ in range(10):  # 64 MB, allocated and freed until the heap has settled
    torch.empty(2**24).fill_(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.empty(2**24).fill_(1)
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(keep: str) -> tuple[str, int]:
    env = {**os.environ, "STYLENET_KEEP_MEMORY": keep}
    res = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    kept, count = res.stdout.split()
    return kept, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_memory_is_reused_without_new_page_faults():
    kept, with_keep = faults("1")
    off, without = faults("0")
    assert (kept, off) == ("True", "False")
    pages = 10 * 2**26 // os.sysconf("SC_PAGE_SIZE")  # ten fresh 64 MB tensors
    assert without > pages / 2  # glibc's default maps each one afresh
    assert with_keep < pages / 20
