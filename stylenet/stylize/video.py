"""Stylize videos frame by frame with PyAV: `python infer.py --ckpt starry_night.ckpt clip.mp4`.

Frames are decoded, stylized and encoded one at a time (memory does not grow with the length),
with the input's frame size and timestamps (so its frame rate); the audio track is copied as it is.
The output is written to a temporary file and renamed into place when complete.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from stylenet.files.atomic import atomic_write
from stylenet.ops.warping import WarpingMeter

# output suffix -> (muxer, video encoder); the audio stream keeps its codec
FORMATS = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
    ".avi": ("avi", "mpeg4"),
}
VIDEO_SUFFIXES = tuple(FORMATS)


class VideoError(ValueError):
    """A video that cannot be read or written; the message names the file and the problem."""


def find_videos(root: str | Path) -> list[Path]:
    """Video files under root, recursively, in a stable order."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in FORMATS and p.is_file())


class FlickerMeter:
    """Temporal instability: mean |out_t - out_t-1| over mean |in_t - in_t-1|, whole clip.

    1 means the output changes from frame to frame as much as the input does; a feed-forward
    style net usually changes more (its strokes jump), hence flicker.
    """

    def __init__(self) -> None:
        self.prev: tuple[torch.Tensor, torch.Tensor] | None = None
        self.din = self.dout = 0.0

    def update(self, inp: torch.Tensor, out: torch.Tensor) -> None:
        if self.prev is not None:
            self.din += (inp - self.prev[0]).abs().mean().item()
            self.dout += (out - self.prev[1]).abs().mean().item()
        self.prev = (inp, out)

    @property
    def value(self) -> float:
        return self.dout / self.din if self.din > 0 else math.nan


def flicker(inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> float:
    """The FlickerMeter figure for two equally long lists of frames (3, H, W) in [0, 1]."""
    meter = FlickerMeter()
    for inp, out in zip(inputs, outputs, strict=True):
        meter.update(inp, out)
    return meter.value


@dataclass
class VideoResult:
    frames: int
    fps: float
    flicker: float
    audio: bool
    warping: float = math.nan  # stylenet.ops.warping's figure, when asked for
    input_warping: float = math.nan  # the same figure of the input clip (its floor)


def _pix_fmt(codec: str, width: int, height: int) -> str:
    """4:2:0 chroma (what players expect); x264 needs even sides for it, so 4:4:4 otherwise."""
    return "yuv444p" if codec == "libx264" and (width % 2 or height % 2) else "yuv420p"


def _open(src: Path) -> av.container.InputContainer:
    if not src.exists():
        raise VideoError(f"{src}: no such file")
    if src.stat().st_size == 0:
        raise VideoError(f"{src}: empty file (0 bytes)")
    try:
        container = av.open(str(src))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise VideoError(f"{src}: not a readable video ({e})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{src}: no video stream")
    return container


def stylize_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    stylize: Callable[[torch.Tensor], torch.Tensor],
    temporal_blend: float = 0.0,
    progress: bool | None = None,
    warping: bool = False,
) -> VideoResult:
    """Write dst: every frame of src through stylize ((3, H, W) in [0, 1] -> same), audio copied.

    temporal_blend A: each output is (1 - A) * stylized + A * previous output, an exponential
    moving average that damps flicker (and smears fast motion). progress: a tqdm bar
    (None: only on a terminal). warping: also measure the warping error (stylenet/ops/warping.py;
    two optical flows per frame).
    """
    src, dst = Path(src), Path(dst)
    muxer, codec = FORMATS.get(dst.suffix.lower(), (None, None))
    if muxer is None:
        raise VideoError(f"{dst}: unknown video suffix (one of {', '.join(FORMATS)})")
    container = _open(src)
    result = VideoResult(0, 0.0, math.nan, False)

    def write(tmp: str) -> None:
        vin = container.streams.video[0]
        ain = container.streams.audio[0] if container.streams.audio else None
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        out = av.open(tmp, "w", format=muxer)
        try:
            vout = out.add_stream(codec, rate=rate)
            vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
            vout.pix_fmt = _pix_fmt(codec, vout.width, vout.height)
            vout.time_base = vin.time_base
            if codec == "libx264":
                vout.options = {"crf": "18", "preset": "medium"}
            aout = out.add_stream_from_template(ain) if ain is not None else None
            meter, prev = FlickerMeter(), None
            warp_meter = WarpingMeter() if warping else None
            disable = None if progress is None else not progress
            streams = [vin] + ([ain] if ain is not None else [])
            bar = tqdm(total=vin.frames or None, unit="frame", desc=src.name, disable=disable)
            with bar:
                for packet in container.demux(*streams):
                    if packet.stream is ain:
                        if packet.dts is not None:
                            packet.stream = aout
                            out.mux(packet)
                        continue
                    for frame in packet.decode():
                        rgb = frame.to_ndarray(format="rgb24")
                        photo = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
                        y = stylize(photo).float().clamp(0, 1)
                        if prev is not None and temporal_blend > 0:
                            y = torch.lerp(y, prev, temporal_blend)
                        prev = y
                        meter.update(photo, y)
                        if warp_meter is not None:
                            warp_meter.update(photo, y)
                        arr = y.mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
                        new = av.VideoFrame.from_ndarray(arr, format="rgb24")
                        new.pts, new.time_base = frame.pts, frame.time_base
                        out.mux(vout.encode(new))
                        result.frames += 1
                        bar.update()
            out.mux(vout.encode(None))
        except (av.FFmpegError, ValueError) as e:
            raise VideoError(f"{src}: cannot decode or encode ({e})") from None
        finally:
            out.close()
        if result.frames == 0:
            raise VideoError(f"{src}: no decodable video frames")
        result.fps, result.flicker, result.audio = float(rate), meter.value, aout is not None
        if warp_meter is not None:
            result.warping, result.input_warping = warp_meter.value, warp_meter.inputs

    try:
        atomic_write(dst, write)
    finally:
        container.close()
    return result


