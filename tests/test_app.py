"""The web page (`python -m stylenet.app`) in headless Chromium, driven by Playwright.

The app runs as a subprocess on a free port with a tmp checkpoints folder (a tiny model, a hostile
pickle, a corrupt file); every request that leaves 127.0.0.1 is blocked and recorded. The result
is compared pixel for pixel with what `infer.py` writes for the same photo and settings.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

from stylenet.app import find_models, parse_args
from stylenet.checkpoint import save_model
from stylenet.infer import main as infer_main
from stylenet.nets.transform_net import TransformNet

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
PHOTO = "kodak_kodim21_lighthouse.png"  # 768 x 512


class Payload:
    """Unpickling this runs exec(), which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`python -m stylenet.app` on a free port, started in the background."""

    def __init__(self, checkpoints: Path, tmp: Path):
        self.tmp, self.log = tmp, tmp / "app.log"
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(tmp / "gradio")}
        env["TMPDIR"] = str(tmp)  # where the app keeps its results
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stylenet.app", "--checkpoints", str(checkpoints)]
            + ["--port", str(port), "--precision", "fp32"],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),  # noqa: SIM115
        )
        self.url = f"http://127.0.0.1:{port}/"

    def ready(self) -> str:
        """The page's address once it answers."""
        deadline = time.monotonic() + 180  # a start-up limit, not a measurement
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=5).close()
                return self.url
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    pytest.fail(f"app did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    save_model(d / "ink.safetensors", TransformNet(8, 1), {"style": "ink"})
    (d / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    (d / "evil.ckpt").write_bytes(pickle.dumps(Payload(d.parent / "PWNED")))
    return d


@pytest.fixture(scope="module")
def apps(models, tmp_path_factory):
    """The app on the test models, and one on an empty folder; both start at once."""
    empty = tmp_path_factory.mktemp("empty")
    (empty / "none").mkdir()
    both = App(models, tmp_path_factory.mktemp("app")), App(empty / "none", empty)
    yield both
    for app in both:
        stop(app.proc)


@pytest.fixture(scope="module")
def app_url(apps):
    return apps[0].ready()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} missing: install Debian's chromium package (apt-get install chromium); "
            ".ci/run does this when it runs as root"
        )
    with sync_playwright() as p:
        fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", *fake_camera])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page whose requests outside 127.0.0.1 are blocked; page.outside lists them."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    page = context.new_page()
    page.outside = []

    def route(r):
        url = r.request.url
        if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            r.continue_()
        else:
            page.outside.append(url)
            r.abort()

    page.route("**/*", route)
    yield page
    context.close()


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float rounding: the app and infer.py may run with other thread counts, whose
    float32 reductions differ in the last bits, so a few pixels may be one level apart (both run
    in float32: bf16 on another thread count differs by more)."""
    diff = np.abs(a.astype(int) - b.astype(int))
    return a.shape == b.shape and diff.max() <= 1 and (diff > 0).mean() < 1e-3


def open_app(page: Page, url: str) -> None:
    page.goto(url, timeout=120_000)  # a loaded 2-core machine took over 30 s
    expect(page.get_by_role("button", name="Stylize")).to_be_visible(timeout=60_000)


def uploaded(page: Page, name: str = "", timeout: float = 60_000) -> None:
    """Wait until the photo box shows the server's copy of the file (the upload is done)."""
    named = f"[src*='{name}']" if name else ""  # [src*=''] would match nothing
    img = page.locator(f"#photo img[src*='/gradio_api/file=']{named}")
    img.wait_for(state="attached", timeout=timeout)


def upload(page: Page, path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(path))
    uploaded(page, path.name)


def pick_model(page: Page, name: str) -> None:
    page.get_by_label("Model").click()
    page.get_by_role("option", name=name).click()
    expect(page.get_by_label("Model")).to_have_value(name)


def errors(page: Page, text: str):
    """The error messages shown in the page that contain text."""
    return page.locator("[data-testid=toast-text]").filter(has_text=text)


