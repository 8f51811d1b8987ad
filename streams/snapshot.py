"""Snapshots: decode one cached keyframe and encode it as JPEG (blocking: run in a thread)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import av

from streams.source import MediaPacket, StreamInfo

JPEG_PIX_FMT = "yuvj420p"
JPEG_QUALITY_QSCALE = 4


class SnapshotError(Exception):
    """The keyframe did not decode."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A JPEG and when it was taken (monotonic seconds)."""

    jpeg: bytes
    taken: float
    width: int
    height: int


def keyframe_to_jpeg(info: StreamInfo, keyframe: MediaPacket) -> Snapshot:
    """Decode ``keyframe`` (SPS/PPS in front) and encode the picture as JPEG."""
    decoder = av.CodecContext.create(info.codec, "r")
    assert isinstance(decoder, av.VideoCodecContext)
    try:
        frames = list(decoder.decode(av.Packet(keyframe.data)))
        frames += list(decoder.decode(None))
    except av.FFmpegError as err:
        raise SnapshotError(f"keyframe did not decode: {err}") from err
    video = [f for f in frames if isinstance(f, av.VideoFrame)]
    if not video:
        raise SnapshotError("keyframe produced no picture")
    picture = video[0].reformat(format=JPEG_PIX_FMT)
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width = picture.width
    encoder.height = picture.height
    encoder.pix_fmt = JPEG_PIX_FMT
    encoder.time_base = keyframe.time_base
    encoder.qmin = encoder.qmax = JPEG_QUALITY_QSCALE
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    if not packets:
        raise SnapshotError("JPEG encoder produced nothing")
    return Snapshot(bytes(packets[0]), time.monotonic(), picture.width, picture.height)
