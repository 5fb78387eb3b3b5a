"""python -m stylenet.gallery: photos x styles in one JPEG within a size budget, clear errors;
the shipped models by default, a column per style of a multi-style model or per AdaIN artwork."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

from stylenet import gallery, stylize
from stylenet.files.images import load_pil, to_pil, to_tensor
from stylenet.nets.adain import Decoder
from stylenet.nets.cin import CINNet
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize import shipped
from stylenet.stylize.checkpoint import save_model

SIZE = 48  # tile side: layout is GAP + cols*(SIZE+GAP) wide, HEADER + rows*(SIZE+GAP) high


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models")
    out = {
        n: save_model(d / f"{n}.ckpt", TransformNet(8, 1), {"style": n}) for n in ("ink", "wave")
    }
    (d / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    out["broken"] = d / "broken.ckpt"
    return out


@pytest.fixture
def photos(tmp_path, content_dir) -> list[Path]:
    """Two small real photos, one landscape and one portrait (centre-cropped to squares)."""
    a, b = tmp_path / "lighthouse.png", tmp_path / "portrait.jpg"
    Image.open(content_dir / "kodak_kodim21_lighthouse.png").resize((96, 64)).save(a)
    Image.open(content_dir / "kodak_kodim04_portrait.png").resize((50, 75)).save(b)
    return [a, b]


def tile(img: Image.Image, col: int, row: int) -> np.ndarray:
    x, y = 4 + col * (SIZE + 4), 28 + row * (SIZE + 4)
    return np.asarray(img.convert("RGB").crop((x, y, x + SIZE, y + SIZE)), dtype=float)


def test_gallery_layout_size_budget_and_no_overwrite(models, photos, tmp_path, capsys):
    out = tmp_path / "docs" / "gallery.jpg"
    args = ["--ckpt", models["wave"], models["ink"], "--photos", *photos, "-o", out]
    code, stdout, err = run_cli(capsys, gallery.main, *args, "--size", SIZE, "--max-kb", 8)
    assert code == 0 and err == [], err
    assert "[1/2] wave" in stdout and "[2/2] ink" in stdout and "wrote" in stdout
    img = Image.open(out)
    assert img.format == "JPEG"
    # 3 columns (photo, wave, ink) of 48 px tiles with 4 px gaps; a 28 px header and 2 rows
    assert img.size == gallery.canvas_size(2, 3, SIZE) == (4 + 3 * 52, 28 + 2 * 52)
    assert out.stat().st_size <= 8 * 1024
    # row 1: the centre square of the landscape photo, then its stylized versions
    photo = np.asarray(Image.open(photos[0]).convert("RGB").crop((16, 0, 80, 64)).resize((48, 48)))
    diff = [np.abs(tile(img, c, 0) - photo).mean() for c in range(3)]
    assert diff[0] < 8 and min(diff[1:]) > 3 * diff[0], diff
    header = np.asarray(img.convert("L").crop((0, 0, img.width, 28)))
    assert (header < 128).sum() > 50, "style names in the header row"

    before = out.read_bytes()
    code, _, err = run_cli(capsys, gallery.main, *args, "--size", SIZE)
    assert code == 1 and err == [f"error: {out}: exists (pass --overwrite to replace it)"]
    assert out.read_bytes() == before
    code, _, err = run_cli(capsys, gallery.main, *args, "--size", 2 * SIZE, "--overwrite")
    assert code == 0 and Image.open(out).size == gallery.canvas_size(2, 3, 2 * SIZE)


def test_quality_is_lowered_to_fit_and_an_impossible_budget_is_refused(models, photos, tmp_path):
    big = gallery.compose(
        [Image.open(photos[0]).convert("RGB").resize((200, 200))],
        [("wave", [Image.effect_noise((200, 200), 80).convert("RGB")])],
        200,
    )
    generous = gallery.encode_jpeg(big, 10**7)
    tight = gallery.encode_jpeg(big, len(generous[0]) // 2)
    assert generous[1] == 95 and tight is not None and tight[1] < 95
    assert len(tight[0]) <= len(generous[0]) // 2
    assert gallery.encode_jpeg(big, 1000) is None


def test_bad_checkpoint_and_missing_photo_are_reported_the_rest_is_done(
    models, photos, tmp_path, capsys
):
    out = tmp_path / "g.jpg"
    missing = tmp_path / "nope.jpg"
    code, stdout, err = run_cli(
        capsys,
        gallery.main,
        *("--ckpt", models["broken"], models["ink"]),
        *("--photos", photos[0], missing, photos[1]),
        *("-o", out, "--size", SIZE),
    )
    assert code == 1
    assert len(err) == 2 and err[0] == f"error: {missing}: no such file"
    assert err[1].startswith(f"error: {models['broken']}: not a readable checkpoint")
    assert "[2/2] ink" in stdout
    assert Image.open(out).size == gallery.canvas_size(2, 2, SIZE)  # photo + ink, 2 photos


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(the user's checkpoints/, the shipped checkpoints/), both empty, in tmp_path."""
    user, ship = tmp_path / "user", tmp_path / "shipped"
    user.mkdir()
    ship.mkdir()
    monkeypatch.setattr(shipped, "USER_DIR", user)
    monkeypatch.setattr(shipped, "SHIPPED_DIR", ship)
    return user, ship


