"""AdaIN against Gatys optimization with the same losses, and a picture of held-out pairs.

    python -m stylenet.adain_eval --ckpt adain.ckpt --photos a.png b.png --styles x.jpg y.jpg \\
        [--steps 100] [--size 256] [--grid docs/adain.jpg] [--alphas 1 0.5] [--cache gatys.json]

For every photo x artwork pair: the AdaIN model's content and style losses (the training losses:
relu4_1 against the AdaIN target t, and channel means and standard deviations at relu1_1 ...
relu4_1, original VGG19) and the same losses along L-BFGS optimization of the pixels (Gatys et al.,
started from the photo, as in Huang and Belongie's Fig. 5). --cache keeps the optimization curves,
which do not depend on the model. --grid draws photos x artworks (x alphas).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from stylenet.files.images import ImageError, load_image, save_image
from stylenet.losses.optimization import run as optimize
from stylenet.nets.adain import ENCODER_LAYER, STYLE_LAYERS, AdaINNet, Encoder, adain, mean_std
from stylenet.stylize.checkpoint import CheckpointError, load_model
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
    rows = []
    for sp in styles:
        style = load_image(sp, max_side=style_size)
        objective = AdaINObjective(net.encoder, style, *weights)
        mean, std = objective.stats[ENCODER_LAYER]
        for pp in photos:
            photo = load_image(pp, max_side=size).unsqueeze(0)
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
            match = next((i for i, h in enumerate(curve) if h["loss"] <= ours["loss"]), None)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stylenet.adain_eval", description=__doc__)
    p.add_argument("--ckpt", required=True, help="an AdaIN checkpoint (.ckpt or .safetensors)")
    p.add_argument("--photos", nargs="+", type=Path, required=True)
    p.add_argument("--styles", nargs="+", type=Path, required=True)
    p.add_argument("--steps", type=int, default=100, help="L-BFGS steps (0: no comparison)")
    p.add_argument("--size", type=int, default=256, help="photos' long side")
    p.add_argument("--style-size", type=int, default=256, help="artworks' long side")
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=10.0)
    p.add_argument("--cache", type=Path, help="JSON file keeping the optimization curves")
    p.add_argument("--json", type=Path, help="write all numbers here")
    p.add_argument("--grid", type=Path, help="write a photos x artworks picture here (.jpg)")
    p.add_argument("--alphas", nargs="+", type=float, default=[1.0])
    args = p.parse_args(argv)
    torch.manual_seed(0)
    try:
        net, meta = load_model(args.ckpt)
        if not isinstance(net, AdaINNet):
            raise CheckpointError(f"{args.ckpt}: not an AdaIN model")
        if args.grid:
            pic = grid(net, args.photos, args.styles, args.alphas, args.size, args.style_size)
            save_image(pic, args.grid)
            print(f"wrote {args.grid}")
        if args.steps:
            cache = (
                json.loads(args.cache.read_text()) if args.cache and args.cache.is_file() else {}
            )
            weights = (args.content_weight, args.style_weight)
            rows = compare(
                net,
                args.photos,
                args.styles,
                args.steps,
                args.size,
                args.style_size,
                weights,
                cache,
            )
            if args.cache:
                args.cache.write_text(json.dumps(cache))
            print(table(rows, args.steps))
            if args.json:
                args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    except (CheckpointError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
