"""Source clips and picture checks for the video-network terminal stand-in (baresip).

``make_solid_clip`` writes a short H.264 MP4 whose every frame is one solid colour, so a
receiver can tell "this is that terminal's picture" from the mean colour of any decoded
frame; ``dominant_colour`` reads a PNG (or any image PyAV decodes) and returns that mean.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Far-apart, saturated colours that survive YUV 4:2:0 and H.264 quantisation well.
RED = (210, 40, 40)
GREEN = (40, 190, 60)
BLUE = (40, 60, 210)
YELLOW = (225, 205, 40)

CLIP_SIZE = (352, 288)  # CIF: baresip's default ``video_size``
CLIP_FPS = 25
CLIP_GOP = 25
CLIP_BITRATE = 300_000


def make_solid_clip(
    path: Path,
    colour: tuple[int, int, int],
    seconds: float = 2.0,
    size: tuple[int, int] = CLIP_SIZE,
    fps: int = CLIP_FPS,
) -> Path:
    """Write an H.264 constrained-baseline MP4 of ``colour`` frames; return ``path``.

    A faint noise texture changes every frame so the encoder produces real P-frames (not
    just skip macroblocks); it averages out in ``dominant_colour``.
    """
    width, height = size
    frames = max(1, round(seconds * fps))
    rng = np.random.default_rng(0)
    base = np.empty((height, width, 3), dtype=np.int16)
    base[:, :] = colour
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = CLIP_BITRATE
        stream.codec_context.gop_size = CLIP_GOP
        stream.codec_context.max_b_frames = 0
        stream.codec_context.options = {"profile": "baseline", "preset": "veryfast"}
        stream.codec_context.time_base = Fraction(1, fps)
        for index in range(frames):
            noise = rng.integers(-6, 7, (height, width, 1), dtype=np.int16)
            rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def dominant_colour(path: Path) -> tuple[int, int, int]:
    """The mean RGB colour of the first picture in ``path`` (PNG, JPEG, video ...)."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        rgb = frame.to_ndarray(format="rgb24")
    mean = rgb.reshape(-1, 3).mean(axis=0)
    return (int(mean[0]), int(mean[1]), int(mean[2]))


def colour_distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Euclidean distance between two RGB colours."""
    return float(np.linalg.norm(np.array(a, dtype=float) - np.array(b, dtype=float)))


def picture_size(path: Path) -> tuple[int, int]:
    """(width, height) of the first picture in ``path``."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return (frame.width, frame.height)
