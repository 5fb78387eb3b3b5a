"""Multi-style nets (CIN, StyleBank): styles differ, mixes, checkpoints, strips and infer.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import psnr, run_cli
from hydra import compose, initialize_config_dir
from PIL import Image

from stylenet.infer import main
from stylenet.nets.cin import CINNet
from stylenet.nets.stylebank import StyleBankNet
from stylenet.stylize.checkpoint import load_model, save_model
from stylenet.stylize.strips import stylize_strips
from stylenet.training.config import PROJECT_ROOT, ConfigError, style_configs

STYLES = ["starry_night", "wave"]


def random_net(family: str, seed: int = 0):
    """Small nets whose styles differ (CIN: random gammas and betas; StyleBank: random banks)."""
    torch.manual_seed(seed)
    if family == "cin":
        net = CINNet(STYLES, channels=8, num_residual=1)
        with torch.no_grad():
            for s in STYLES:
                net.gamma[s].uniform_(0.5, 1.5)
                net.beta[s].uniform_(-0.3, 0.3)
    else:
        net = StyleBankNet(STYLES, channels=8, bank_layers=1)
    return net.eval()


@pytest.mark.parametrize("family", ["cin", "stylebank"])
def test_styles_differ_and_mix_extremes_are_the_pure_styles(family):
    net = random_net(family)
    x = torch.rand(1, 3, 45, 62)
    with torch.no_grad():
        a, b = net.bind("starry_night")(x), net.bind("wave")(x)
        assert (a - b).abs().mean() > 1e-3  # different styles, different outputs
        assert torch.equal(net.bind({"starry_night": 1.0, "wave": 0.0})(x), a)
        assert torch.equal(net.bind({"wave": 1.0})(x), b)
        half = net.bind({"starry_night": 0.5, "wave": 0.5})(x)
        assert (half - a).abs().mean() > 1e-4 and (half - b).abs().mean() > 1e-4
        assert torch.equal(net(x, "wave"), b)  # training forward = the bound stylizer
    with pytest.raises(ValueError, match="no style 'nope'; styles: starry_night, wave"):
        net.bind("nope")
    with pytest.raises(ValueError, match="sum to 0.5"):
        net.bind({"wave": 0.5})


def test_cin_mix_is_the_convex_combination_of_gamma_and_beta():
    net = random_net("cin")
    bound = net.bind({"starry_night": 0.7, "wave": 0.3})
    norm = bound.net[0][2]  # the first instance norm
    c = norm.num_features
    expect = 0.7 * net.gamma["starry_night"][:c] + 0.3 * net.gamma["wave"][:c]
    assert torch.allclose(norm.weight, expect)
    # shared convolutions, per-style norms only
    assert sum(p.numel() for p in net.gamma.values()) == 2 * net.gamma["wave"].numel()


def test_a_deeper_cin_starts_as_the_shallower_one_in_every_style_and_mix():
    """CINNet.load_shallower: the trained blocks and every style's gammas and betas keep their
    places; the added blocks' last norm starts at zero in every style, so each style and mix
    gives the same picture, and one step then moves the new blocks' scales."""
    small = random_net("cin")
    deep = CINNet(STYLES, channels=8, num_residual=3)
    deep.load_shallower(small)
    x = torch.rand(1, 3, 36, 44)
    with torch.no_grad():
        for style in ["starry_night", "wave", {"starry_night": 0.4, "wave": 0.6}]:
            assert torch.equal(deep.eval().bind(style)(x), small.bind(style)(x))
    ends = [i for i, (name, _) in enumerate(deep.norms) if name in ("net.4.body.3", "net.5.body.3")]
    at = np.cumsum([0] + [c for _, c in deep.norms])
    for s in STYLES:
        for i in ends:
            assert not deep.gamma[s][at[i] : at[i + 1]].any()
            assert not deep.beta[s][at[i] : at[i + 1]].any()
    deep.train()(x, "wave").mean().backward()
    assert deep.gamma["wave"].grad[at[ends[0]] : at[ends[0] + 1]].abs().sum() > 0
    with pytest.raises(ValueError, match="differ"):
        deep.load_shallower(CINNet(["wave", "starry_night"], channels=8, num_residual=1))


def test_stylebank_none_is_the_autoencoder():
    net = random_net("stylebank")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y = net.bind(None)(x)
        expect = torch.sigmoid(net.decoder(net.encoder(x)))
    assert torch.equal(y, expect)


@pytest.mark.parametrize("family", ["cin", "stylebank"])
@pytest.mark.parametrize("style", ["wave", {"starry_night": 0.3, "wave": 0.7}])
def test_strips_equal_untiled(family, style):
    net = random_net(family, 1)
    x = torch.rand(2, 3, 70, 93)
    bound = net.bind(style)
    with torch.no_grad():
        ref = bound(x)
    assert psnr(stylize_strips(bound, x, torch.float32, 8), ref) > 100
    assert psnr(stylize_strips(bound, x, torch.float32, None), ref) > 100