@pytest.fixture
def drawn(monkeypatch) -> list[Image.Image]:
    """The galleries main() composes, before the (lossy) JPEG encoding."""
    made: list[Image.Image] = []
    compose = gallery.compose
    monkeypatch.setattr(gallery, "compose", lambda *a: made.append(compose(*a)) or made[-1])
    return made


def ship(folder: Path, name: str, net: torch.nn.Module, meta: dict) -> Path:
    """A shipped model: folder/<name>.safetensors, its sha256 added to folder/SHA256SUMS."""
    path = save_model(folder / f"{name}.safetensors", net, meta)
    with open(folder / shipped.SUMS, "a") as f:
        f.write(f"{shipped.sha256(path)}  {path.name}\n")
    return path


def johnson(seed: int) -> TransformNet:
    torch.manual_seed(seed)
    return TransformNet(8, 1)


def adain_checkpoint(path: Path) -> Path:
    """An AdaIN model with the random VGG encoder (nothing to download) and a random decoder whose
    output is spread over [0, 1] (an untrained one gives black pictures)."""
    torch.manual_seed(0)
    decoder = Decoder()
    with torch.no_grad():
        for conv in decoder.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.bias.zero_()
        decoder[-1].weight.mul_(100)
        decoder[-1].bias.fill_(0.5)
    meta = {"kind": "adain", "style": "adain", "encoder": {"arch": "vgg19", "weights": "random"}}
    return save_model(path, decoder, meta)


def diff(img: Image.Image, col: int, photos: list[Path], ckpt: Path, **style) -> list[float]:
    """Per photo (row): mean absolute difference of the tile in column col to infer's output
    (stylize.load) on the centre square at twice the tile size, scaled down to the tile."""
    run_ = stylize.load(ckpt, "cpu").bind(**style)
    out = []
    for row, photo in enumerate(photos):
        crop = gallery.centre_square(load_pil(photo), 2 * SIZE)
        want = to_pil(run_(to_tensor(crop))).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        out.append(np.abs(tile(img, col, row) - np.asarray(want, dtype=float)).mean())
    return out


def gallery_args(tmp_path, photos) -> list:
    return ["--photos", *photos, "-o", tmp_path / "g.jpg", "--size", SIZE, "--device", "cpu"]


def test_no_checkpoints_says_how_to_train_one(tmp_path, dirs, photos, capsys):
    save_model(dirs[0] / "zebra.ckpt", johnson(0), {"style": "zebra"})  # not a default style
    code, _, err = run_cli(capsys, gallery.main, *gallery_args(tmp_path, photos))
    assert code == 2 and len(err) == 1
    assert "no checkpoints" in err[0] and "python train.py style=<name> loss=vgg19" in err[0]
    assert str(dirs[0]) in err[0] and str(dirs[1]) in err[0]
    assert not (tmp_path / "g.jpg").exists()


def test_default_columns_are_the_shipped_styles_the_users_own_first(
    tmp_path, dirs, photos, drawn, capsys
):
    user, folder = dirs
    for i, name in enumerate(("zebra", "shipwreck", "wave", "anime")):
        ship(folder, name, johnson(i), {"style": name, "steps": 100 + i})
    mine = save_model(user / "anime.ckpt", johnson(9), {"style": "anime", "steps": 7})
    code, stdout, err = run_cli(capsys, gallery.main, *gallery_args(tmp_path, photos))
    assert code == 0 and err == [], err
    assert [line.split(" (")[0] for line in stdout.splitlines() if line.startswith("[")] == [
        "[1/3] anime, 7 steps",
        "[2/3] wave, 102 steps",
        "[3/3] shipwreck, 101 steps",
    ]
    assert f"using the shipped model {folder / 'wave.safetensors'}" in stdout
    assert "anime.safetensors" not in stdout
    (img,) = drawn
    assert img.size == Image.open(tmp_path / "g.jpg").size == gallery.canvas_size(2, 4, SIZE)
    assert diff(img, 1, photos, mine) == [0, 0]  # the user's anime, not the shipped one
    assert min(diff(img, 1, photos, folder / "anime.safetensors")) > 5
    assert diff(img, 2, photos, folder / "wave.safetensors") == [0, 0]
    assert diff(img, 3, photos, folder / "shipwreck.safetensors") == [0, 0]


def test_a_changed_shipped_file_is_reported_the_rest_is_made(tmp_path, dirs, photos, drawn, capsys):
    anime = ship(dirs[1], "anime", johnson(0), {"style": "anime"})
    wave = ship(dirs[1], "wave", johnson(1), {"style": "wave"})
    data = bytearray(wave.read_bytes())
    data[-10] ^= 1  # one bit of a weight
    wave.write_bytes(bytes(data))
    code, stdout, err = run_cli(capsys, gallery.main, *gallery_args(tmp_path, photos))
    assert code == 1 and len(err) == 1
    assert err[0].startswith(f"error: {wave}: changed or truncated (sha256 differs from ")
    assert "[1/2] anime" in stdout and "[2/2]" not in stdout
    (img,) = drawn
    assert img.size == gallery.canvas_size(2, 2, SIZE)
    assert diff(img, 1, photos, anime) == [0, 0]