def read_frames(src: str | os.PathLike) -> Iterator[torch.Tensor]:
    """The video frames of src in order, (3, H, W) float in [0, 1]; VideoError if unreadable."""
    src = Path(src)
    container = _open(src)
    n = 0
    try:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            n += 1
            yield torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
    except (av.FFmpegError, ValueError) as e:
        raise VideoError(f"{src}: cannot decode ({e})") from None
    finally:
        container.close()
    if n == 0:
        raise VideoError(f"{src}: no decodable video frames")


def write_clip(
    frames: Iterable[torch.Tensor],
    dst: str | os.PathLike,
    fps: int = 12,
    audio: bool = False,
    crf: int = 12,
) -> Path:
    """Write frames (3, H, W) in [0, 1], all of one size, as a video (suffix: one of FORMATS);
    audio: a 440 Hz tone as long as the clip."""
    path = Path(dst)
    muxer, codec = FORMATS[path.suffix.lower()]
    out = av.open(str(path), "w", format=muxer)
    try:
        vs = out.add_stream(codec, rate=fps)
        if codec == "libx264":
            vs.options = {"crf": str(crf)}
        aus = out.add_stream("aac", rate=44100, layout="mono") if audio else None
        count = 0
        for img in frames:
            if count == 0:
                vs.height, vs.width = img.shape[-2:]
                vs.pix_fmt = _pix_fmt(codec, vs.width, vs.height)
            arr = img.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
            out.mux(vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
            count += 1
        out.mux(vs.encode(None))
        if aus is not None:
            rate, n = 44100, 1024
            total = int(rate * count / fps)
            for start in range(0, total, n):
                t = np.arange(start, min(total, start + n)) / rate
                samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                af.sample_rate, af.pts = rate, start
                out.mux(aus.encode(af))
            out.mux(aus.encode(None))
    finally:
        out.close()
    return path


def pan_zoom_clip(
    photo: torch.Tensor,
    dst: str | os.PathLike,
    frames: int = 12,
    size: tuple[int, int] = (64, 48),
    fps: int = 12,
    audio: bool = True,
) -> Path:
    """A test clip: a slow pan and zoom over photo (3, H, W), W x H = size, with a 440 Hz tone.

    The window shrinks from 90% to 80% of the photo while its centre moves 10% of the width.
    """
    w, h = size
    _, ph, pw = photo.shape
    aspect = w / h

    def crops() -> Iterator[torch.Tensor]:
        for i in range(frames):
            t = i / max(1, frames - 1)
            ch = min(ph, pw / aspect) * (0.9 - 0.1 * t)
            cw = ch * aspect
            cy, cx = ph / 2, pw * (0.45 + 0.1 * t)
            top, left = int(round(cy - ch / 2)), int(round(cx - cw / 2))
            crop = photo[:, top : top + int(ch), left : left + int(cw)]
            yield F.interpolate(crop[None], (h, w), mode="bilinear", antialias=True)[0]

    return write_clip(crops(), dst, fps, audio)
