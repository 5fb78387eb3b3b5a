"""The models that ship in the repository's checkpoints/ folder, and how a --ckpt name resolves.

    python -m stylenet.models        # list them, and the user's own checkpoints/*.ckpt

Shipped files are `checkpoints/<name>.safetensors`, each listed with its sha256 in
`checkpoints/SHA256SUMS` (the format of `sha256sum -c`); their cards are in
`checkpoints/README.md`. A name resolves to: a path that exists, else the user's own
`checkpoints/<name>.ckpt` (what `python train.py` exports), else the shipped model of that name,
whose checksum is verified before it is used.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stylenet.stylize.checkpoint import CheckpointError, header_meta, read_meta

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
USER_DIR = Path("checkpoints")  # train.py's export_dir, relative to where commands run
SUMS = "SHA256SUMS"
SUFFIXES = (".ckpt", ".safetensors", ".pt")


class DamagedModelError(CheckpointError):
    """A shipped file whose sha256 differs from SHA256SUMS (changed, truncated or missing)."""


def train_hint(name: str, meta: Mapping[str, Any]) -> str:
    """train.py's overrides for one's own model named `name`, of the kind and style in its
    metadata (checkpoints/README.md gives each shipped model's full recipe)."""
    kind = meta.get("kind", "johnson")
    if kind == "adain":
        return "model=adain" + ("" if name == "adain" else f" model.name={name}")
    if kind != "johnson":
        return f"model={kind} 'styles=[{','.join(meta.get('styles', []))}]' model.name={name}"
    style = meta.get("style") or name
    temporal = float(meta.get("training", {}).get("temporal_weight") or 0)
    return " ".join(
        [f"style={style}"]
        + ([f"style.temporal_weight={temporal:g}"] if temporal else [])
        + ([f"model.name={name}"] if name != style else [])
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_sums(folder: Path | None = None) -> dict[str, str]:
    """{name: sha256} of the shipped models, read from folder/SHA256SUMS ({} if absent);
    folder defaults to SHIPPED_DIR (so do the other functions' folders)."""
    folder = folder or SHIPPED_DIR
    sums = folder / SUMS
    if not sums.is_file():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        digest, _, file = line.strip().partition("  ")
        if digest and file.endswith(".safetensors"):
            out[file.removesuffix(".safetensors")] = digest
    return out


def shipped_names(folder: Path | None = None) -> list[str]:
    return sorted(shipped_sums(folder))


def verified(name: str, folder: Path | None = None) -> Path:
    """The shipped file of name after its sha256 matched SHA256SUMS; CheckpointError otherwise."""
    folder = folder or SHIPPED_DIR
    expected = shipped_sums(folder).get(name)
    path = folder / f"{name}.safetensors"
    if expected is None:
        names = ", ".join(shipped_names(folder))
        raise CheckpointError(f"{name}: not a shipped model (shipped: {names})")
    if not path.is_file():
        raise DamagedModelError(f"{path}: the shipped model {name} is missing from the checkout")
    if sha256(path) != expected:
        raise DamagedModelError(
            f"{path}: changed or truncated (sha256 differs from {folder / SUMS}); restore it with "
            f"git checkout -- {path.name} inside {folder}"
        )
    return path


def shipped_meta(path: Path) -> dict[str, Any]:
    """A verified shipped file's metadata: from the header of a .safetensors file (the caller
    loads the tensors itself)."""
    return header_meta(path) if path.suffix == ".safetensors" else read_meta(path)


def to_stderr(line: str) -> None:
    """announce for commands whose standard output is data (--json)."""
    print(line, file=sys.stderr)


def resolve_model(
    name: str,
    announce: Callable[[str], object] | None = print,
    user_dir: Path | None = None,
    shipped_dir: Path | None = None,
) -> Path:
    """A path as given; else user_dir/<name>.ckpt (or .safetensors); else the shipped model
    <name>, verified. announce gets one line naming a shipped file that was used."""
    user_dir, shipped_dir = user_dir or USER_DIR, shipped_dir or SHIPPED_DIR
    path = Path(name).expanduser()
    if path.is_file():
        return path
    shipped = shipped_sums(shipped_dir)
    if len(path.parts) == 1:
        stem = path.stem if path.suffix in SUFFIXES else path.name
        for candidate in (path, Path(stem + ".ckpt"), Path(stem + ".safetensors")):
            mine = user_dir / candidate
            shipped_twin = mine.resolve() == (shipped_dir / candidate).resolve()
            if mine.is_file() and not (shipped_twin and stem in shipped):
                return mine
        if stem in shipped:
            found = verified(stem, shipped_dir)
            if announce:
                announce(
                    f"using the shipped model {found} (train your own with: python train.py "
                    f"{train_hint(stem, shipped_meta(found))} ...; it is then preferred)"
                )
            return found
    raise CheckpointError(
        f"{name}: no such checkpoint (not a file, not in {user_dir}/, and not a shipped model: "
        f"{', '.join(sorted(shipped)) or 'none'})"
    )
