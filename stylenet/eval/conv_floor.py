"""The convolution floor of a training step or an inference on the machine at hand.

The convolutions a run makes (recorded as they are called: their weights, input shapes and memory
layout) are timed alone in the given number format: forward, and backward where the run needs it
(the input's gradient when the input requires one, the weight's when the weight is trained).
Everything else (norms, activations, padding, upsampling, the loss, the optimizer, layout copies)
is overhead above this floor; `python -m stylenet.bench` prints each path as a fraction of it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair
from torch.overrides import TorchFunctionMode

from stylenet.eval.timing import timed


@dataclass(frozen=True)
class ConvCall:
    """One convolution as a run made it (hashable: equal calls are timed once)."""

    weight: tuple[int, ...]
    bias: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    shape: tuple[int, ...]  # the input's
    channels_last: bool
    grad_input: bool
    grad_weight: bool


class _Recorder(TorchFunctionMode):
    """Counts every 2-D convolution called while active, however it is called (a module, or
    F.conv2d with a derived kernel, as the training form of UpsampleConv does)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[ConvCall] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.conv2d:
            self.calls[_call(*args, **kwargs)] += 1
        return func(*args, **kwargs)


def _call(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> ConvCall:
    cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    if isinstance(padding, str):
        raise ValueError(f"padding={padding!r}: the floor times numeric padding only")
    return ConvCall(
        tuple(weight.shape),
        bias is not None,
        _pair(stride),
        _pair(padding),
        _pair(dilation),
        groups,
        tuple(x.shape),
        cl and not x.is_contiguous(),
        torch.is_grad_enabled() and x.requires_grad,
        torch.is_grad_enabled() and weight.requires_grad,
    )


def record(run: Callable[[], object]) -> Counter[ConvCall]:
    """The 2-D convolutions run() makes, counted (run is called once, as it is: with gradients
    enabled the calls say which gradients a backward pass would need)."""
    with _Recorder() as recorder:
        run()
    return recorder.calls


def time_call(call: ConvCall, dtype: torch.dtype, device: torch.device, repeats: int = 3) -> float:
    """Median seconds of the call alone: forward, plus the backward its gradients need."""
    layout = torch.channels_last if call.channels_last else torch.contiguous_format
    x = torch.randn(call.shape, device=device, dtype=dtype).contiguous(memory_format=layout)
    w = torch.randn(call.weight, device=device, dtype=dtype).contiguous(memory_format=layout)
    b = torch.randn(call.weight[0], device=device, dtype=dtype) if call.bias else None
    x.requires_grad_(call.grad_input)
    w.requires_grad_(call.grad_weight)
    wrt = [t for t in (x, w) if t.requires_grad]

    def once() -> None:
        with torch.set_grad_enabled(bool(wrt)):
            y = F.conv2d(x, w, b, call.stride, call.padding, call.dilation, call.groups)
            if wrt:
                torch.autograd.grad(y, wrt, torch.ones_like(y))

    once()  # warm-up: kernel selection
    return statistics.median(timed(once, device) for _ in range(repeats))


def floor_seconds(
    calls: Counter[ConvCall], dtype: torch.dtype, device: torch.device, repeats: int = 3
) -> float:
    """The summed time of the recorded convolutions, each timed alone."""
    return sum(n * time_call(c, dtype, device, repeats) for c, n in calls.items())
