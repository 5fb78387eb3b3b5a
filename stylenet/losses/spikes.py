"""Spikes in instance-normalized features, and a penalty on them.

A net can steer an instance norm by putting one small region far outside the rest of its channel
(a spike): the spike sets the channel's statistics and so scales the whole channel down, and the
region itself comes out as a dark blob (the "droplets" Karras et al. 2020 traced in StyleGAN).
`SpikePenalty` watches a net's instance norms and measures, per norm, mean(relu(|z| - threshold)^2)
over its input, z being each value's distance from its channel's mean in mean absolute deviations.
That scale, unlike the standard deviation, is hardly moved by a small spike, so the penalty keeps
a gradient that lowers the spike (in standard deviations a dominant spike's z is fixed by its area
alone). Ordinary features cost nothing: |z| > 8 is beyond 6 standard deviations of a Gaussian.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def deviations(x: torch.Tensor) -> torch.Tensor:
    """|x - mean| per sample and channel, in mean absolute deviations (float32)."""
    x = x.float()
    d = (x - x.mean(dim=(2, 3), keepdim=True)).abs()
    return d / (d.mean(dim=(2, 3), keepdim=True) + 1e-5)


class SpikePenalty:
    def __init__(self, net: nn.Module, threshold: float = 8.0):
        self.threshold = threshold
        self.terms: list[torch.Tensor] | None = None  # a list while watching
        self.collected: list[torch.Tensor] = []
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.register_forward_pre_hook(self._see)

    def _see(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if self.terms is not None:
            z = deviations(inputs[0])
            self.terms.append(F.relu(z - self.threshold).square().mean())

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Collect the norms' terms during the forward passes inside the block."""
        self.terms = []
        try:
            yield
        finally:
            self.collected, self.terms = self.terms, None

    def total(self) -> torch.Tensor:
        """The summed terms of the last watched block (0 if no norm ran)."""
        return torch.stack(self.collected).sum() if self.collected else torch.zeros(())
