"""StyleBank (Chen, Yuan, Liao, Yu, Hua 2017): a shared encoder and decoder, one filter bank per
style between them.

    encoder: 9x9 conv 32, stride-2 convs 64 and 128 (instance norm + ReLU each)
    bank:    per style, `bank_layers` 3x3 convs 128 -> 128 (instance norm + ReLU each)
    decoder: two x2 upsample + 3x3 conv stages, 9x9 conv to RGB

Without a bank (style None) the net is an auto-encoder, trained to reconstruct the photo so that
the encoder and decoder keep content and the banks alone carry style. Fusion: the bank outputs of a
mix are combined linearly, sum_i w_i * bank_i(features).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stylenet.nets.cin import check_mix
from stylenet.nets.transform_net import OUTPUTS, ConvLayer, RGBConv, UpsampleConv, to_pixels


class BankMix(nn.Module):
    """sum_i weights[i] * banks[i](x): the fused style bank of a mix (one bank at 1: that bank)."""

    def __init__(self, banks: Sequence[nn.Sequential], weights: Sequence[float]):
        super().__init__()
        self.banks, self.weights = nn.ModuleList(banks), [float(w) for w in weights]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.banks) == 1 and self.weights[0] == 1.0:
            return self.banks[0](x)
        return sum(w * bank(x) for w, bank in zip(self.weights, self.banks, strict=True))


class BoundStyleBank(nn.Module):
    """A sequence of layers from photo to pixels, as TransformNet: `net` and `output` are what
    stylenet/stylize/strips.py executes. What StyleBankNet.bind returns."""

    def __init__(self, net: nn.Sequential, output: str):
        super().__init__()
        self.net, self.output = net, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return to_pixels(self.net(x), self.output, x, self.training)[..., :h, :w]


class StyleBankNet(nn.Module):
    kind = "stylebank"

    def __init__(
        self,
        styles: Sequence[str],
        channels: int = 32,
        bank_layers: int = 2,
        output: str = "sigmoid",
    ):
        super().__init__()
        if not styles or len(set(styles)) != len(styles):
            raise ValueError(f"styles={list(styles)!r}: expected distinct style names")
        if bank_layers < 1:
            raise ValueError(f"bank_layers={bank_layers}: a bank needs at least one layer")
        if output not in OUTPUTS:
            raise ValueError(f"output={output!r}: expected one of {', '.join(OUTPUTS)}")
        c = channels
        self.styles, self.channels, self.bank_layers, self.output = (
            list(styles),
            channels,
            bank_layers,
            output,
        )
        self.encoder = nn.Sequential(
            ConvLayer(3, c, 9), ConvLayer(c, 2 * c, 3, stride=2), ConvLayer(2 * c, 4 * c, 3, 2)
        )
        self.banks = nn.ModuleDict({s: self._bank() for s in styles})
        self.decoder = nn.Sequential(UpsampleConv(4 * c, 2 * c), UpsampleConv(2 * c, c), RGBConv(c))

    def _bank(self) -> nn.Sequential:
        c = 4 * self.channels
        return nn.Sequential(*[ConvLayer(c, c, 3) for _ in range(self.bank_layers)])

    def arch(self) -> dict:
        return {"channels": self.channels, "bank_layers": self.bank_layers, "output": self.output}

    def add_styles(self, styles: Sequence[str]) -> None:
        for s in styles:
            self.banks[s] = self._bank().to(next(self.parameters()).device)
            self.styles.append(s)

    def style_parameters(self, styles: Sequence[str]) -> list[nn.Parameter]:
        return [p for s in styles for p in self.banks[s].parameters()]

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def layers(self, style: str | Mapping[str, float] | None) -> nn.Sequential:
        """Encoder, the (fused) bank of a style or mix (none for None: auto-encoder), decoder."""
        if style is None:
            return nn.Sequential(*self.encoder, *self.decoder)
        mix = check_mix({style: 1.0} if isinstance(style, str) else style, self.styles)
        bank = BankMix([self.banks[s] for s in mix], list(mix.values()))
        return nn.Sequential(*self.encoder, bank, *self.decoder)

    def forward(self, x: torch.Tensor, style: str | Mapping[str, float] | None) -> torch.Tensor:
        return BoundStyleBank(self.layers(style), self.output).train(self.training)(x)

    def bind(self, style: str | Mapping[str, float] | None) -> BoundStyleBank:
        """The stylizer (eval mode, sharing this net's weights) of a style, a mix or None."""
        return BoundStyleBank(self.layers(style), self.output).eval()
