"""The warping error: the flow estimate against known motion, and what the figure tells apart."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import save_tiny

from stylenet.evaluate import main as evaluate
from stylenet.files.images import load_image, save_image
from stylenet.infer import main as infer
from stylenet.ops.warping import (
    WarpingMeter,
    camera_clip,
    optical_flow,
    visible_mask,
    warping_error,
)
from stylenet.stylize.video import write_clip


@pytest.fixture(scope="module")
def clip(content_dir):
    photo = load_image(content_dir / "kodak_kodim21_lighthouse.png", max_side=512)
    return camera_clip(photo, frames=5, size=(128, 96), pan=0.01, zoom=0.01)


def test_the_flow_estimate_matches_the_known_camera_motion(clip):
    frames, flows = clip
    for t in range(1, len(frames)):
        error = np.sqrt(np.square(optical_flow(frames[t], frames[t - 1]) - flows[t - 1]).sum(-1))
        assert np.abs(flows[t - 1]).mean() > 0.5  # the camera moves
        assert np.median(error) < 0.25


def test_occlusions_and_points_leaving_the_frame_are_masked():
    flow = np.zeros((8, 8, 2), np.float32)
    flow[..., 0] = 2.0  # everything moves two pixels right
    back = -flow
    mask = visible_mask(flow, back)
    assert mask[:, :6].all() and not mask[:, 6:].any()
    back[2, 5] = (3.0, 0.0)  # the flow back from one point does not return
    assert not visible_mask(flow, back)[2, 3]


def test_steady_pictures_score_low_and_flicker_scores_high(clip):
    frames, _ = clip
    follows = warping_error(frames, frames)  # an output that moves with the input
    torch.manual_seed(0)
    flickers = warping_error(frames, [f + 0.1 * torch.rand_like(f) for f in frames])
    frozen = warping_error(frames, [torch.full_like(f, 0.5) for f in frames])
    assert follows < 0.01 < flickers
    assert frozen == 0.0  # why the per-frame distances are reported beside it
    m = WarpingMeter()
    for f in frames:
        m.update(f, f)
    assert m.value == pytest.approx(m.inputs)


def test_evaluate_video_reports_each_clip_and_names_a_bad_one(clip, tmp_path, capsys):
    ckpt = save_tiny("johnson", tmp_path / "ink.ckpt")
    art = tmp_path / "art.png"
    save_image(torch.rand(3, 64, 64), art)
    good = write_clip(clip[0], tmp_path / "pan.mp4", fps=12)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    out_json = tmp_path / "r.json"
    code = evaluate(
        ["--ckpt", str(ckpt), "--style", str(art), "--video", str(bad), str(good),
         "--json", str(out_json)]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and f"error: {bad}: " in err
    r = json.loads(out_json.read_text())["clips"][str(good)]
    assert r["frames"] == 5 and r["warping_error"] > r["warping_error_input"] > 0
    assert set(r) >= {"flicker", "content_error", "style_distance"}
    assert str(good) in out and "warping error" in out
    # infer.py prints the figure when asked
    assert infer(["--ckpt", str(ckpt), "--warping-error", str(good)]) == 0
    assert "warping error" in capsys.readouterr().out
