"""The web page (`python -m stylenet.app`) in headless Chromium, driven by Playwright.

The app runs as a subprocess on a free port with a tmp checkpoints folder (tiny single-style,
CIN and AdaIN models, a hostile pickle, a corrupt file) and a tmp shipped folder; every request that
leaves 127.0.0.1 is blocked and recorded. The result is compared pixel for pixel with what
`infer.py` writes for the same photo and settings. The page's logic (model list, shipped models,
style and artwork choices, errors) is also tested directly through stylenet.app.Service.
"""

from __future__ import annotations

import html
import io
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from conftest import ROOT, save_tiny
from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

import stylenet.app as app_module
from stylenet.app import Service, find_models, get_stylizer, parse_args
from stylenet.files.images import load_image, save_image
from stylenet.infer import main as infer_main
from stylenet.nets.cin import CINNet
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize.checkpoint import save_model
from stylenet.stylize.shipped import sha256

pytestmark = pytest.mark.slow

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

    def __init__(self, checkpoints: Path, shipped: Path, tmp: Path):
        self.tmp, self.log = tmp, tmp / "app.log"
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_TEMP_DIR": str(tmp / "gradio")}
        env["TMPDIR"] = str(tmp)  # where the app keeps its results
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stylenet.app", "--checkpoints", str(checkpoints)]
            + ["--shipped", str(shipped), "--port", str(port), "--precision", "fp32"],
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


def cin_net() -> CINNet:
    """A tiny CIN net whose styles a and b differ."""
    torch.manual_seed(0)
    net = CINNet(["a", "b"], channels=8, num_residual=1)
    with torch.no_grad():
        for p in net.style_parameters(["b"]):
            p.add_(0.5 * torch.randn_like(p))
    return net


