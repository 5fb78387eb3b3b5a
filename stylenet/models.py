"""The shipped models and the user's own: `python -m stylenet.models`.

    python -m stylenet.models                       # name, kind, styles, steps, size, file
    python -m stylenet.models --add run/wave.ckpt   # ship a trained model (maintainers;
                                                    # --replace for one that ships already)

A listed file that cannot be used (a shipped one whose sha256 differs from checkpoints/SHA256SUMS,
or a damaged one of yours) is named in one line and makes the command exit 1. `--add` stores the
model as checkpoints/<name>.safetensors in float16 when its output on a 512 px photo stays within
2/255 of float32 (else float32; a cel net's before its cel stage), and records its sha256.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from stylenet.files.images import load_pil, to_tensor
from stylenet.stylize.checkpoint import CheckpointError, load_model, read_meta, save_model
from stylenet.stylize.shipped import SHIPPED_DIR, SUMS, USER_DIR, sha256, shipped_sums, verified
from stylenet.stylize.stylizer import summarize

ROOT = Path(__file__).resolve().parent.parent
CHECK_PHOTO = ROOT / "data" / "photos" / "chelsea.png"
CHECK_ARTWORK = ROOT / "data" / "styles" / "wave.jpg"  # AdaIN's style for the float16 check
CHECK_SIDE = 512
TOLERANCE = 2 / 255


def describe(path: Path) -> dict:
    """name, kind, styles, steps, size and file of a model file (CheckpointError if unreadable)."""
    meta = read_meta(path)
    summary = summarize(meta)
    return {
        "name": path.stem,
        "kind": summary.kind,
        "styles": summary.offers(),
        "steps": meta.get("steps", "?"),
        "size": f"{path.stat().st_size / 1e6:.1f} MB",
        "file": str(path),
    }


def rows(shipped_dir: Path | None = None, user_dir: Path | None = None) -> tuple[list[dict], int]:
    """(table rows, number of damaged files): the user's own models first, then the shipped."""
    shipped_dir, user_dir = shipped_dir or SHIPPED_DIR, user_dir or USER_DIR
    out, bad = [], 0
    mine = sorted(p for p in user_dir.glob("*.ckpt") if p.is_file()) if user_dir.is_dir() else []
    entries = [(p.stem, "yours", p) for p in mine]
    entries += [(n, "shipped", None) for n in shipped_sums(shipped_dir)]  # None: verify first
    for name, source, path in entries:
        try:
            out.append({**describe(path or verified(name, shipped_dir)), "source": source})
        except CheckpointError as e:  # the message names the file
            out.append({"name": name, "source": source, "error": str(e)})
            bad += 1
    return out, bad


def show(table: list[dict]) -> str:
    cols = ("name", "source", "kind", "styles", "steps", "size", "file")
    cells = [
        [str(r.get(c, "")) for c in cols]
        if "error" not in r
        else [r["name"], r["source"], "", "", "", "", r["error"]]
        for r in table
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def check_outputs(path: Path, meta: dict) -> list[torch.Tensor]:
    """The model's float32 outputs on the check photo: one per style of a multi-style model, the
    check artwork's for AdaIN.

    A cel net's output is taken before its fixed cel stage: the stage's thresholds turn any
    rounding into a whole luminance step (about 3/255) on a few pixels; float32 on one thread
    against two already differs by that. So the weights are judged by what they compute."""
    from stylenet import stylize

    img = load_pil(CHECK_PHOTO)
    scale = CHECK_SIDE / max(img.size)
    photo = to_tensor(img.resize((round(img.width * scale), round(img.height * scale))))
    stylizer = stylize.load(path, "cpu", "fp32", announce=None)
    if stylizer.takes_artworks:
        return [stylizer.bind(artworks=[str(CHECK_ARTWORK)])(photo)]
    bound = [stylizer.bind(style=s) for s in stylizer.styles or [None]]
    for b in bound:
        b.module.cel = False  # the net run() calls
    return [b(photo) for b in bound]


def add(src: Path, name: str, shipped_dir: Path | None = None, replace: bool = False) -> Path:
    """Ship src as shipped_dir/<name>.safetensors (float16 if within TOLERANCE) and record it."""
    shipped_dir = shipped_dir or SHIPPED_DIR
    if name in shipped_sums(shipped_dir) and not replace:
        raise CheckpointError(
            f"{name}: already shipped ({shipped_dir / name}.safetensors); pass --replace once its "
            "held-out numbers are better (python -m stylenet.evaluate --independent)"
        )
    net, meta = load_model(src)
    meta = {k: v for k, v in meta.items() if k not in ("format", "version", "state_dict")}
    with tempfile.TemporaryDirectory() as tmp:
        full = save_model(Path(tmp) / f"{name}.safetensors", net, meta)
        half = save_model(Path(tmp) / f"{name}-half.safetensors", net, meta, half=True)
        diff = max(
            (a - b).abs().max().item()
            for a, b in zip(check_outputs(full, meta), check_outputs(half, meta), strict=True)
        )
    use_half = diff <= TOLERANCE
    out = save_model(shipped_dir / f"{name}.safetensors", net, meta, half=use_half)
    sums = {**shipped_sums(shipped_dir), name: sha256(out)}
    text = "".join(f"{d}  {n}.safetensors\n" for n, d in sorted(sums.items()))
    (shipped_dir / SUMS).write_text(text)
    print(
        f"{out}: {'float16' if use_half else 'float32'} (float16 output differs by at most "
        f"{diff * 255:.2f}/255 at {CHECK_SIDE} px, before any cel stage), "
        f"{out.stat().st_size / 1e6:.2f} MB, sha256 {sums[name]}"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser("python -m stylenet.models", description=__doc__.splitlines()[0])
    p.add_argument("--add", type=Path, metavar="FILE", help="ship this trained model")
    p.add_argument("--name", help="--add: the shipped name (default: the file's stem)")
    p.add_argument("--replace", action="store_true", help="--add: replace a shipped model")
    args = p.parse_args(argv)
    if args.add:
        try:
            add(args.add, args.name or args.add.stem, replace=args.replace)
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    table, bad = rows()
    if not table:
        print(f"no models: none shipped in {SHIPPED_DIR}/, none of yours in {USER_DIR}/")
        return 0
    print(show(table))
    for r in table:
        if "error" in r:
            print(f"error: {r['error']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
