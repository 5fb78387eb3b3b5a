"""COCO download code against a local HTTP server on 127.0.0.1 (Range, resume, checksum)."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from stylenet import coco


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves `payload` at any path, honouring `Range: bytes=N-`; can cut the body short."""

    payload = b""
    cut_at: int | None = None
    ranges_seen: list[str] = []

    def do_GET(self):
        body, status = self.payload, 200
        rng = self.headers.get("Range")
        if rng:
            type(self).ranges_seen.append(rng)
            start = int(rng.removeprefix("bytes=").split("-")[0])
            body, status = self.payload[start:], 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = type(self).cut_at
        if cut is not None:
            type(self).cut_at = None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    RangeHandler.ranges_seen = []
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_download_resumes_after_a_cut_and_checks_md5(server, tmp_path: Path):
    payload = bytes(range(256)) * 4000  # ~1 MB
    RangeHandler.payload, RangeHandler.cut_at = payload, 300_000
    dest = tmp_path / "a.zip"
    md5 = hashlib.md5(payload).hexdigest()
    with pytest.raises(coco.DownloadError, match="run again to resume"):
        coco.download(f"{server}/a.zip", dest, md5)
    part = dest.with_name("a.zip.part")
    had = part.stat().st_size
    assert not dest.exists() and 0 < had < len(payload)
    coco.download(f"{server}/a.zip", dest, md5)
    assert RangeHandler.ranges_seen == [f"bytes={had}-"]  # resumed, not restarted
    assert dest.read_bytes() == payload and not part.exists()


def test_bad_checksum_is_refused_and_nothing_is_kept(server, tmp_path: Path):
    RangeHandler.payload, RangeHandler.cut_at = b"not the archive", None
    dest = tmp_path / "b.zip"
    with pytest.raises(coco.DownloadError, match="MD5"):
        coco.download(f"{server}/b.zip", dest, "0" * 32)
    assert not dest.exists() and not dest.with_name("b.zip.part").exists()


def test_unreachable_server_gives_a_clear_error(tmp_path: Path):
    with pytest.raises(coco.DownloadError, match="cannot connect"):
        coco.download("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", timeout=2)


def test_cli_downloads_and_extracts_a_split(server, tmp_path: Path, monkeypatch, capsys):
    archive = make_zip({"train2014/COCO_1.jpg": b"\xff\xd8jpeg1", "train2014/COCO_2.jpg": b"j2"})
    RangeHandler.payload, RangeHandler.cut_at = archive, None
    monkeypatch.setitem(coco.MD5, "train2014", hashlib.md5(archive).hexdigest())
    root = tmp_path / "coco"
    rc = coco.main(["--root", str(root), "--url", f"{server}/train2014.zip"])
    assert rc == 0
    assert (root / "train2014" / "COCO_1.jpg").read_bytes() == b"\xff\xd8jpeg1"
    assert not (root / "train2014.zip").exists()
    assert "data.root=" in capsys.readouterr().out