@pytest.mark.parametrize("family", ["cin", "stylebank"])
def test_checkpoint_round_trip(family, tmp_path):
    net = random_net(family)
    x = torch.rand(1, 3, 40, 40)
    meta = {"style": "multi", "training": {s: {"style_weight": 5.0} for s in STYLES}}
    for suffix in (".ckpt", ".safetensors"):
        path = save_model(tmp_path / f"multi{suffix}", net, meta)
        loaded, m = load_model(path)
        assert type(loaded) is type(net) and m["kind"] == family and m["styles"] == STYLES
        assert m["training"]["wave"]["style_weight"] == 5.0
        with torch.no_grad():
            assert torch.equal(loaded.bind("wave")(x), net.bind("wave")(x))
    raw = torch.load(tmp_path / "multi.ckpt", weights_only=True)
    assert raw["kind"] == family and raw["styles"] == STYLES


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {
        f: save_model(d / f"{f}.ckpt", random_net(f), {"style": f}) for f in ("cin", "stylebank")
    }


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "in" / "p.png"
    path.parent.mkdir()
    Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("family", ["cin", "stylebank"])
def test_infer_without_style_or_with_a_bad_one_says_which_styles_exist(
    family, models, photo, tmp_path, capsys
):
    ckpt = models[family]
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo)
    assert code == 2 and len(err) == 1
    assert "pass --style NAME" in err[0] and "styles: starry_night, wave" in err[0]
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo, "--style", "wave", "x")
    assert code == 2 and err == [f"error: {ckpt}: no style 'x'; styles: starry_night, wave"]
    code, _, err = run_cli(
        capsys, main, "--ckpt", ckpt, photo, "--mix", "wave=0.7,starry_night=0.7"
    )
    assert code == 2 and len(err) == 1 and "must sum to 1" in err[0]
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo, "--mix", "wave:1")
    assert code == 2 and len(err) == 1 and "name=weight" in err[0]
    assert sorted(p.name for p in photo.parent.iterdir()) == ["p.png"]  # nothing written


@pytest.mark.parametrize("family", ["cin", "stylebank"])
def test_infer_all_styles_and_a_mix(family, models, photo, capsys):
    ckpt = models[family]
    code, out, err = run_cli(
        capsys, main, "--ckpt", ckpt, photo, "--style", "all", "--mix", "starry_night=0.7,wave=0.3"
    )
    assert code == 0 and not err
    names = ["p_starry_night.png", "p_wave.png", "p_mix-starry_night0.7-wave0.3.png"]
    assert sorted(p.name for p in photo.parent.iterdir()) == sorted(["p.png", *names])
    pix = {n: np.asarray(Image.open(photo.parent / n)) for n in names}
    assert np.abs(pix[names[0]].astype(int) - pix[names[1]]).mean() > 0.5
    # a mix with one style at 1 is that style; existing outputs are not overwritten
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo, "--mix", "wave=1")
    assert code == 0 and not err
    mixed = np.asarray(Image.open(photo.parent / "p_mix-wave1.png"))
    assert np.array_equal(mixed, pix["p_wave.png"])
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo, "--style", "wave")
    assert code == 1 and len(err) == 2 and "exists (pass --overwrite" in err[0]


def test_infer_style_none(models, photo, capsys):
    code, _, err = run_cli(capsys, main, "--ckpt", models["stylebank"], photo, "--style", "none")
    assert code == 0 and not err and (photo.parent / "p_reconstruction.png").is_file()
    code, _, err = run_cli(capsys, main, "--ckpt", models["cin"], photo, "--style", "none")
    assert code == 2 and len(err) == 1 and "needs a stylebank model" in err[0]


def test_single_style_model_refuses_style(photo, tmp_path, capsys):
    from stylenet.nets.transform_net import TransformNet

    ckpt = save_model(tmp_path / "ink.ckpt", TransformNet(8, 1), {"style": "ink"})
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo, "--style", "wave")
    assert code == 2 and len(err) == 1 and "single-style model (ink)" in err[0]


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "configs"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    ("styles", "message"),
    [
        ("[starry_night,nope]", "unknown style 'nope' in styles=; choose from anime, "),
        ("[wave,wave]", "a style is listed twice"),
        ("null", "model=cin needs styles=[name,name,...]"),
    ],
)
def test_bad_style_names_in_training(styles, message):
    cfg = compose_cfg("model=cin", f"styles={styles}")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        style_configs(cfg)


