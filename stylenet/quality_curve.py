"""Time to quality: train one style with several recipes for the same CPU time, and plot the
held-out objective against CPU minutes.

    python -m stylenet.quality_curve      # 256 px batch 1 against experiment=shipped, 90 min each
    python -m stylenet.quality_curve --minutes 20 --recipe a="..." --recipe b="..."

Each recipe is `python train.py style=<style> <overrides>` with cpu_minutes= and
snapshot_minutes= added, one process per recipe (loader work in-process, so all of it is counted).
Every snapshot is then scored with the same objective, the one the runs trained (the original
VGG19 by default), on photos no run trained on. The first recipe's final objective is the target;
the table says how many CPU minutes each recipe took to reach it. A recipe whose folder already
holds snapshots is not trained again, so a plot can be remade or extended without losing runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from stylenet.eval.curve import (
    minutes_to_reach,
    objective_key,
    run_curve,
    snapshot_files,
    svg_plot,
)
from stylenet.eval.held_out import load_photos, objective_from_meta
from stylenet.stylize.checkpoint import CheckpointError, read_meta
from stylenet.training.config import PROJECT_ROOT, resolve_path

RECIPES = {  # the docs/evaluation.md recipe of starry_night's first 2100 steps, and the shipped one
    "256px-batch1": "experiment=shipped data.image_size=256 data.batch_size=1",
    "shipped": "experiment=shipped",
}


def held_out_photos() -> list[Path]:
    """The photos experiment=shipped leaves out of training (its data.exclude)."""
    data = OmegaConf.load(PROJECT_ROOT / "configs" / "experiment" / "shipped.yaml").data
    root = resolve_path(str(data.root))
    return sorted(p for pattern in data.exclude for p in root.glob(pattern))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m stylenet.quality_curve", description=__doc__.splitlines()[0]
    )
    p.add_argument("--style", default="starry_night", help="configs/style/<name> (starry_night)")
    p.add_argument(
        "--recipe",
        action="append",
        metavar="NAME=OVERRIDES",
        help='a recipe as train.py overrides, e.g. fast="experiment=shipped lr=2e-3"; repeat '
        "for more; the first is the target (default: " + ", ".join(RECIPES) + ")",
    )
    p.add_argument("--minutes", type=float, default=90, help="CPU minutes per recipe (90)")
    p.add_argument("--snapshots", type=int, default=12, help="snapshots per recipe (12)")
    p.add_argument("--images", nargs="+", help="held-out photos (experiment=shipped's four)")
    p.add_argument("--size", type=int, default=256, help="long side of those photos (256)")
    p.add_argument("--vgg-weights", default="original", help="the scoring VGG (original)")
    p.add_argument("--jobs", type=int, default=1, help="recipes trained at once (1)")
    p.add_argument("--threads", type=int, help="threads per training (cores / jobs)")
    p.add_argument("--out", type=Path, default=Path("outputs/quality_curve"), help="run folders")
    p.add_argument("--plot", type=Path, help="the SVG (default <out>/time_to_quality.svg)")
    args = p.parse_args(argv)
    recipes = {}
    for r in args.recipe or [f"{k}={v}" for k, v in RECIPES.items()]:
        name, sep, overrides = r.partition("=")
        if not sep or not name.strip() or "/" in name:
            p.error(f"--recipe {r!r}: expected NAME=OVERRIDES")
        if name in recipes:
            p.error(f"--recipe {name}: given twice")
        recipes[name.strip()] = overrides
    args.recipes = recipes
    if args.minutes <= 0 or args.snapshots < 1 or args.jobs < 1:
        p.error("--minutes must be above 0, --snapshots and --jobs at least 1")
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    return args


def train_command(args: argparse.Namespace, name: str) -> list[str]:
    run = (args.out / name).resolve()
    return [
        sys.executable,
        "-m",
        "stylenet.train",
        f"style={args.style}",
        "logger=csv",
        "data.num_workers=0",
        "trainer.max_steps=1000000000",
        *shlex.split(args.recipes[name]),
        f"cpu_minutes={args.minutes}",
        f"snapshot_minutes={args.minutes / args.snapshots}",
        f"hydra.run.dir={run}",
        f"export_dir={run / 'export'}",
    ]


def train_all(args: argparse.Namespace, names: list[str]) -> list[str]:
    """Train the recipes, args.jobs at a time; the names that failed (each reported)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(PROJECT_ROOT)}
    waiting, running, failed = list(names), {}, []
    while waiting or running:
        while waiting and len(running) < args.jobs:
            name = waiting.pop(0)
            (args.out / name).mkdir(parents=True, exist_ok=True)
            log = open(args.out / f"{name}.log", "w")  # noqa: SIM115 (closed below)
            print(f"training {name} for {args.minutes:g} CPU minutes: {args.recipes[name]}")
            proc = subprocess.Popen(
                train_command(args, name), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, cwd=PROJECT_ROOT,
            )  # fmt: skip
            running[name] = (proc, log)
        time.sleep(1)
        for name, (proc, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[name]
            if proc.returncode != 0:
                tail = (args.out / f"{name}.log").read_text(errors="replace").splitlines()[-5:]
                print(f"error: recipe {name} failed (exit {proc.returncode}); the end of "
                      f"{args.out / name}.log:", *tail, sep="\n  ", file=sys.stderr)  # fmt: skip
                failed.append(name)
            else:
                print(f"trained {name}: {len(snapshot_files(args.out / name))} snapshots")
    return failed


def table(curves: dict[str, list[dict]], target: float) -> str:
    first = minutes_to_reach(next(iter(curves.values())), target)
    lines = [
        f"{'recipe':<16} {'CPU min':>8} {'steps':>7} {'objective':>10} {'to target':>10} "
        f"{'ratio':>6}"
    ]
    for name, c in curves.items():
        reach = minutes_to_reach(c, target)
        ratio = f"{reach / first:.2f}" if reach is not None and first else "-"
        lines.append(
            f"{name:<16} {c[-1]['cpu_minutes']:>8.1f} {c[-1]['steps']:>7d} "
            f"{c[-1]['objective']:>10.4g} {'never' if reach is None else f'{reach:.1f}':>10} "
            f"{ratio:>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    photos = load_photos(args.images or held_out_photos(), args.size)  # bad files: warned, skipped
    if not photos:
        print("error: no held-out photo could be read", file=sys.stderr)
        return 1
    todo = [n for n in args.recipes if not snapshot_files(args.out / n)]
    for name in args.recipes:
        if name not in todo:
            print(f"{name}: reusing the snapshots in {args.out / name} (remove it to retrain)")
    failed = train_all(args, todo)
    names = [n for n in args.recipes if n not in failed and snapshot_files(args.out / n)]
    if not names:
        print("error: no recipe has snapshots to score", file=sys.stderr)
        return 1
    try:
        metas = {n: read_meta(snapshot_files(args.out / n)[0]) for n in names}
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    key = objective_key(metas[names[0]])
    if other := [n for n in names if objective_key(metas[n]) != key]:
        print(
            f"error: {', '.join(other)} trained another objective than {names[0]} (style "
            "weights, layers or artwork): their losses cannot share a plot",
            file=sys.stderr,
        )
        return 1  # fmt: skip
    objective = objective_from_meta(metas[names[0]], args.vgg_weights, None)
    print(f"scoring the snapshots on {len(photos)} held-out photo(s) at {args.size} px")
    curves = {n: run_curve(snapshot_files(args.out / n), objective, photos) for n in names}
    target = curves[names[0]][-1]["objective"]
    print(table(curves, target))
    title = f"{args.style}: held-out objective ({args.vgg_weights} VGG19, {args.size} px)"
    plot = args.plot or args.out / "time_to_quality.svg"
    plot.parent.mkdir(parents=True, exist_ok=True)
    plot.write_text(svg_plot(curves, target, title))
    report = {
        "style": args.style, "size": args.size, "vgg_weights": args.vgg_weights,
        "photos": [n for n, _ in photos], "target": target,
        "recipes": {n: {"overrides": args.recipes[n], "curve": curves[n],
                        "minutes_to_target": minutes_to_reach(curves[n], target)} for n in names},
    }  # fmt: skip
    (args.out / "curve.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {plot} and {args.out / 'curve.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
