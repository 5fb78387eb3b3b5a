"""Videos through infer.py: frames, rate, size, duration and audio kept; bad clips fail alone."""

from __future__ import annotations

import av
import pytest
import torch
from conftest import save_tiny

from stylenet.files.images import load_image
from stylenet.infer import main
from stylenet.nets.transform_net import TransformNet
from stylenet.stylize.video import flicker, pan_zoom_clip, stylize_video


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny("johnson", tmp_path_factory.mktemp("model") / "ink.ckpt")


@pytest.fixture(scope="module")
def photo(content_dir):
    return load_image(content_dir / "kodak_kodim21_lighthouse.png")


def probe(path):
    """(frames decoded, fps, (width, height), duration in s, audio codec or None)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(video=0))
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        return frames, float(v.average_rate), (v.width, v.height), c.duration / 1e6, audio


def test_clip_and_photo_in_a_folder_with_a_corrupt_clip(
    model, photo, content_dir, tmp_path, capsys
):
    d = tmp_path / "in"
    d.mkdir()
    pan_zoom_clip(photo, d / "clip.mp4", frames=12, size=(64, 48), fps=12)
    (d / "photo.png").write_bytes((content_dir / "skimage_coffee.png").read_bytes())
    good = (d / "clip.mp4").read_bytes()
    (d / "broken.mp4").write_bytes(good[: len(good) // 3])  # truncated: no index at the end
    code = main(["--ckpt", str(model), str(d)])
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith(f"error: {d / 'broken.mp4'}: ")
    assert (d / "photo_ink.png").is_file() and not (d / "broken_ink.mp4").exists()
    assert "flicker" in out and "audio copied" in out
    src, dst = probe(d / "clip.mp4"), probe(d / "clip_ink.mp4")
    assert src[:3] == (12, 12.0, (64, 48)) and dst[:3] == src[:3]
    assert dst[3] == pytest.approx(src[3], abs=0.1) and dst[3] == pytest.approx(1.0, abs=0.1)
    assert src[4] == dst[4] == "aac"
    # no overwrite without --overwrite, and earlier outputs in the folder are not stylized again
    before = (d / "clip_ink.mp4").read_bytes()
    assert main(["--ckpt", str(model), str(d / "clip.mp4")]) == 1
    assert "exists (pass --overwrite" in capsys.readouterr().err
    assert (d / "clip_ink.mp4").read_bytes() == before


def test_odd_size_clip_without_audio(model, photo, tmp_path, capsys):
    pan_zoom_clip(photo, tmp_path / "odd.mkv", frames=5, size=(65, 47), fps=25, audio=False)
    assert main(["--ckpt", str(model), str(tmp_path / "odd.mkv")]) == 0
    assert "no audio" in capsys.readouterr().out
    assert probe(tmp_path / "odd_ink.mkv")[:3] == (5, 25.0, (65, 47))
    assert probe(tmp_path / "odd_ink.mkv")[4] is None


def test_flicker_figure_and_temporal_blend(photo, tmp_path):
    frames = [torch.rand(3, 8, 8) for _ in range(4)]
    assert flicker(frames, frames) == pytest.approx(1.0)
    assert flicker(frames, [f * 0.5 for f in frames]) == pytest.approx(0.5)
    assert flicker(frames, [frames[0]] * 4) == 0.0

    clip = pan_zoom_clip(photo, tmp_path / "c.mp4", frames=8, size=(64, 48), audio=False)
    torch.manual_seed(1)
    net = TransformNet(8, 1).eval()
    with torch.no_grad():
        runs = [
            stylize_video(clip, tmp_path / f"out{a}.mp4", lambda x: net(x[None])[0], a, False)
            for a in (0.0, 0.6)
        ]
    assert all(r.frames == 8 and r.flicker > 0 for r in runs)
    assert runs[1].flicker < 0.8 * runs[0].flicker  # an average over frames changes less
