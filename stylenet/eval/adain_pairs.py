"""AdaIN against Gatys optimization with the AdaIN paper's own losses, on photo x artwork pairs:
the one pass's content and style losses (relu4_1 against the AdaIN target, channel means and
standard deviations at relu1_1 ... relu4_1) beside L-BFGS on the pixels from the photo (Huang
and Belongie's Fig. 5), and a grid of the pairs' pictures.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from stylenet.eval.held_out import load_photos, steps_to_match
from stylenet.files.images import load_image
from stylenet.losses.optimization import run as optimize
from stylenet.nets.adain import ENCODER_LAYER, STYLE_LAYERS, AdaINNet, Encoder, adain, mean_std
from stylenet.training.adain_module import content_distance, style_distance

RECORD = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500)


class AdaINObjective:
    """content_weight * content + style_weight * style, as in training, for stylenet.optimize."""

    def __init__(
        self,
        encoder: Encoder,
        style: torch.Tensor,
        content_weight: float = 1.0,
        style_weight: float = 10.0,
    ):
        self.encoder, self.cw, self.sw = encoder, content_weight, style_weight
        with torch.no_grad():
            feats = encoder(style.unsqueeze(0), STYLE_LAYERS)
        self.stats = {k: mean_std(f) for k, f in feats.items()}

    @torch.no_grad()
    def content_targets(self, photo: torch.Tensor) -> torch.Tensor:
        return adain(self.encoder(photo)[ENCODER_LAYER].float(), *self.stats[ENCODER_LAYER])

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encoder(x, STYLE_LAYERS)
        scales = self.encoder.scales
        content = content_distance(feats[ENCODER_LAYER], t, scales[ENCODER_LAYER])
        style = style_distance(feats, self.stats, scales)
        return {"loss": self.cw * content + self.sw * style, "content": content, "style": style}


def pair_key(
    photo: Path, style: Path, size: int, style_size: int, steps: int, weights: tuple, encoder: str
) -> str:
    """The cache key of one optimization: everything its curve depends on."""
    cw, sw = weights
    return f"{photo.name}|{style.name}|{size}|{style_size}|{steps}|{cw:g}|{sw:g}|{encoder}"


def compare(
    net: AdaINNet,
    photos: list[Path],
    styles: list[Path],
    steps: int,
    size: int,
    style_size: int,
    weights: tuple[float, float],
    cache: dict,
    cache_path: Path | None = None,
) -> list[dict]:
    """One row per pair (photo and artwork files that do not read are skipped with a warning);
    cache maps pair_key to an optimization curve, written to cache_path as it grows."""
    rows = []
    shots = load_photos(photos, size)
    for style_name, style in load_photos(styles, style_size):
        sp = Path(style_name)
        objective = AdaINObjective(net.encoder, style, *weights)
        mean, std = objective.stats[ENCODER_LAYER]
        for photo_name, shot in shots:
            pp, photo = Path(photo_name), shot.unsqueeze(0)
            with torch.no_grad():
                out = net(photo, mean, std)
                ours = {
                    k: v.item() for k, v in objective(out, objective.content_targets(photo)).items()
                }
            key = pair_key(pp, sp, size, style_size, steps, weights, net.encoder.weights)
            if key not in cache:
                _, history = optimize(objective, photo, steps, init="photo")
                cache[key] = [{k: h[k] for k in ("loss", "content", "style")} for h in history]
                if cache_path:
                    cache_path.write_text(json.dumps(cache))
            curve = cache[key]
            match = steps_to_match([h["loss"] for h in curve], ours["loss"])
            rows.append(
                {"photo": pp.name, "style": sp.name, "adain": ours, "gatys": curve, "match": match}
            )
            print(
                f"{pp.name} x {sp.name}: AdaIN content {ours['content']:.4g} style "
                f"{ours['style']:.4g} total {ours['loss']:.4g}; Gatys total at step "
                + ", ".join(f"{i}: {curve[i]['loss']:.4g}" for i in RECORD if i < len(curve))
                + f"; Gatys reaches AdaIN's total at step {match}",
                flush=True,
            )
    return rows


def table(rows: list[dict], steps: int) -> str:
    """Mean losses over the pairs: AdaIN, then Gatys at the recorded steps (markdown)."""
    n = len(rows)
    lines = ["| | content | style | total |", "|---|---|---|---|"]

    def mean(get) -> str:
        return f"{sum(get(r) for r in rows) / n:.4g}"

    lines.append(
        "| AdaIN (one pass) | "
        + " | ".join(mean(lambda r, k=k: r["adain"][k]) for k in ("content", "style", "loss"))
        + " |"
    )
    for i in (i for i in RECORD if i <= steps):
        lines.append(
            f"| Gatys L-BFGS, {i} steps | "
            + " | ".join(
                mean(lambda r, k=k, i=i: r["gatys"][i][k]) for k in ("content", "style", "loss")
            )
            + " |"
        )
    return "\n".join(lines)


def grid(
    net: AdaINNet,
    photos: list[Path],
    styles: list[Path],
    alphas: list[float],
    size: int,
    style_size: int,
) -> torch.Tensor:
    """Top row: a blank cell, then each artwork (once per alpha); then per photo: the photo and
    its stylizations. Cells are size x size (photos centre-cropped to a square)."""

    def square(img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        s = min(h, w)
        img = img[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        return F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True)[0]

    arts = [load_image(s, max_side=style_size) for s in styles]
    stats = [net.style_statistics(a) for a in arts]
    cells = [torch.ones(3, size, size)]
    cells += [square(a) for a in arts for _ in alphas]
    for pp in photos:
        photo = square(load_image(pp, max_side=2 * size))
        cells.append(photo)
        for mean, std in stats:
            for alpha in alphas:
                with torch.no_grad():
                    cells.append(net(photo[None], mean, std, alpha)[0])
    return make_grid(torch.stack(cells), nrow=1 + len(arts) * len(alphas), padding=4, pad_value=1)