def test_configs_compose():
    for family in ("cin", "stylebank"):
        cfg = compose_cfg(f"model={family}", "styles=[starry_night,wave]")
        assert cfg.model.kind == family and list(cfg.styles) == STYLES
        assert list(style_configs(cfg)) == STYLES


def test_evaluate_takes_a_style_of_a_multistyle_model(tmp_path, content_dir, capsys):
    from stylenet import evaluate

    art = {"starry_night": "data/styles/starry_night.jpg", "wave": "data/styles/wave.jpg"}
    training = {
        s: {"style_image": str(PROJECT_ROOT / p), "content_layers": ["relu2_2"],
            "style_layers": ["relu1_2", "relu2_2"], "style_size": 64, "normalize": True,
            "content_weight": 1.0, "style_weight": 5.0, "tv_weight": 0.0}
        for s, p in art.items()
    }  # fmt: skip
    ckpt = save_model(tmp_path / "cin.ckpt", random_net("cin"), {"training": training})
    args = ["--ckpt", str(ckpt), "--images", str(content_dir / "lomiri_bridge.jpg"),
            "--steps", "0", "--size", "48", "--vgg-weights", "random", "--json"]  # fmt: skip
    reports = {}
    for style in STYLES:
        assert evaluate.main([*args, "--style", style]) == 0
        reports[style] = json.loads(capsys.readouterr().out)
        assert reports[style]["style"] == style
    assert reports["wave"]["model"]["style_loss"] != reports["starry_night"]["model"]["style_loss"]
    for extra, message in (([], "pass --style NAME"), (["--style", "x"], "no style 'x'")):
        assert evaluate.main([*args, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "styles: starry_night, wave" in err[0]


@pytest.mark.parametrize("family", ["cin", "stylebank"])
def test_infer_controls_exif_and_folders_work_for_a_style(family, models, photo, capsys):
    from imagecases import exif_rot6

    exif_rot6(photo.parent / "rot.jpg")
    ckpt = models[family]
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo.parent, "--style", "wave")
    assert code == 0 and not err
    assert Image.open(photo.parent / "rot_wave.jpg").size == (20, 40)  # EXIF orientation applied
    plain = np.asarray(Image.open(photo.parent / "p_wave.png")).astype(int)
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo, "--style", "wave",
        "--preserve-color", "--strength", "0.5",
        "--overwrite",
    )  # fmt: skip
    assert code == 0 and not err
    controlled = np.asarray(Image.open(photo.parent / "p_wave.png")).astype(int)
    assert np.abs(controlled - plain).mean() > 1
    # a second run over the folder skips the earlier outputs (*_wave.*) and refuses to overwrite
    code, _, err = run_cli(capsys, main, "--ckpt", ckpt, photo.parent, "--style", "wave")
    assert code == 1 and len(err) == 3 and all("exists" in e for e in err[:2])


def test_export_without_a_style_of_a_multistyle_model_is_one_line(models, capsys):
    from stylenet import export

    assert export.main(["--ckpt", str(models["cin"]), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass --style NAME or --mix" in err[0]
    assert "(styles: starry_night, wave)" in err[0]


def test_cin_styles_keep_their_photo_colours_and_cel_stages(tmp_path):
    """A CIN style with photo_colors keeps the photo's U and V (in training too) and one with cel
    ends with the cel stage in eval mode; the stages survive a checkpoint and a bind; a mix gets a
    stage only when all its styles have it."""
    from stylenet.ops.preserve_color import rgb_to_yuv

    torch.manual_seed(0)
    net = CINNet(["anime", "wave"], 8, 1, photo_colors=["anime"], cel=["anime"])
    with torch.no_grad():
        net.gamma["wave"].mul_(1.5)
    x = 0.3 + 0.4 * torch.rand(1, 3, 32, 40)  # mid-tones: no colour is clipped
    uv = lambda y: rgb_to_yuv(y)[:, 1:]  # noqa: E731
    net.train()
    assert torch.allclose(uv(net(x, "anime")), uv(x), atol=1e-5)
    assert not torch.allclose(uv(net(x, "wave")), uv(x), atol=1e-2)
    path = save_model(tmp_path / "cin.safetensors", net, {"style": "cin"})
    loaded, meta = load_model(path)
    assert meta["arch"]["photo_colors"] == ["anime"] and meta["arch"]["cel"] == ["anime"]
    bound = loaded.bind("anime")
    assert bound.photo_colors and bound.cel
    assert not any(net.stages({"anime": 0.5, "wave": 0.5}))
    with torch.no_grad():
        assert torch.allclose(bound(x), loaded(x, "anime"), atol=1e-5)
        assert torch.allclose(stylize_strips(bound, x, torch.float32), bound(x), atol=1e-4)
        trained_look = net.train()(x, "anime")
        assert not torch.allclose(loaded(x, "anime"), trained_look, atol=1e-3)  # cel in eval only
