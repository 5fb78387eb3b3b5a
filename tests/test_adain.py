"""AdaIN (model=adain): the layer, the network, strips, training and infer.py with any artwork."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest
import torch
import trainrun
from conftest import ROOT, assert_fast_form_is_the_same_function, psnr

from stylenet import adain_eval, infer
from stylenet.files.images import load_image, save_image
from stylenet.nets.adain import (
    ENCODER_LAYER,
    FRAME,
    STYLE_SIZE,
    AdaINNet,
    Decoder,
    Encoder,
    adain,
    mean_std,
    mix_statistics,
    pad_frame,
)
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize.checkpoint import load_model, save_model
from stylenet.stylize.strips import stylize_adain_strips
from stylenet.training.adain_module import AdaINModule

STYLES = ROOT / "data" / "styles"


def random_net(seed: int = 0) -> AdaINNet:
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = Encoder("random")
    decoder = Decoder(encoder.scales[ENCODER_LAYER])
    with torch.no_grad():  # weights that carry the signal through (the default init fades it)
        for m in decoder:
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.bias.zero_()
        decoder[2].weight.mul_(30.0 * 0.005)  # random VGG features are ~0.01, divided by 0.005
        decoder[-1].weight.mul_(0.05 / decoder[-1].weight.std())
        decoder[-1].bias.fill_(0.5)
    return AdaINNet(decoder, encoder).eval()


def test_adain_output_has_the_style_mean_and_std():
    torch.manual_seed(0)
    content = torch.randn(2, 16, 9, 11) * 3 + 1
    style = torch.randn(2, 16, 13, 7) * torch.rand(1, 16, 1, 1) * 5 - 2
    s_mean, s_std = mean_std(style)
    out_mean, out_std = mean_std(adain(content, s_mean, s_std))
    assert torch.allclose(out_mean, s_mean, atol=1e-4)
    assert torch.allclose(out_std, s_std, atol=1e-3)


def test_mixed_statistics_equal_the_mix_of_adain_outputs():
    torch.manual_seed(1)
    x = torch.randn(1, 8, 5, 6)
    stats = [mean_std(torch.randn(1, 8, 4, 4) * k) for k in (1.0, 3.0)]
    mixed = adain(x, *mix_statistics(stats, [0.6, 0.4]))
    expected = 0.6 * adain(x, *stats[0]) + 0.4 * adain(x, *stats[1])
    assert torch.allclose(mixed, expected, atol=1e-5)
    with pytest.raises(ValueError):
        mix_statistics(stats, [0.0, 0.0])


def test_alpha_zero_decodes_the_content_features():
    net = random_net()
    x = torch.rand(1, 3, 48, 40)
    mean, std = net.style_statistics(torch.rand(3, 64, 64))
    with torch.no_grad():
        padded, e = pad_frame(x)  # the photo with its margin, cropped after
        assert e == FRAME
        f = net.encoder(padded)[ENCODER_LAYER]
        plain = net.decoder(f).clamp(0, 1)[..., e : e + 48, e : e + 40]
        assert torch.allclose(net(x, mean, std, alpha=0.0), plain, atol=1e-5)
        styled = net.decoder(adain(f, mean, std)).clamp(0, 1)[..., e : e + 48, e : e + 40]
        assert torch.allclose(net(x, mean, std, alpha=1.0), styled, atol=1e-5)
        assert psnr(plain, styled) < 50  # the style did change the picture


def test_identity_weight_adds_the_photo_reconstruction_and_training_lowers_it():
    """model.identity_weight: |decoder(f(photo)) - photo|^2 joins the loss (off by default), and
    Adam steps on the loss lower it."""
    torch.manual_seed(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = Encoder("random")
    photos, arts = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert "identity" not in AdaINModule(encoder, channels_last=False).losses(photos, arts)[1]
    module = AdaINModule(encoder, identity_weight=50.0, channels_last=False)
    # a small step: at 1e-3 the loss spikes 300-fold on the third step, and where the 30th
    # lands then depends on rounding
    opt = torch.optim.Adam(module.decoder.parameters(), lr=1e-4)
    seen = []
    for _ in range(30):
        _, parts = module.losses(photos, arts)
        expected = parts["content"] + 10.0 * parts["style"] + 50.0 * parts["identity"]
        assert torch.allclose(parts["loss"], expected)
        seen.append(parts["identity"].item())
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
    assert seen[-1] < 0.5 * seen[0], seen


def test_the_training_decoder_is_the_same_function():
    """In training mode the decoder runs each upsampling and its conv as one phase convolution:
    output and gradients match the layers run in order."""
    torch.manual_seed(0)
    x = torch.randn(2, 512, 8, 6, requires_grad=True)
    assert assert_fast_form_is_the_same_function(Decoder(), x).shape == (2, 3, 64, 48)


@pytest.mark.parametrize(("alpha", "rows"), [(1.0, 8), (0.5, 13)])
def test_strips_equal_one_pass(alpha, rows):
    """Several strips per layer (rows=8) and sides not multiples of 8: same output as net(x)."""
    net = random_net(2)
    x = torch.rand(2, 3, 70, 93)
    mean, std = net.style_statistics(torch.rand(3, 80, 60))
    with torch.no_grad():
        ref = net(x, mean, std, alpha)
    out = stylize_adain_strips(net, x, mean, std, alpha, torch.float32, rows)
    assert out.shape == ref.shape == (2, 3, 70, 93)
    assert psnr(out, ref) > 90


def adain_checkpoint(path: Path) -> Path:
    meta = {"kind": "adain", "style": "adain", "encoder": {"arch": "vgg19", "weights": "random"}}
    torch.manual_seed(0)
    return save_model(path, Decoder(), meta)


def test_checkpoint_holds_the_decoder_only_and_loads_safely(tmp_path):
    for name in ("adain.ckpt", "adain.safetensors"):
        path = adain_checkpoint(tmp_path / name)
        if name.endswith(".ckpt"):
            obj = torch.load(path, weights_only=True)
            assert obj["kind"] == "adain" and obj["encoder"]["weights"] == "random"
            assert not any(k.startswith(("encoder", "vgg")) for k in obj["state_dict"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net, meta = load_model(path)
        assert isinstance(net, AdaINNet) and meta["kind"] == "adain"


@pytest.fixture
def photo(tmp_path, content_dir) -> Path:
    """A held-out photo, small so the test stays quick."""
    dst = tmp_path / "photo.png"
    save_image(load_image(content_dir / "kodak_kodim21_lighthouse.png", max_side=96), dst)
    return dst


def test_cli_errors_are_one_line(tmp_path, photo, capsys):
    ckpt = adain_checkpoint(tmp_path / "adain.ckpt")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    cases = [
        ([], "pass the artwork(s) with --style"),
        (["--style", str(tmp_path / "missing.jpg")], "missing.jpg: no such file"),
        (["--style", str(broken)], "broken.jpg: not an image file"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for extra, message in cases:
            assert infer.main(["--ckpt", str(ckpt), *extra, str(photo)]) == 2
            err = capsys.readouterr().err.strip()
            assert message in err and len(err.splitlines()) == 1, err
        with pytest.raises(SystemExit) as e:  # two weights for one artwork
            infer.main(
                ["--ckpt", str(ckpt), str(photo), "--style", str(STYLES / "wave.jpg")]
                + ["--style-weights", "0.5", "0.5"]
            )
        assert e.value.code == 2
    assert not list(tmp_path.glob("photo_*"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict[int, dict[str, float]]]:
    """A short model=adain run (random VGG, 64 px) on two artworks, one of them unreadable-free
    and a corrupt file beside them; returns the exported checkpoint and per-step losses."""
    base = tmp_path_factory.mktemp("adain")
    arts = base / "art"
    arts.mkdir()
    for name in ("wave.jpg", "anime.png"):
        (arts / name).write_bytes((STYLES / name).read_bytes())
    (arts / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    run = base / "run"
    r = trainrun.train(
        run,
        "model=adain",
        "model.vgg_weights=random",
        f"style_data.root={arts}",
        "style_data.image_size=64",
        "trainer.max_steps=40",
        "lr=1e-4",
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "skipped 1 unreadable image file(s): corrupt.jpg" in (run / "train.log").read_text()
    steps: dict[int, dict[str, float]] = {}
    for f in sorted((run / "csv").glob("version_*/metrics.csv")):
        with open(f) as fh:
            for row in csv.DictReader(fh):
                if row.get("train/content"):
                    steps[int(row["step"])] = {
                        k: float(row[f"train/{k}"]) for k in ("content", "style")
                    }
    return run / "export" / "adain.ckpt", steps


@pytest.mark.slow
def test_short_training_lowers_both_losses(trained):
    """Mean of the last 8 logged steps against the first 8: both at least 20% lower (the random
    VGG's content loss levels off about 25% down)."""
    _, steps = trained
    order = sorted(steps)
    assert len(order) >= 30
    for key in ("content", "style"):
        first = sum(steps[s][key] for s in order[:8]) / 8
        last = sum(steps[s][key] for s in order[-8:]) / 8
        assert last < 0.8 * first, (key, first, last)


@pytest.mark.slow
def test_an_artwork_not_in_training_works(trained, photo, tmp_path):
    """Trained on wave and anime only: Kandinsky (never seen) goes through infer.py (no
    overwrite on a second run), and its own relu4_1 statistics drive the decoder: the file equals
    the one-pass net with them, and alpha changes it. How good it looks is judged in the README
    with the original VGG19: 40 steps on a random VGG learn little more than a mean colour, so
    outputs for different artworks are not compared here."""
    ckpt, _ = trained
    out = tmp_path / "out"
    kandinsky = STYLES / "kandinsky.jpg"
    base = ["--ckpt", str(ckpt), "--precision", "fp32", str(photo)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert infer.main([*base, "--style", str(kandinsky), "-o", str(out)]) == 0
        assert infer.main([*base, "--style", str(kandinsky), "-o", str(out)]) == 1  # exists
        assert (
            infer.main([*base, "--style", str(kandinsky), "--alpha", "0", "-o", str(out / "a")])
            == 0
        )
        net, _ = load_model(ckpt)
    result = load_image(out / "photo_kandinsky.png")
    x = load_image(photo)
    assert result.shape == x.shape
    mean, std = net.style_statistics(load_image(kandinsky, max_side=STYLE_SIZE))
    with torch.no_grad():
        assert psnr(result, net(x[None], mean, std)[0]) > 40
    assert psnr(result, load_image(out / "a" / "photo_kandinsky.png")) < 70


@pytest.mark.filterwarnings("ignore")
def test_adain_eval_compares_with_lbfgs_and_keys_its_cache(tmp_path, photo, capsys):
    ckpt = adain_checkpoint(tmp_path / "adain.ckpt")
    cache, report = tmp_path / "curves.json", tmp_path / "report.json"
    args = ["--ckpt", str(ckpt), "--photos", str(photo), "--styles", str(STYLES / "wave.jpg")]
    args += ["--size", "32", "--style-size", "32", "--steps", "2", "--cache", str(cache)]
    assert adain_eval.main([*args, "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "| AdaIN (one pass) |" in out and "| Gatys L-BFGS, 2 steps |" in out
    (row,) = json.loads(report.read_text())["rows"]
    assert row["gatys"][2]["loss"] < row["gatys"][0]["loss"]  # the optimization lowers it
    assert len(json.loads(cache.read_text())) == 1
    assert adain_eval.main(args) == 0
    assert len(json.loads(cache.read_text())) == 1  # the same objective: the curve is reused
    assert adain_eval.main([*args, "--style-weight", "2"]) == 0
    assert len(json.loads(cache.read_text())) == 2  # another objective: a curve of its own
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    capsys.readouterr()
    assert adain_eval.main([*args, "--photos", str(photo), str(broken)]) == 0  # the rest goes on
    assert "broken.jpg" in capsys.readouterr().err
    assert adain_eval.main([*args, "--photos", str(broken)]) == 1  # no pair left


@pytest.mark.slow
def test_model_init_continues_from_the_trained_decoder(trained, tmp_path):
    """model.init=<adain model>: the next run starts at the trained run's late losses (not a fresh
    decoder's), counts its steps on and records where it started; a single-style net is refused."""
    ckpt, steps = trained
    order = sorted(steps)
    late = sum(steps[s]["content"] for s in order[-8:]) / 8
    run = tmp_path / "again"
    args = ("model=adain", "model.vgg_weights=random", f"style_data.root={STYLES}",
            "style_data.image_size=64", "lr=1e-4")  # fmt: skip
    r = trainrun.train(run, *args, f"model.init={ckpt}", "trainer.max_steps=4", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    first = []
    for f in sorted((run / "csv").glob("version_*/metrics.csv")):
        with open(f) as fh:
            first += [
                float(row["train/content"])
                for row in csv.DictReader(fh)
                if row.get("train/content")
            ]
    assert sum(first) / len(first) < 0.9 * sum(steps[s]["content"] for s in order[:4]) / 4
    assert sum(first) / len(first) < 1.5 * late
    _, meta = load_model(run / "export" / "adain.ckpt")
    assert meta["steps"] == 44 and meta["training"]["init"] == {"style": "adain", "steps": 40}
    johnson = save_model(tmp_path / "ink.ckpt", TransformNet(8, 1), {"style": "ink"})
    bad = trainrun.train(tmp_path / "bad", *args, f"model.init={johnson}", "trainer.max_steps=1")
    said = bad.stdout + bad.stderr
    assert bad.returncode == 2 and "error: model.init=" in said and "a johnson model" in said