def infer_output(model: Path, photo: Path, out: Path, *flags: str) -> np.ndarray:
    args = ["--ckpt", str(model), str(photo), "-o", str(out), "--precision", "fp32", *flags]
    assert infer_main(args) == 0
    return np.asarray(Image.open(out / f"{photo.stem}_ink{photo.suffix}"))


def test_defaults_and_model_list(models, tmp_path):
    args = parse_args([])
    assert (args.host, args.port, args.share, args.precision) == ("127.0.0.1", 7860, False, "auto")
    (models / "notes.txt").write_text("not a model")
    assert list(find_models(models)) == ["broken.ckpt", "evil.ckpt", "ink.safetensors"]
    assert find_models(tmp_path / "missing") == {}


def test_stylize_a_photo_in_the_browser(page, app_url, models, content_dir, tmp_path):
    photo = content_dir / PHOTO
    size = Image.open(photo).size
    open_app(page, app_url)
    expect(page.get_by_text("Photos up to 16 megapixels, e.g. 4000 x 4000")).to_be_visible()
    upload(page, photo)
    pick_model(page, "ink.safetensors")
    page.get_by_role("button", name="Stylize").click()

    link = page.locator("a[download]").first
    expect(link).to_be_visible(timeout=120_000)
    assert natural_size(page, "img[src*='_ink.png']") == list(size)

    page.screenshot(path=tmp_path / "app.png", full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "app.png", ARTIFACTS / "app.png")

    body = page.request.get(link.get_attribute("href")).body()
    result = Image.open(io.BytesIO(body))
    assert result.size == size
    expected = infer_output(models / "ink.safetensors", photo, tmp_path / "infer")
    assert same_picture(np.asarray(result), expected)
    assert page.outside == []


def natural_size(page: Page, selector: str) -> list[int]:
    img = page.locator(selector).first
    img.wait_for()
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle())
    return img.evaluate("i => [i.naturalWidth, i.naturalHeight]")


def test_webcam_picture(page, app_url):
    """Chromium's fake camera (a test pattern) stands in for a webcam."""
    open_app(page, app_url)
    page.get_by_role("button", name="Capture from camera").click()
    page.get_by_role("button", name="Click to Access Webcam").click()
    page.wait_for_function("document.querySelector('#photo video')?.readyState >= 2")  # playing
    page.get_by_role("button", name="capture photo").click()
    uploaded(page)
    pick_model(page, "ink.safetensors")
    page.get_by_role("button", name="Stylize").click()
    expect(page.locator("a[download]").first).to_be_visible(timeout=120_000)
    before = natural_size(page, "img[src$='.png']:not([src*='_ink'])")
    assert before[0] > 0 and natural_size(page, "img[src*='_ink.png']") == before


def test_strength_and_colour_controls_match_infer(page, app_url, models, content_dir, tmp_path):
    photo = content_dir / PHOTO
    open_app(page, app_url)
    upload(page, photo)
    pick_model(page, "ink.safetensors")
    number = page.get_by_label("number input for Strength (0: the photo, 1: full style)")
    number.fill("0.5")
    number.press("Enter")
    page.get_by_label("luminance").check()
    page.get_by_role("button", name="Stylize").click()
    link = page.locator("a[download]").first
    expect(link).to_be_visible(timeout=120_000)
    result = np.asarray(Image.open(io.BytesIO(page.request.get(link.get_attribute("href")).body())))
    flags = ("--strength", "0.5", "--preserve-color", "luminance")
    expected = infer_output(models / "ink.safetensors", photo, tmp_path / "infer", *flags)
    assert same_picture(result, expected)
    assert not np.array_equal(result, infer_output(models / "ink.safetensors", photo, tmp_path))


