"""Conditional instance norm (Dumoulin, Shlens, Kudlur 2017): many styles in one transform net.

Every instance norm of Johnson et al.'s transform net takes its scale (gamma) and shift (beta) from
the chosen style; all convolutions are shared. A style is a flat vector of all norms' gammas and
one of their betas (`gamma.<style>`, `beta.<style>`), so a style can be added, frozen or dropped
on its own. A mix of styles is the convex combination of their gammas and betas.

    net = CINNet(["starry_night", "wave"])
    y = net(photos, "wave")                   # training: one style per batch
    stylizer = net.bind({"starry_night": 0.7, "wave": 0.3})   # a plain TransformNet
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call

from stylenet.nets.transform_net import TransformNet, finish


def check_mix(mix: Mapping[str, float], styles: Sequence[str]) -> dict[str, float]:
    """The mix without zero weights; ValueError for unknown styles, negative weights or a sum
    other than 1 (a convex combination)."""
    for name, w in mix.items():
        if name not in styles:
            raise ValueError(f"no style {name!r}; styles: {', '.join(styles)}")
        if not w >= 0:
            raise ValueError(f"mix weight {name}={w:g} must be >= 0")
    total = sum(mix.values())
    if abs(total - 1.0) > 1e-3:
        raise ValueError(f"mix weights sum to {total:g}; they must sum to 1")
    return {k: float(w) for k, w in mix.items() if w > 0}


class CINNet(nn.Module):
    """A TransformNet (`body`, shared, its norms without affine parameters) plus per-style
    gamma/beta vectors over all its norms' channels."""

    kind = "cin"

    def __init__(
        self,
        styles: Sequence[str],
        channels: int = 32,
        num_residual: int = 5,
        output: str = "sigmoid",
        photo_colors: Sequence[str] = (),
        cel: Sequence[str] = (),
    ):
        super().__init__()
        if not styles or len(set(styles)) != len(styles):
            raise ValueError(f"styles={list(styles)!r}: expected distinct style names")
        self.styles = list(styles)
        # the styles whose output keeps the photo's colours / ends with the cel stage (see
        # TransformNet); a mix gets a stage when all its styles have it
        self.photo_colors, self.cel = list(photo_colors), list(cel)
        self.body = TransformNet(channels, num_residual, output)
        self.norms: list[tuple[str, int]] = []  # (module name, channels) of every norm
        for name, m in self.body.named_modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.register_parameter("weight", None)  # the style provides them per call
                m.register_parameter("bias", None)
                self.norms.append((name, m.num_features))
        total = sum(c for _, c in self.norms)
        self.gamma = nn.ParameterDict({s: nn.Parameter(torch.ones(total)) for s in styles})
        self.beta = nn.ParameterDict({s: nn.Parameter(torch.zeros(total)) for s in styles})

    def arch(self) -> dict:
        b = self.body
        stages = {"photo_colors": self.photo_colors, "cel": self.cel}
        return {"channels": b.channels, "num_residual": b.num_residual, "output": b.output,
                **{k: v for k, v in stages.items() if v}}  # fmt: skip

    def stages(self, mix: Mapping[str, float]) -> tuple[bool, bool]:
        """(photo_colors, cel) of a style or mix."""
        used = [s for s, w in mix.items() if w > 0]
        return all(s in self.photo_colors for s in used), all(s in self.cel for s in used)

    def add_styles(self, styles: Sequence[str]) -> None:
        """New styles, their gamma/beta starting from the mean of the existing ones."""
        g = torch.stack([p.detach() for p in self.gamma.values()]).mean(0)
        b = torch.stack([p.detach() for p in self.beta.values()]).mean(0)
        for s in styles:
            self.gamma[s], self.beta[s] = nn.Parameter(g.clone()), nn.Parameter(b.clone())
            self.styles.append(s)

    @torch.no_grad()
    def load_transform_net(self, net: TransformNet) -> None:
        """Start from a trained single-style net: its convolutions become the shared ones and its
        norms' scales and shifts every style's (a warm start; each style then trains its own)."""
        state = net.state_dict()
        norm_keys = {f"{n}.{k}" for n, _ in self.norms for k in ("weight", "bias")}
        self.body.load_state_dict({k: v for k, v in state.items() if k not in norm_keys})
        gamma = torch.cat([state[f"{n}.weight"] for n, _ in self.norms])
        beta = torch.cat([state[f"{n}.bias"] for n, _ in self.norms])
        for s in self.styles:
            self.gamma[s].copy_(gamma)
            self.beta[s].copy_(beta)

    @torch.no_grad()
    def load_shallower(self, source: CINNet) -> None:
        """Load a CIN net like this one with fewer residual blocks (TransformNet.load_shallower):
        the extra blocks start as the identity in every style (their last norm's gamma and beta
        zero), so the deeper net starts as the trained one."""
        if source.styles != self.styles:
            raise ValueError(f"styles {source.styles} differ from this net's {self.styles}")
        n = source.body.num_residual
        self.body.load_shallower(source.body.state_dict(), n)
        names = {m: name for name, m in self.body.named_modules()}
        ends = [names[m] for m in self.body.added_block_ends(n)]
        for s in self.styles:
            mine = self._norm_params(self.gamma[s], self.beta[s])  # views into this style's vectors
            for key, v in source._norm_params(source.gamma[s], source.beta[s]).items():
                mine[self.body.deeper_key(key, n)].copy_(v)
            for name in ends:
                mine[f"{name}.weight"].zero_()
                mine[f"{name}.bias"].zero_()

    def style_parameters(self, styles: Sequence[str]) -> list[nn.Parameter]:
        return [p for s in styles for p in (self.gamma[s], self.beta[s])]

    def affine(self, mix: Mapping[str, float]) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma, beta) of a mix; a single style at weight 1 returns its own tensors."""
        mix = check_mix(mix, self.styles)
        if len(mix) == 1:
            (s,) = mix
            return self.gamma[s], self.beta[s]
        gamma = sum(w * self.gamma[s] for s, w in mix.items())
        beta = sum(w * self.beta[s] for s, w in mix.items())
        return gamma, beta

    def _norm_params(self, gamma: torch.Tensor, beta: torch.Tensor) -> dict[str, torch.Tensor]:
        params, i = {}, 0
        for name, c in self.norms:
            params[f"{name}.weight"], params[f"{name}.bias"] = gamma[i : i + c], beta[i : i + c]
            i += c
        return params

    def forward(self, x: torch.Tensor, style: str | Mapping[str, float]) -> torch.Tensor:
        mix = {style: 1.0} if isinstance(style, str) else style
        params = self._norm_params(*self.affine(mix))
        photo_colors, cel = self.stages(mix)
        y = functional_call(self.body, params, (x,))
        return finish(y, x, photo_colors, cel and not self.training)

    @torch.no_grad()
    def bind(self, style: str | Mapping[str, float]) -> TransformNet:
        """A plain TransformNet (in eval mode) for one style or a mix: what inference, strips
        and export run."""
        mix = {style: 1.0} if isinstance(style, str) else style
        b = self.body
        net = TransformNet(b.channels, b.num_residual, b.output, *self.stages(mix))
        state = {**b.state_dict(), **self._norm_params(*self.affine(mix))}
        net.load_state_dict(state)
        return net.to(next(b.parameters()).device).eval()
