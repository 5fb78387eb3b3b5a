"""Every YAML in configs/ composes into a complete training config."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
GROUPS = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir())
CHOICES = [(g, f.stem) for g in GROUPS for f in sorted((CONFIGS / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), CHOICES, ids=[f"{g}={o}" for g, o in CHOICES])
def test_every_option_composes(group, option):
    override = f"{group}={option}"
    extra = ["data.root=/tmp/photos"] if (group, option) == ("data", "folder") else []
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[override, *extra])
    OmegaConf.resolve(cfg)
    assert OmegaConf.missing_keys(cfg) == set()
    for key in ("name", "image_size", "content_weight", "style_weight", "tv_weight"):
        assert key in cfg.style
    for key in ("root", "image_size", "batch_size", "num_workers"):
        assert key in cfg.data
    vgg19 = {("loss", "vgg19"), ("experiment", "shipped"), ("experiment", "shipped_adain")}
    expected = "original" if (group, option) in vgg19 else "imagenet"
    assert cfg.loss.vgg_weights == expected and "max_steps" in cfg.trainer


def test_all_groups_are_covered():
    assert {"style", "data", "model", "loss", "trainer", "logger", "experiment"} <= set(GROUPS)
    shipped = {"anime", "wave", "starry_night", "scream", "kandinsky", "shipwreck"}
    assert shipped <= {o for g, o in CHOICES if g == "style"}


@pytest.mark.parametrize(
    "style", ["anime", "wave", "starry_night", "scream", "kandinsky", "shipwreck"]
)
def test_shipped_styles_have_their_image(style):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"style={style}"])
    assert (CONFIGS.parent / cfg.style.image).is_file()
    assert cfg.loss.normalize  # the style weights are relative errors


@pytest.mark.parametrize(
    ("overrides", "folder"),
    [
        (["style=wave"], "wave"),
        (["style=starry_night", "model.name=starry_night_steady"], "starry_night_steady"),
        (["model=adain"], "adain"),
        (["model=cin", "styles=[starry_night,wave]"], "cin-starry_night-wave"),
        (["model=stylebank", "styles=[wave,scream]", "model.name=bank"], "bank"),
    ],
)
def test_the_run_folder_is_named_after_the_export(overrides, folder):
    import stylenet.train  # noqa: F401  (registers the run_name resolver)

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    assert Path(cfg.hydra.run.dir).parent == Path("outputs") / folder
