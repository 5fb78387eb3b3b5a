"""Download and unpack MS-COCO training photos: `python -m stylenet.coco [--split train2014]`.

Resumes an interrupted download (HTTP Range), shows progress, checks the MD5 published for each
archive, then extracts to data/coco/<split>/ (the default `data.root` of `data=coco`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

BASE_URL = "http://images.cocodataset.org/zips"
MD5 = {  # as published alongside the archives
    "train2014": "0da8c0bd3d6becc4dcb32757491aca88",
    "val2014": "a3d79f5ed8d289b7a7554ce06a5782b3",
    "train2017": "cced6f7f71b7629ddf16f17bbcfab6b2",
    "val2017": "442b8da7639aecaf257c1dceb8ba8c80",
}
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    pass


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Fetch url to dest, resuming dest.part; verify md5; dest appears only when valid."""
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # already complete
            resp = None
        else:
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: cannot connect ({getattr(e, 'reason', e)})") from None
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # server ignored Range: start over
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length else None
            with (
                open(part, "ab" if have else "wb") as f,
                tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name) as bar,
            ):
                try:
                    while block := resp.read(CHUNK):
                        f.write(block)
                        bar.update(len(block))
                except (OSError, urllib.error.URLError) as e:
                    raise DownloadError(
                        f"{url}: interrupted after {f.tell()} bytes ({e}); run again to resume"
                    ) from None
            if total is not None and part.stat().st_size < total:
                raise DownloadError(
                    f"{url}: got {part.stat().st_size} of {total} bytes; run again to resume"
                )
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise DownloadError(f"{dest.name}: MD5 {got} != expected {md5}; deleted, run again")
    os.replace(part, dest)
    return dest


def extract(archive: Path, root: Path) -> Path:
    """Unpack a zip into root (skips members already present with the right size)."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir()]
            for m in tqdm(members, desc=f"extract {archive.name}", unit="file"):
                target = (root / m.filename).resolve()
                if not target.is_relative_to(root.resolve()):
                    raise DownloadError(f"{archive}: unsafe member path {m.filename!r}")
                if target.is_file() and target.stat().st_size == m.file_size:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".part")
                with z.open(m) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                os.replace(tmp, target)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{archive}: not a valid zip ({e}); delete it and run again") from None
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stylenet.coco", description=__doc__.splitlines()[0])
    p.add_argument("--split", default="train2014", choices=sorted(MD5))
    p.add_argument("--root", type=Path, default=Path("data/coco"), help="default: data/coco")
    p.add_argument("--url", help="archive URL (a mirror); default: the official COCO server")
    p.add_argument("--keep-zip", action="store_true", help="keep the archive after extracting")
    args = p.parse_args(argv)
    url = args.url or f"{BASE_URL}/{args.split}.zip"
    archive = args.root / f"{args.split}.zip"
    part = archive.with_name(archive.name + ".part")
    if (args.root / args.split).is_dir() and not archive.exists() and not part.exists():
        print(f"{args.root / args.split} is already there")
        return 0
    try:
        download(url, archive, MD5[args.split])
        extract(archive, args.root)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not args.keep_zip:
        archive.unlink()
    print(f"done: train with  python train.py data=coco data.root={args.root / args.split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