def bad_files(d: Path, content_dir: Path) -> dict[str, tuple[Path, str]]:
    text = d / "notes.jpg"
    text.write_text("text, not a picture")
    truncated = d / "truncated.jpg"
    truncated.write_bytes((content_dir / "mate_storm.jpg").read_bytes()[:5000])
    huge = d / "huge.png"
    Image.new("RGB", (5000, 4000)).save(huge)  # 20 megapixels, a 60 KB file
    return {
        "non-image": (text, "notes.jpg: not an image file"),
        "truncated": (truncated, "truncated.jpg: unreadable or truncated image"),
        "huge": (
            huge,
            "huge.png: 5000 x 4000 is 20.0 megapixels, too large (the limit is 16 megapixels",
        ),
    }


@pytest.mark.parametrize("case", ["non-image", "truncated", "huge"])
def test_bad_upload_shows_a_message(page, app_url, content_dir, tmp_path, case):
    path, message = bad_files(tmp_path, content_dir)[case]
    open_app(page, app_url)
    upload(page, path)
    expect(errors(page, message)).to_have_count(1, timeout=60_000)  # on upload
    page.get_by_role("button", name="Stylize").click()
    expect(errors(page, message)).to_have_count(2, timeout=60_000)  # and again on Stylize
    # the page still works: a good photo after the bad one is stylized
    upload(page, content_dir / PHOTO)
    pick_model(page, "ink.safetensors")
    page.get_by_role("button", name="Stylize").click()
    expect(page.locator("a[download]").first).to_be_visible(timeout=120_000)


@pytest.mark.parametrize("name", ["evil.ckpt", "broken.ckpt"])
def test_bad_checkpoint_is_refused_as_infer_refuses_it(
    page, app_url, models, content_dir, tmp_path, capsys, name
):
    assert infer_main(["--ckpt", str(models / name), str(content_dir / PHOTO)]) == 2
    refusal = capsys.readouterr().err.strip()
    assert refusal.startswith(f"error: {models / name}: ")
    open_app(page, app_url)
    upload(page, content_dir / PHOTO)
    pick_model(page, name)
    page.get_by_role("button", name="Stylize").click()
    expect(errors(page, refusal[:60])).to_have_text(refusal, timeout=60_000)
    assert not (models.parent / "PWNED").exists()


def test_empty_checkpoints_folder_explains_where_models_go(page, apps, models, content_dir):
    app = apps[1]
    empty = app.tmp / "none"
    try:
        open_app(page, app.ready())
        where = f"No models in {empty.resolve()}. Put exported <style>.ckpt"
        expect(page.locator("#no-models")).to_contain_text(where)
        upload(page, content_dir / PHOTO)
        page.get_by_role("button", name="Stylize").click()
        expect(errors(page, where)).to_have_count(1, timeout=60_000)
        # a model put there later is found by the refresh button
        shutil.copy(models / "ink.safetensors", empty)
        page.get_by_role("button", name="↻").click()
        expect(page.get_by_label("Model")).to_have_value("ink.safetensors")
        expect(page.locator("#no-models")).to_be_hidden()
        page.get_by_role("button", name="Stylize").click()
        expect(page.locator("a[download]").first).to_be_visible(timeout=120_000)
        assert len(list(app.tmp.glob("stylenet-app-*/*/*_ink.png"))) == 1
    finally:
        stop(app.proc)
    assert app.proc.returncode == 0 and not list(app.tmp.glob("stylenet-app-*"))  # results removed


class FakeApp:
    def queue(self, **kwargs):
        return self

    def launch(self, **kwargs):
        self.launched = kwargs


@pytest.mark.parametrize(
    "argv, host, share, warned",
    [([], "127.0.0.1", False, False), (["--host", "0.0.0.0"], "0.0.0.0", False, True)]
    + [(["--share"], "127.0.0.1", True, True)],
)
def test_public_page_is_explicit_and_warned(
    monkeypatch, capsys, tmp_path, argv, host, share, warned
):
    import stylenet.app as app

    fake = FakeApp()
    monkeypatch.setattr(app, "build_app", lambda *a: fake)
    assert app.main(["--checkpoints", str(tmp_path), *argv]) == 0
    assert (fake.launched["server_name"], fake.launched["share"]) == (host, share)
    assert (
        "warning: the page is reachable from other machines" in capsys.readouterr().err
    ) is warned