def test_a_multi_style_model_gives_a_column_per_style(tmp_path, dirs, photos, drawn, capsys):
    torch.manual_seed(0)
    net = CINNet(["a", "b"], channels=8, num_residual=1)
    with torch.no_grad():  # styles that differ (a new CINNet starts all styles alike)
        for p in [*net.gamma.values(), *net.beta.values()]:
            p.add_(torch.randn_like(p))
    cin = ship(dirs[1], "cin", net, {"steps": 50})
    args = [*gallery_args(tmp_path, photos), "--overwrite"]
    code, stdout, err = run_cli(capsys, gallery.main, "--ckpt", "cin", *args)
    assert code == 0 and err == [], err
    assert "[1/1] cin: a, 50 steps" in stdout and "[1/1] cin: b, 50 steps" in stdout
    assert drawn[0].size == gallery.canvas_size(2, 3, SIZE)
    assert diff(drawn[0], 1, photos, cin, style="a") == [0, 0]
    assert diff(drawn[0], 2, photos, cin, style="b") == [0, 0]
    assert min(diff(drawn[0], 1, photos, cin, style="b")) > 5

    code, stdout, err = run_cli(capsys, gallery.main, "--ckpt", "cin:b", *args)
    assert code == 0 and err == [] and "[1/1] cin: b" in stdout and "cin: a" not in stdout
    assert drawn[1].size == gallery.canvas_size(2, 2, SIZE)
    assert diff(drawn[1], 1, photos, cin, style="b") == [0, 0]

    code, stdout, err = run_cli(capsys, gallery.main, "--ckpt", "cin:a=0.5,b=0.5", *args)
    assert code == 0 and err == [] and "[1/1] cin: mix-a0.5-b0.5" in stdout
    mix = {"a": 0.5, "b": 0.5}
    assert diff(drawn[2], 1, photos, cin, mix=mix) == [0, 0]
    assert min(diff(drawn[2], 1, photos, cin, style="a")) > 1

    code, _, err = run_cli(capsys, gallery.main, "--ckpt", "cin:c", "cin:a=0.5,b=x", *args)
    assert code == 1 and err == [
        f"error: {cin}: no style 'c'; styles: a, b",
        f"error: {cin}: --mix a=0.5,b=x: expected name=weight,name=weight",
        "error: no usable checkpoints",
    ]


@pytest.mark.filterwarnings("ignore")  # the random VGG encoder's warning
def test_adain_gives_a_column_per_artwork(tmp_path, dirs, photos, style_dir, drawn, capsys):
    adain = adain_checkpoint(dirs[0] / "adain.ckpt")  # the user's own, found by its name
    arts = [tmp_path / "wave.png", tmp_path / "missing.jpg", tmp_path / "scream.png"]
    Image.open(style_dir / "great_wave_hokusai.jpg").resize((64, 48)).save(arts[0])
    Image.open(style_dir / "the_scream_munch.jpg").resize((48, 64)).save(arts[2])
    args = ["--ckpt", "adain", "--artworks", *arts, "--alpha", 0.7]
    code, stdout, err = run_cli(capsys, gallery.main, *args, *gallery_args(tmp_path, photos))
    assert code == 1 and err == [f"error: {arts[1]}: no such file"]
    assert "[1/1] adain: wave" in stdout and "[1/1] adain: scream" in stdout
    (img,) = drawn
    assert img.size == gallery.canvas_size(2, 3, SIZE)
    wave, scream = [str(arts[0])], [str(arts[2])]
    assert diff(img, 1, photos, adain, artworks=wave, alpha=0.7) == [0, 0]
    assert diff(img, 2, photos, adain, artworks=scream, alpha=0.7) == [0, 0]
    # a random VGG encoder sees all pictures much alike: small differences, but not none
    assert min(diff(img, 1, photos, adain, artworks=scream, alpha=0.7)) > 0.1
    assert min(diff(img, 1, photos, adain, artworks=wave)) > 0.1  # alpha 1


def test_adain_without_artworks_is_reported(tmp_path, dirs, photos, monkeypatch, capsys):
    adain = adain_checkpoint(dirs[0] / "adain.ckpt")
    monkeypatch.setattr(gallery, "ARTWORKS", (tmp_path / "none.jpg",))  # not there
    code, _, err = run_cli(capsys, gallery.main, "--ckpt", adain, *gallery_args(tmp_path, photos))
    assert code == 1 and err == [
        f"error: {adain}: an AdaIN model; pass the artwork(s) with --artworks FILE",
        "error: no usable checkpoints",
    ]
    assert not (tmp_path / "g.jpg").exists()
