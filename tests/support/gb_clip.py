"""Test clips for the GB/T 28181 device stand-in: H.264 made with PyAV, re-muxed to MPEG-PS.

``make_clip`` writes an MP4 whose frames are easy to recognise after decoding (a colour per
second plus a moving bar); ``ps_frames`` re-muxes it with FFmpeg's ``mpeg`` (MPEG-1/2
program stream) muxer and cuts the byte stream into one chunk per video frame, as a GB28181
camera sends it: pack header (+ system header and PSM-equivalent on the first pack) + PES.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

# Colours the clip cycles through, one per second: far apart so decoded means separate well.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),
    (40, 200, 60),
    (40, 60, 220),
    (230, 210, 40),
    (200, 40, 200),
    (40, 200, 210),
)
BAR_COLOUR = (255, 255, 255)
BAR_WIDTH_FRACTION = 8  # the bar is width // 8 pixels wide
GOP_FRAMES = 25
PS_CLOCK_HZ = 90_000
PS_MUXER = "vob"  # FFmpeg's MPEG-2 program stream muxer, without DVD navigation packs
PS_DEMUXER = "mpeg"
PACK_START = b"\x00\x00\x01\xba"
SYSTEM_HEADER_START = b"\x00\x00\x01\xbb"
SYSTEM_HEADER_FIXED = 12  # start code, length and the 6 fixed bytes before stream entries
PSM_START = b"\x00\x00\x01\xbc"
PROGRAM_END = b"\x00\x00\x01\xb9"
VIDEO_STREAM_ID = 0xE0
FFMPEG_H264_PES = b"\x00\x00\x01\xe2"
GB_VIDEO_PES = b"\x00\x00\x01\xe0"
STREAM_TYPE_H264 = 0x1B
CRC_POLY = 0x04C11DB7
H264_BITRATE = 600_000
TEXTURE_SEED = 28181
TEXTURE_AMPLITUDE = 12
TEXTURE_VARIANTS = 8


@dataclass(frozen=True)
class PsFrame:
    """One video frame as MPEG-PS bytes, with its presentation time on the 90 kHz clock."""

    data: bytes
    pts90k: int
    keyframe: bool


def make_clip(
    path: Path, frames: int = 75, size: tuple[int, int] = (320, 240), fps: int = 25
) -> Path:
    """Write an H.264 constrained-baseline MP4 of recognisable frames and return its path."""
    width, height = size
    bar_width = max(2, width // BAR_WIDTH_FRACTION)
    rng = np.random.default_rng(TEXTURE_SEED)
    texture = rng.integers(
        -TEXTURE_AMPLITUDE, TEXTURE_AMPLITUDE + 1, (TEXTURE_VARIANTS, height, width, 1)
    ).astype(np.int16)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = H264_BITRATE
        stream.codec_context.gop_size = GOP_FRAMES
        stream.codec_context.max_b_frames = 0
        stream.codec_context.options = {
            "profile": "baseline",
            "preset": "veryfast",
            "tune": "zerolatency",
            "x264-params": f"keyint={GOP_FRAMES}:min-keyint={GOP_FRAMES}:scenecut=0:bframes=0",
        }
        for index in range(frames):
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:, :] = PALETTE[(index // fps) % len(PALETTE)]
            left = (index * 4) % max(1, width - bar_width)
            image[:, left : left + bar_width] = BAR_COLOUR
            # Fine texture that changes every frame, so frames cost real bits (RTP fragments).
            image = np.clip(image.astype(np.int16) + texture[index % TEXTURE_VARIANTS], 0, 255)
            image = image.astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _mpeg_crc32(data: bytes) -> int:
    """CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection), as the PSM carries."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def program_stream_map() -> bytes:
    """A PSM declaring one H.264 video stream (0xE0), as GB28181 cameras send on keyframes."""
    es_map = bytes([STREAM_TYPE_H264, VIDEO_STREAM_ID, 0x00, 0x00])
    body = bytes([0x80, 0x01, 0x00, 0x00]) + len(es_map).to_bytes(2, "big") + es_map
    length = len(body) + 4  # + CRC
    head = PSM_START + length.to_bytes(2, "big") + body
    return head + _mpeg_crc32(head).to_bytes(4, "big")


def _mux_one(packet: av.Packet, template: av.VideoStream) -> bytes:
    """Mux a single Annex B H.264 packet into its own MPEG-2 program stream."""
    out = io.BytesIO()
    with av.open(out, mode="w", format=PS_MUXER) as target:
        stream = target.add_stream_from_template(template)
        stream.time_base = packet.time_base
        packet.stream = stream
        target.mux(packet)
    return out.getvalue()


