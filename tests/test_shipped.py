"""Shipped models: name resolution, the sha256 check, `python -m stylenet.models` and torch.hub."""

from __future__ import annotations

import json
import re
import shutil
import statistics
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from PIL import Image
from safetensors.torch import load_file
from trainrun import losses, train

from stylenet import adain_eval, evaluate, infer, models
from stylenet.files.images import load_image
from stylenet.nets.adain import Decoder, layer_scales, mean_std
from stylenet.nets.cin import CINNet
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize import shipped
from stylenet.stylize.checkpoint import CheckpointError, load_model, read_meta, save_model


@pytest.fixture
def photo(tmp_path, content_dir) -> Path:
    path = tmp_path / "photos" / "lighthouse.png"
    path.parent.mkdir()
    Image.open(content_dir / "kodak_kodim21_lighthouse.png").resize((72, 48)).save(path)
    return path


@pytest.fixture
def repo(tmp_path, content_dir, monkeypatch) -> Path:
    """A copy of hubconf.py beside checkpoints/ holding tiny shipped models of every kind."""
    monkeypatch.setattr(models, "CHECK_PHOTO", content_dir / "kodak_kodim21_lighthouse.png")
    monkeypatch.setattr(models, "CHECK_SIDE", 64)
    root = tmp_path / "repo"
    (root / "checkpoints").mkdir(parents=True)
    shutil.copy(ROOT / "hubconf.py", root)
    trained = tmp_path / "trained"
    torch.manual_seed(0)
    save_model(trained / "starry_night.ckpt", TransformNet(8, 1), {"style": "starry_night"})
    cin = CINNet(["wave", "scream"], 8, 1)
    with torch.no_grad():
        cin.gamma["scream"].mul_(1.5)  # two different styles
    save_model(trained / "cin.ckpt", cin, {"style": "cin"})
    decoder = Decoder(layer_scales("random")["relu4_1"])
    meta = {"kind": "adain", "style": "adain", "encoder": {"arch": "vgg19", "weights": "random"}}
    save_model(trained / "adain.ckpt", decoder, meta)
    monkeypatch.setattr(models, "CHECK_ARTWORK", content_dir / "skimage_coffee.png")
    for name in ("starry_night", "cin", "adain"):
        models.add(trained / f"{name}.ckpt", name, root / "checkpoints")
    return root


def test_add_stores_half_precision_within_tolerance_and_records_the_sha(repo, tmp_path):
    folder = repo / "checkpoints"
    sums = shipped.shipped_sums(folder)
    assert sorted(sums) == ["adain", "cin", "starry_night"]
    assert all(shipped.sha256(folder / f"{n}.safetensors") == d for n, d in sums.items())
    for name in sums:
        assert {v.dtype for v in load_file(folder / f"{name}.safetensors").values()} == {
            torch.float16
        }
    half, _ = load_model(folder / "starry_night.safetensors")
    full, _ = load_model(tmp_path / "trained" / "starry_night.ckpt")
    x = load_image(models.CHECK_PHOTO, max_side=64).unsqueeze(0)
    with torch.no_grad():
        assert (half(x) - full(x)).abs().max() <= 2 / 255
    with pytest.raises(CheckpointError, match="already shipped"):
        models.add(tmp_path / "trained" / "starry_night.ckpt", "starry_night", folder)
    ckpt_size = (tmp_path / "trained" / "starry_night.ckpt").stat().st_size
    assert (folder / "starry_night.safetensors").stat().st_size < 0.7 * ckpt_size


def test_the_float16_check_judges_a_cel_net_before_its_cel_stage(
    tmp_path, content_dir, monkeypatch
):
    monkeypatch.setattr(models, "CHECK_PHOTO", content_dir / "kodak_kodim21_lighthouse.png")
    monkeypatch.setattr(models, "CHECK_SIDE", 64)
    torch.manual_seed(0)
    net = TransformNet(8, 1)
    plain = save_model(tmp_path / "plain.ckpt", net, {"style": "anime"})
    net.cel = True
    cel = save_model(tmp_path / "cel.ckpt", net, {"style": "anime"})
    assert load_model(cel)[0].cel
    (with_stage,) = models.check_outputs(cel, {})
    (without,) = models.check_outputs(plain, {})
    net.eval()
    with torch.no_grad():
        x = load_image(models.CHECK_PHOTO, max_side=64).unsqueeze(0)
        assert (net(x)[0] - without).abs().max() > 1 / 255  # the stage changes the picture
    assert torch.equal(with_stage, without)


