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

from stylenet.eval.adain_pairs import compare, grid, table
from stylenet.files.images import ImageError, save_image
from stylenet.nets.adain import AdaINNet
from stylenet.stylize.checkpoint import CheckpointError, load_model
from stylenet.stylize.shipped import resolve_model, to_stderr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stylenet.adain_eval", description=__doc__)
    p.add_argument(
        "--ckpt", required=True, help="an AdaIN model: a file, or a name as for infer.py (adain)"
    )
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
        net, meta = load_model(resolve_model(args.ckpt, to_stderr))
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
                args.cache,
            )
            if not rows:
                print("error: no photo and artwork pair could be read", file=sys.stderr)
                return 1
            print(table(rows, args.steps))
            if args.json:
                args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    except (CheckpointError, ImageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