def _gb_style(chunk: bytes, keyframe: bool) -> bytes:
    """Use video stream id 0xE0 (FFmpeg writes 0xE2 for H.264), drop end codes, add a PSM."""
    out = bytearray()
    for pack in _split_packs(chunk):
        body = bytearray(pack.replace(FFMPEG_H264_PES, GB_VIDEO_PES).replace(PROGRAM_END, b""))
        header = body.find(SYSTEM_HEADER_START)
        if header != -1:
            length = int.from_bytes(body[header + 4 : header + 6], "big")
            entries = range(header + SYSTEM_HEADER_FIXED, header + 6 + length, 3)
            for entry in entries:
                if body[entry] == FFMPEG_H264_PES[-1]:
                    body[entry] = VIDEO_STREAM_ID
        out += body
    if keyframe:
        # The PSM goes right after the first pack's header (+ system header).
        position = out.find(GB_VIDEO_PES)
        if position != -1:
            out[position:position] = program_stream_map()
    return bytes(out)


def ps_frames(clip: Path, gb_style: bool = True) -> list[PsFrame]:
    """The clip's video frames as MPEG-PS chunks, one per frame, in decode order.

    FFmpeg's program-stream muxer fills 2 KiB packs regardless of frame boundaries, so each
    frame is muxed on its own (``vob``: MPEG-2 PS, a pack header on every pack); the chunks
    concatenate into one valid stream. ``gb_style`` makes them look like a camera's.
    """
    frames: list[PsFrame] = []
    with av.open(str(clip)) as source:
        video_in = source.streams.video[0]
        with av.open(io.BytesIO(), mode="w", format=PS_MUXER) as scratch:
            template = scratch.add_stream_from_template(video_in)
            annexb = BitStreamFilterContext("h264_mp4toannexb", video_in, template)
            for packet in source.demux(video_in):
                if packet.size == 0 or packet.pts is None:
                    continue
                for filtered in annexb.filter(packet):
                    assert filtered.pts is not None
                    pts = int(filtered.pts * filtered.time_base * PS_CLOCK_HZ)
                    keyframe = bool(filtered.is_keyframe)
                    data = _mux_one(filtered, template)
                    if gb_style:
                        data = _gb_style(data, keyframe)
                    frames.append(PsFrame(data, pts, keyframe))
    return frames


def _split_packs(stream: bytes) -> list[bytes]:
    """Cut a program stream at every pack header."""
    starts: list[int] = []
    position = stream.find(PACK_START)
    while position != -1:
        starts.append(position)
        position = stream.find(PACK_START, position + len(PACK_START))
    ends = [*starts[1:], len(stream)]
    return [stream[a:b] for a, b in zip(starts, ends, strict=True)]


def _frame_mean(frame: av.VideoFrame) -> tuple[float, float, float]:
    """Mean R, G, B of a decoded frame."""
    rgb = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def source_frame_means(clip: Path) -> list[tuple[float, float, float]]:
    """Mean RGB of every decoded frame of the clip, in presentation order."""
    with av.open(str(clip)) as container:
        return [_frame_mean(frame) for frame in container.decode(video=0)]


def decode_ps(data: bytes) -> list[tuple[float, float, float]]:
    """Decode an MPEG-PS byte stream with PyAV and return each frame's mean RGB."""
    means: list[tuple[float, float, float]] = []
    with av.open(io.BytesIO(data), format=PS_DEMUXER) as container:
        for frame in container.decode(video=0):
            means.append(_frame_mean(frame))
    return means


def _self_check() -> None:
    """Build a clip, split it to PS frames and decode their concatenation back."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip.mp4")
        frames = ps_frames(clip)
        source = source_frame_means(clip)
        decoded = decode_ps(b"".join(f.data for f in frames))
        keys = sum(f.keyframe for f in frames)
        print(f"source frames {len(source)}, PS frames {len(frames)} ({keys} key)")
        print(f"decoded from PS {len(decoded)}; first pts {[f.pts90k for f in frames[:4]]}")
        worst = max(
            max(abs(a - b) for a, b in zip(s, d, strict=True))
            for s, d in zip(source, decoded, strict=False)
        )
        print(f"max per-channel mean difference {worst:.2f}")


if __name__ == "__main__":
    _self_check()