def test_names_resolve_path_then_own_model_then_shipped(repo, tmp_path, photo):
    folder, mine = repo / "checkpoints", tmp_path / "mine"
    said: list[str] = []
    found = shipped.resolve_model("starry_night.ckpt", said.append, mine, folder)
    assert found == folder / "starry_night.safetensors"
    assert len(said) == 1 and str(found) in said[0] and "python train.py" in said[0]
    save_model(mine / "starry_night.ckpt", TransformNet(8, 1), {"style": "own"})
    said.clear()
    assert shipped.resolve_model("starry_night.ckpt", said.append, mine, folder) == (
        mine / "starry_night.ckpt"
    )
    assert shipped.resolve_model("starry_night", said.append, mine, folder).parent == mine
    assert said == []
    assert shipped.resolve_model(str(photo), said.append, mine, folder) == photo
    with pytest.raises(CheckpointError, match="not a shipped model: adain, cin, starry_night"):
        shipped.resolve_model("nonesuch", said.append, mine, folder)


@pytest.mark.parametrize("damage", ["byte", "truncate", "delete"])
def test_a_damaged_shipped_file_is_refused_in_one_line(repo, photo, monkeypatch, capsys, damage):
    folder = repo / "checkpoints"
    monkeypatch.setattr(shipped, "SHIPPED_DIR", folder)
    monkeypatch.setattr(shipped, "USER_DIR", repo / "nothing")
    monkeypatch.setattr(models, "SHIPPED_DIR", folder)
    monkeypatch.setattr(models, "USER_DIR", repo / "nothing")
    path = folder / "starry_night.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "byte":
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-100]))
    else:
        path.unlink()
    assert infer.main(["--ckpt", "starry_night", str(photo)]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and str(path) in err
    assert ("changed or truncated" if damage != "delete" else "missing") in err
    assert list(photo.parent.iterdir()) == [photo]  # nothing written
    assert models.main([]) == 1
    out, err = capsys.readouterr()
    assert "cin" in out and "adain" in out and str(path) in err


def test_models_lists_shipped_and_own_models(repo, tmp_path, monkeypatch, capsys):
    mine = tmp_path / "mine"
    save_model(mine / "ink.ckpt", TransformNet(8, 1), {"style": "ink", "steps": 12})
    monkeypatch.setattr(models, "SHIPPED_DIR", repo / "checkpoints")
    monkeypatch.setattr(models, "USER_DIR", mine)
    assert models.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "source", "kind", "styles", "steps", "size", "file"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["ink"][1:5] == ["yours", "johnson", "ink", "12"]
    assert rows["cin"][1:4] == ["shipped", "cin", "wave,scream"]
    assert rows["adain"][1:3] == ["shipped", "adain"]


def test_infer_uses_the_shipped_model_and_says_so(repo, photo, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", repo / "checkpoints")
    monkeypatch.setattr(shipped, "USER_DIR", repo / "nothing")
    argv = [
        "--ckpt",
        "cin",
        "--style",
        "wave",
        "--precision",
        "fp32",
        "-o",
        str(photo.parent / "out"),
    ]
    argv.append(str(photo))
    assert infer.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("using the shipped model") == 1
    assert re.search(r"python train.py model=cin 'styles=\[[\w,]+\]' model.name=cin", out)
    result = load_image(photo.parent / "out" / "lighthouse_wave.png")
    net, _ = load_model(repo / "checkpoints" / "cin.safetensors")
    with torch.no_grad():
        expected = net.bind("wave")(load_image(photo).unsqueeze(0))[0]
    assert (result - expected).abs().max() <= 1.5 / 255


def test_evaluate_json_output_stays_json_with_a_shipped_name(
    repo, photo, content_dir, monkeypatch, capsys
):
    """The shipped-model line goes to stderr where stdout carries --json."""
    monkeypatch.setattr(shipped, "SHIPPED_DIR", repo / "checkpoints")
    monkeypatch.setattr(shipped, "USER_DIR", repo / "nothing")
    art = content_dir / "skimage_coffee.png"
    argv = ["--ckpt", "starry_night", "--independent", "--style", str(art), "--images", str(photo),
            "--size", "64", "--json", "-"]  # fmt: skip
    assert evaluate.main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [r["photo"] for r in report["rows"]] == ["lighthouse.png"]
    assert report["half_rules"]["photos"] == 1
    assert report["half_rules"]["compared"] == 0  # one photo: no other photo to compare with
    assert captured.err.count("using the shipped model") == 1


def test_adain_eval_takes_the_shipped_name(repo, photo, content_dir, monkeypatch, capsys):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", repo / "checkpoints")
    monkeypatch.setattr(shipped, "USER_DIR", repo / "nothing")
    art, out = content_dir / "skimage_coffee.png", photo.parent / "grid.jpg"
    argv = ["--ckpt", "adain", "--photos", str(photo), "--styles", str(art), "--steps", "0",
            "--size", "64", "--grid", str(out)]  # fmt: skip
    assert adain_eval.main(argv) == 0
    assert Image.open(out).size[0] > 64
    assert capsys.readouterr().err.count("using the shipped model") == 1


def test_torch_hub_entries_return_ready_modules(repo, content_dir):
    x = load_image(content_dir / "skimage_chelsea.png", max_side=64).unsqueeze(0)
    ships = repo / "checkpoints"
    net = torch.hub.load(str(repo), "starry_night", source="local")
    single, _ = load_model(ships / "starry_night.safetensors")
    cin, _ = load_model(ships / "cin.safetensors")
    with torch.no_grad():
        assert torch.equal(net(x), single(x))
        wave = torch.hub.load(str(repo), "cin", style="wave", source="local")
        assert torch.equal(wave(x), cin.bind("wave")(x))
        assert not torch.equal(wave(x), cin.bind("scream")(x))
        art = load_image(content_dir / "skimage_coffee.png", max_side=96)
        adain = torch.hub.load(str(repo), "adain", artwork=art, alpha=0.5, source="local")
        y = adain(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    mean, std = mean_std(adain.net.encoder(art.unsqueeze(0))["relu4_1"])
    with torch.no_grad():
        assert torch.allclose(y, adain.net(x, mean, std, 0.5))
    with pytest.raises(ValueError, match="styles: wave, scream"):
        torch.hub.load(str(repo), "cin", style="starry", source="local")
    with pytest.raises(
        ValueError, match=r"style=NAME or mix=\{NAME: weight\} \(one of them\): wave"
    ):
        torch.hub.load(str(repo), "cin", source="local")
    (ships / "starry_night.safetensors").write_bytes(b"oops")
    with pytest.raises(CheckpointError, match="changed or truncated"):
        torch.hub.load(str(repo), "starry_night", source="local")


@pytest.mark.slow
def test_model_init_continues_a_single_style_net_and_starts_cin_from_it(tmp_path):
    """model.init: a second run starts from the first one's weights (its first losses are the
    first run's late ones, not a fresh net's) and counts its steps on; CIN starts from it too."""
    first = train(tmp_path / "a", "style=starry_night", "trainer.max_steps=30")
    assert first.returncode == 0, first.stderr[-3000:]
    a = tmp_path / "a" / "export" / "starry_night.ckpt"
    fresh = losses(tmp_path / "a")
    assert statistics.fmean(fresh[s] for s in range(25, 30)) < 0.8 * fresh[0]
    again = train(tmp_path / "b", "style=starry_night", f"model.init={a}", "trainer.max_steps=5",
                  "model.name=longer")  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    warm = losses(tmp_path / "b")
    # its first loss is the loaded net's, before any update; the first updates, with Adam's
    # moments new, can spike (19.7 at step 1 once), so the rest is judged by their median
    assert warm[0] < 0.8 * fresh[0] and statistics.median(warm.values()) < 0.8 * fresh[0]
    _, meta = load_model(tmp_path / "b" / "export" / "longer.ckpt")  # model.name names the file
    assert meta["steps"] == 35 and meta["training"]["init"]["steps"] == 30
    assert meta["style"] == "starry_night"
    cin = train(tmp_path / "c", "model=cin", "styles=[starry_night,wave]", f"model.init={a}",
                "trainer.max_steps=2", "model.name=c")  # fmt: skip
    assert cin.returncode == 0, cin.stderr[-3000:]
    assert losses(tmp_path / "c")[0] < 0.8 * fresh[0]  # starry_night's first step: warm
    deep = train(tmp_path / "e", "style=starry_night", f"model.init={a}", "trainer.max_steps=2",
                 "model.num_residual=7")  # fmt: skip
    assert deep.returncode == 0, deep.stderr[-3000:]
    assert "2 identity blocks added" in (tmp_path / "e" / "train.log").read_text()
    assert losses(tmp_path / "e")[0] == pytest.approx(warm[0], rel=1e-3)  # the same function
    bad = train(tmp_path / "d", "style=wave", f"model.init={a}", "model.channels=16")
    said = bad.stdout + bad.stderr
    assert bad.returncode == 2 and "error: model.init=" in said and "differs" in said, said


def test_model_init_auto_picks_the_shipped_net_of_the_style_else_starry_night():
    from stylenet.training.recipes import auto_init

    assert auto_init("wave", TransformNet()) == shipped.verified("wave")
    assert auto_init("ink", TransformNet()) == shipped.verified("starry_night")  # a new painting
    assert auto_init("anime", TransformNet(photo_colors=True, cel=True)) is None  # not measured
    assert auto_init("wave", TransformNet(channels=16)) is None  # no shipped net of that size
    assert auto_init("wave", TransformNet(output="residual")) is None


@pytest.mark.slow
def test_default_training_of_a_painting_starts_from_its_shipped_net(tmp_path):
    """model.init=auto (the default): the run says where it starts, its first loss is far below a
    fresh net's, and the export counts the shipped steps on."""
    warm = train(tmp_path / "a", "style=kandinsky", "model.init=auto", "trainer.max_steps=2")
    assert warm.returncode == 0, warm.stderr[-3000:]
    log = (tmp_path / "a" / "train.log").read_text()
    assert "model.init=auto: starting from the shipped kandinsky" in log
    fresh = train(tmp_path / "b", "style=kandinsky", "trainer.max_steps=2")  # QUICK: from scratch
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert losses(tmp_path / "a")[0] < 0.5 * losses(tmp_path / "b")[0]
    _, meta = load_model(tmp_path / "a" / "export" / "kandinsky.ckpt")
    shipped_steps = load_model(shipped.verified("kandinsky"))[1]["steps"]
    assert meta["training"]["init"]["style"] == "kandinsky"
    assert meta["steps"] == shipped_steps + 2


def test_every_shipped_file_is_intact_has_a_hub_entry_and_all_fit_in_40_mb():
    """The repository's own checkpoints/: what a fresh clone serves."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf", ROOT / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    names = shipped.shipped_sums(shipped.SHIPPED_DIR)
    assert {
        "anime",
        "starry_night",
        "wave",
        "scream",
        "kandinsky",
        "shipwreck",
        "cin",
        "adain",
    } <= set(names)
    total = 0
    for name in names:
        path = shipped.verified(name, shipped.SHIPPED_DIR)  # the sha256 matches
        total += path.stat().st_size
        assert callable(getattr(hub, name, None)), f"hubconf.py has no entry {name}"
        # the "train your own" hint names styles that exist, and the name when it is not a style
        hint = shipped.train_hint(name, read_meta(path))
        listed = re.search(r"\bstyles?=\[?([\w,]+)", hint)
        styles = listed.group(1).split(",") if listed else []
        assert all((ROOT / "configs" / "style" / f"{s}.yaml").is_file() for s in styles), hint
        assert styles or hint == "model=adain", hint
        assert name in styles or f"model.name={name}" in hint or name == "adain", hint
    assert total <= 40e6


def test_a_shipped_model_is_loaded_once(monkeypatch):
    """Naming a shipped model reads its metadata for the announcement from the file's header;
    only the stylizer loads its tensors."""
    from stylenet.stylize import checkpoint

    loads, lines = [], []
    real = checkpoint.load_file
    monkeypatch.setattr(checkpoint, "load_file", lambda p: loads.append(p) or real(p))
    path = shipped.resolve_model("wave", lines.append, user_dir=Path("/nonexistent"))
    assert not loads and len(lines) == 1 and "style=wave" in lines[0]
    load_model(path)
    assert loads == [path]
    assert shipped.shipped_meta(path) == read_meta(path)
