"""Time to quality: the held-out objective of a run's CPU-time snapshots (train.py
snapshot_minutes=...), the CPU minutes a run needs to reach a given objective, and the curves as
an SVG plot. Used by python -m stylenet.quality_curve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import torch

from stylenet.losses.objective import StyleObjective
from stylenet.stylize.checkpoint import load_model

SAME_OBJECTIVE = ("style_image", "content_layers", "style_layers", "content_weight",
                  "style_weight", "tv_weight", "style_luminance_only", "cartoon_weight",
                  "color_weight")  # fmt: skip
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
           "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")  # fmt: skip


def snapshot_files(run_dir: Path) -> list[Path]:
    """A run's snapshots, earliest first (their names are the CPU seconds, zero-padded)."""
    return sorted((run_dir / "snapshots").glob("cpu_*.ckpt"))


def objective_key(meta: dict[str, Any]) -> dict[str, Any]:
    """The parts of a snapshot's training record that fix its objective."""
    t = meta.get("training", {})
    return {k: t.get(k) for k in SAME_OBJECTIVE}


@torch.no_grad()
def held_out_objective(
    net: torch.nn.Module, objective: StyleObjective, photos: Sequence[tuple[str, torch.Tensor]]
) -> float:
    """The objective's total, in float32, averaged over the photos (one forward pass each)."""
    net = net.eval()
    totals = []
    for _, photo in photos:
        x = photo.unsqueeze(0)
        y = net(x).float()
        totals.append(float(objective(y, objective.content_targets(x))["loss"]))
    return sum(totals) / len(totals)


def run_curve(
    files: Sequence[Path], objective: StyleObjective, photos: Sequence[tuple[str, torch.Tensor]]
) -> list[dict[str, float]]:
    """[{cpu_minutes, steps, objective}] of each snapshot file, in CPU-time order."""
    points = []
    for f in files:
        net, meta = load_model(f)
        points.append(
            {
                "cpu_minutes": float(meta["cpu_seconds"]) / 60,
                "steps": int(meta.get("training", {}).get("run_steps", 0)),
                "objective": held_out_objective(net, objective, photos),
            }
        )
    return points


def minutes_to_reach(points: Sequence[dict[str, float]], target: float) -> float | None:
    """The CPU minutes at which the curve first reaches target, interpolated linearly between
    the snapshots on either side (None: it never does)."""
    for i, p in enumerate(points):
        if p["objective"] <= target:
            if i == 0:
                return p["cpu_minutes"]
            q = points[i - 1]
            f = (q["objective"] - target) / (q["objective"] - p["objective"])
            return q["cpu_minutes"] + f * (p["cpu_minutes"] - q["cpu_minutes"])
    return None


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [
            m * 10.0**e
            for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in (1, 2, 5)
            if lo <= m * 10.0**e <= hi
        ]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9) / 4))
    step *= next(m for m in (1, 2, 5, 10) if (hi - lo) / (m * step) <= 8)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def svg_plot(
    curves: dict[str, Sequence[dict[str, float]]], target: float | None, title: str
) -> str:
    """Objective (log scale) against CPU minutes, one line per run, target as a dashed line."""
    w, h, left, right, top, bottom = 720, 420, 70, 170, 40, 50
    pts = [p for c in curves.values() for p in c]
    x_hi = max(p["cpu_minutes"] for p in pts) or 1.0
    y_lo = min(p["objective"] for p in pts) * 0.9
    y_hi = max(p["objective"] for p in pts) * 1.1

    def x(v: float) -> float:
        return left + (w - left - right) * v / x_hi

    def y(v: float) -> float:
        f = (math.log(v) - math.log(y_lo)) / (math.log(y_hi) - math.log(y_lo))
        return top + (h - top - bottom) * (1 - f)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">{escape(title)}</text>',
        f'<text x="{(left + w - right) / 2}" y="{h - 12}" text-anchor="middle">CPU minutes</text>',
        f'<text x="16" y="{(top + h - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + h - bottom) / 2})">held-out objective (log)</text>',
    ]
    for t in _ticks(0, x_hi, log=False):
        out.append(f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{h - bottom}" '
                   'stroke="#ddd"/>')  # fmt: skip
        out.append(f'<text x="{x(t):.1f}" y="{h - bottom + 16}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y_lo, y_hi, log=True):
        out.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{w - right}" y2="{y(t):.1f}" '
                   'stroke="#ddd"/>')  # fmt: skip
        out.append(f'<text x="{left - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    if target is not None and y_lo < target < y_hi:
        out.append(f'<line x1="{left}" y1="{y(target):.1f}" x2="{w - right}" '
                   f'y2="{y(target):.1f}" stroke="#555" stroke-dasharray="6 4"/>')  # fmt: skip
    for i, (name, c) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        line = " ".join(f"{x(p['cpu_minutes']):.1f},{y(p['objective']):.1f}" for p in c)
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for p in c:
            out.append(f'<circle cx="{x(p["cpu_minutes"]):.1f}" cy="{y(p["objective"]):.1f}" '
                       f'r="2.5" fill="{colour}"/>')  # fmt: skip
        ly = top + 10 + 18 * i
        out.append(f'<line x1="{w - right + 12}" y1="{ly}" x2="{w - right + 32}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2"/>')  # fmt: skip
        out.append(f'<text x="{w - right + 38}" y="{ly + 4}">{escape(name)}</text>')
    if target is not None:
        ly = top + 10 + 18 * len(curves)
        out.append(f'<line x1="{w - right + 12}" y1="{ly}" x2="{w - right + 32}" y2="{ly}" '
                   'stroke="#555" stroke-dasharray="6 4"/>')  # fmt: skip
        out.append(f'<text x="{w - right + 38}" y="{ly + 4}">target</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