def ship(folder: Path, name: str, net: torch.nn.Module, meta: dict) -> Path:
    """A shipped model: folder/<name>.safetensors, listed with its sha256 in folder/SHA256SUMS."""
    folder.mkdir(parents=True, exist_ok=True)
    path = save_model(folder / f"{name}.safetensors", net, meta)
    with open(folder / "SHA256SUMS", "a") as f:
        f.write(f"{sha256(path)}  {path.name}\n")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    save_model(d / "ink.safetensors", TransformNet(8, 1), {"style": "ink"})
    save_model(d / "duo.safetensors", cin_net(), {})
    save_tiny("adain", d / "adain.safetensors")
    (d / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    (d / "evil.ckpt").write_bytes(pickle.dumps(Payload(d.parent / "PWNED")))
    torch.manual_seed(1)
    ship(d.parent / "shipped", "mosaic", TransformNet(8, 1), {"style": "mosaic"})
    return d


@pytest.fixture(scope="module")
def apps(models, tmp_path_factory):
    """The app on the test models, and one on an empty folder; both start at once."""
    empty = tmp_path_factory.mktemp("empty")
    (empty / "none").mkdir()
    app_dir = tmp_path_factory.mktemp("app")
    both = App(models, models.parent / "shipped", app_dir), App(empty / "none", empty, empty)
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


def infer_output(
    model: Path, photo: Path, out: Path, *flags: str, style: str = "ink"
) -> np.ndarray:
    args = ["--ckpt", str(model), str(photo), "-o", str(out), "--precision", "fp32", *flags]
    assert infer_main(args) == 0
    return np.asarray(Image.open(out / f"{photo.stem}_{style}{photo.suffix}"))


def test_defaults_and_model_list(models, tmp_path):
    args = parse_args([])
    assert (args.host, args.port, args.share, args.precision) == ("127.0.0.1", 7860, False, "auto")
    assert args.checkpoints == Path("checkpoints") and args.shipped == app_module.SHIPPED_DIR
    (models / "notes.txt").write_text("not a model")
    own = ["adain.safetensors", "broken.ckpt", "duo.safetensors", "evil.ckpt", "ink.safetensors"]
    assert list(find_models(models, tmp_path / "none")) == own
    assert find_models(tmp_path / "missing", tmp_path / "none") == {}


# The page's logic, called directly (Service is what build_app wires to the page).


@pytest.fixture
def photo(tmp_path, content_dir) -> Path:
    """A real photo, small so the tests stay quick."""
    dst = tmp_path / "photo.png"
    save_image(load_image(content_dir / PHOTO, max_side=96), dst)
    return dst


def service(tmp_path: Path, user: Path, shipped: Path) -> Service:
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    return Service(user, shipped, precision="fp32", results=results)


def message(e: pytest.ExceptionInfo) -> str:
    return html.unescape(e.value.message)


def test_model_list_holds_own_and_shipped_models(tmp_path):
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    torch.manual_seed(0)
    for name in ("starry", "wave"):
        ship(shipped, name, TransformNet(8, 1), {"style": name})
    s = service(tmp_path, user, shipped)  # the user folder does not exist (yet)
    assert s.models() == {
        "starry (shipped)": shipped / "starry.safetensors",
        "wave (shipped)": shipped / "wave.safetensors",
    }
    pick, note = s.refresh(None)
    assert pick["choices"] == ["starry (shipped)", "wave (shipped)"] and not note["visible"]

    # the user's own model of a shipped model's name hides the shipped one; others stay
    user.mkdir()
    save_model(user / "wave.ckpt", TransformNet(8, 1), {"style": "wave"})
    save_model(user / "ink.safetensors", TransformNet(8, 1), {"style": "ink"})
    assert s.models() == {
        "ink.safetensors": user / "ink.safetensors",
        "wave.ckpt": user / "wave.ckpt",
        "starry (shipped)": shipped / "starry.safetensors",
    }

    # --checkpoints pointing at the shipped folder: each shipped file once, as shipped
    save_model(shipped / "mine.ckpt", TransformNet(8, 1), {"style": "mine"})
    same = service(tmp_path, shipped, shipped)
    assert list(same.models()) == ["mine.ckpt", "starry (shipped)", "wave (shipped)"]

    # nothing at all: the note says where models go
    (tmp_path / "empty").mkdir()
    pick, note = service(tmp_path, tmp_path / "empty", tmp_path / "empty").refresh(None)
    assert pick["choices"] == [] and note["visible"]
    assert note["value"].startswith(f"No models in `{(tmp_path / 'empty').resolve()}`")


def test_the_working_size_stylizes_as_infer_does(tmp_path, content_dir):
    big = tmp_path / "big.png"
    save_image(load_image(content_dir / PHOTO, max_side=640), big)
    user = tmp_path / "user"
    user.mkdir()
    torch.manual_seed(0)
    model = save_model(user / "ink.ckpt", TransformNet(8, 1), {"style": "ink"})
    s = service(tmp_path, user, tmp_path / "shipped")
    _, out = s.run({"path": str(big)}, "ink.ckpt", work_size="512")
    got = np.asarray(Image.open(out))
    assert got.shape == np.asarray(Image.open(big)).shape
    assert np.array_equal(got, infer_output(model, big, tmp_path / "w", "--work-size", "512"))
    _, full = s.run({"path": str(big)}, "ink.ckpt")
    assert not np.array_equal(np.asarray(Image.open(full)), got)


def test_shipped_and_own_models_stylize_as_infer(tmp_path, photo):
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    torch.manual_seed(0)
    theirs = ship(shipped, "ink", TransformNet(8, 1), {"style": "ink"})
    s = service(tmp_path, user, shipped)
    _, out = s.run({"path": str(photo)}, "ink (shipped)")
    assert Path(out).name == "photo_ink.png"
    expected = infer_output(theirs, photo, tmp_path / "theirs")
    assert np.array_equal(np.asarray(Image.open(out)), expected)

    user.mkdir()
    torch.manual_seed(1)
    mine = save_model(user / "ink.ckpt", TransformNet(8, 1), {"style": "ink"})
    assert list(s.models()) == ["ink.ckpt"]
    _, out = s.run({"path": str(photo)}, "ink.ckpt")
    result = np.asarray(Image.open(out))
    assert np.array_equal(result, infer_output(mine, photo, tmp_path / "mine"))
    assert not np.array_equal(result, expected)


def test_live_frames_are_shrunk_and_stylized_as_infer(models, tmp_path):
    s = service(tmp_path, models, tmp_path / "no-shipped")
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out, speed = s.live(frame, "ink.safetensors", size=128)
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    assert "frames/s at 128x96" in speed
    small = torch.nn.functional.interpolate(
        torch.from_numpy(frame).permute(2, 0, 1).float()[None] / 255, (96, 128),
        mode="bilinear", antialias=True,
    )[0].clamp(0, 1)  # fmt: skip
    run = get_stylizer(models / "ink.safetensors", precision="fp32")
    expected = run(small).float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert s.live(None, "ink.safetensors") == (None, "")
    assert s.live(frame, "nothing.ckpt")[1] == "Pick a model first."
    assert s.live(frame, "broken.ckpt")[1].startswith("error: ")


def test_a_changed_shipped_file_is_refused_in_one_line(tmp_path, photo):
    shipped = tmp_path / "shipped"
    path = ship(shipped, "ink", TransformNet(8, 1), {"style": "ink"})
    s = service(tmp_path, tmp_path / "user", shipped)
    s.run({"path": str(photo)}, "ink (shipped)")  # loads (and caches) the good file
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one changed bit in a weight: the same size, still a loadable file
    path.write_bytes(bytes(data))
    for old in s.results.iterdir():
        shutil.rmtree(old)
    with pytest.raises(gr.Error) as e:
        s.run({"path": str(photo)}, "ink (shipped)")
    assert message(e) == (
        f"error: {path}: changed or truncated (sha256 differs from {shipped / 'SHA256SUMS'}); "
        f"restore it with git checkout -- ink.safetensors inside {shipped}"
    )
    assert list(s.results.iterdir()) == []


def test_cin_style_choice_is_infers(tmp_path, photo):
    user = tmp_path / "user"
    user.mkdir()
    model = save_model(user / "duo.safetensors", cin_net(), {})
    s = service(tmp_path, user, tmp_path / "none")
    style, art, alpha = s.controls("duo.safetensors")
    assert (style["choices"], style["value"], style["visible"]) == (["a", "b"], "a", True)
    assert not art["visible"] and not alpha["visible"]
    assert s.controls("duo.safetensors", "b")[0]["value"] == "b"

    results = {}
    for name in ("a", "b"):
        _, out = s.run({"path": str(photo)}, "duo.safetensors", name)
        assert Path(out).name == f"photo_{name}.png"
        results[name] = np.asarray(Image.open(out))
        expected = infer_output(model, photo, tmp_path / name, "--style", name, style=name)
        assert np.array_equal(results[name], expected)
    assert not np.array_equal(results["a"], results["b"])

    # a single-style model hides the choice, and a stale style from before does not apply
    save_model(user / "ink.ckpt", TransformNet(8, 1), {"style": "ink"})
    assert not s.controls("ink.ckpt")[0]["visible"]
    _, out = s.run({"path": str(photo)}, "ink.ckpt", "b")
    assert Path(out).name == "photo_ink.png"


def test_adain_artwork_and_alpha_are_infers(tmp_path, photo, capsys):
    user = tmp_path / "user"
    user.mkdir()
    model = save_tiny("adain", user / "adain.safetensors")
    art = tmp_path / "uploads" / "wave.png"  # as gradio keeps an upload: under its own name
    art.parent.mkdir()
    save_image(load_image(ROOT / "data" / "styles" / "wave.jpg", max_side=64), art)
    s = service(tmp_path, user, tmp_path / "none")
    style, shown, alpha = s.controls("adain.safetensors")
    assert not style["visible"] and shown["visible"] and alpha["visible"]

    with pytest.raises(gr.Error) as e:
        s.run({"path": str(photo)}, "adain.safetensors", None, None, 0.5)
    assert message(e) == "Upload an artwork: an AdaIN model takes its style from a picture."

    app_module._loaded.cache_clear()
    results = {}
    for a in (0.5, 1.0):
        _, out = s.run({"path": str(photo)}, "adain.safetensors", "b", {"path": str(art)}, a)
        assert Path(out).name == "photo_wave.png"
        results[a] = np.asarray(Image.open(out))
        flags = ("--style", str(art), "--alpha", str(a))
        expected = infer_output(model, photo, tmp_path / f"infer{a}", *flags, style="wave")
        assert np.array_equal(results[a], expected)
    assert not np.array_equal(results[0.5], results[1.0])
    assert app_module._loaded.cache_info().misses == 1  # the net loaded once for both

    broken = tmp_path / "uploads" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    assert infer_main(["--ckpt", str(model), "--style", str(broken), str(photo)]) == 2
    refusal = capsys.readouterr().err.strip()  # infer's line, which names the file's path
    assert refusal.startswith(f"error: {broken}: not an image file")
    with pytest.raises(gr.Error) as e:
        s.run({"path": str(photo)}, "adain.safetensors", None, {"path": str(broken)}, 1.0)
    assert message(e) == refusal.replace(str(broken), "broken.jpg")  # the name, not gradio's copy


@pytest.mark.parametrize("name", ["evil.ckpt", "broken.ckpt"])
def test_bad_checkpoint_gives_infers_message(models, photo, tmp_path, capsys, name):
    assert infer_main(["--ckpt", str(models / name), str(photo)]) == 2
    refusal = capsys.readouterr().err.strip()
    s = service(tmp_path, models, tmp_path / "none")
    assert s.controls(name)[0]["visible"] is False
    with pytest.raises(gr.Error) as e:
        s.run({"path": str(photo)}, name)
    assert message(e) == refusal and len(refusal.splitlines()) == 1
    assert list(s.results.iterdir()) == []
    assert not (models.parent / "PWNED").exists()


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


def test_live_webcam_shows_stylized_frames_and_their_speed(page, app_url):
    open_app(page, app_url)
    pick_model(page, "ink.safetensors")
    page.get_by_text("Live webcam").click()
    page.locator("#live-cam").get_by_role("button", name="Click to Access Webcam").click()
    page.wait_for_function("document.querySelector('#live-cam video')?.readyState >= 2")
    page.locator("#live-cam button[aria-label='capture photo']").click()  # "Record": streaming
    expect(page.locator("#live-speed")).to_contain_text("frames/s", timeout=120_000)
    assert natural_size(page, "#live-out img")[0] > 0


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


def test_style_and_artwork_follow_the_model(page, app_url, models, content_dir, tmp_path):
    photo = content_dir / PHOTO
    open_app(page, app_url)
    upload(page, photo)
    page.get_by_label("Model").click()
    expect(page.get_by_role("option", name="mosaic (shipped)")).to_be_visible()
    page.get_by_role("option", name="duo.safetensors").click()
    style = page.get_by_label("Style", exact=True)
    expect(style).to_be_visible()
    expect(page.locator("#artwork")).to_be_hidden()
    style.click()
    page.get_by_role("option", name="b", exact=True).click()
    expect(style).to_have_value("b")
    page.get_by_role("button", name="Stylize").click()
    link = page.locator("a[download]").first
    expect(link).to_have_attribute("href", re.compile(r"_lighthouse_b\.png"), timeout=120_000)
    result = np.asarray(Image.open(io.BytesIO(page.request.get(link.get_attribute("href")).body())))
    flags = ("--style", "b")
    expected = infer_output(models / "duo.safetensors", photo, tmp_path, *flags, style="b")
    assert same_picture(result, expected)

    pick_model(page, "adain.safetensors")
    expect(style).to_be_hidden()
    expect(page.locator("#artwork img")).to_be_visible()  # the default artwork
    page.get_by_role("button", name="Stylize").click()
    expect(page.locator("a[download]").first).to_have_attribute(
        "href", re.compile(r"_starry_night\.png"), timeout=120_000
    )
    assert page.outside == []


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
    monkeypatch.setattr(app, "build_app", lambda *a, **k: fake)
    assert app.main(["--checkpoints", str(tmp_path), *argv]) == 0
    assert (fake.launched["server_name"], fake.launched["share"]) == (host, share)
    assert (
        "warning: the page is reachable from other machines" in capsys.readouterr().err
    ) is warned
