"""Per-track recording of a consultation room: one source's encoded audio or video remuxed
into Matroska (``.mkv`` video, ``.mka`` audio) for as long as the source is in the room.

No decoding, no encoding: the relay's packets are muxed as they are. The loop side drains
the track's relay viewer and hands batches to the room's writer thread; a file is written as
``<name>.part`` and renamed once closed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import structlog

from streams.relay import Viewer
from streams.source import MediaPacket

log = structlog.get_logger(__name__)

PART_SUFFIX = ".part"
OPUS_HEAD = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", 312, 48000, 0, 0)
"""RFC 7845 identification header: version 1, stereo, 312 samples pre-skip, 48 kHz."""


@dataclass(frozen=True, slots=True)
class TrackFile:
    """A finished per-track recording."""

    source_id: str
    kind: str
    path: Path
    size: int
    packets: int
    started_at: dt.datetime
    ended_at: dt.datetime


def _sps_size(data: bytes) -> tuple[int, int]:
    """Width and height from the SPS in front of a keyframe, read by FFmpeg's H.264 parser
    (which parses headers only; nothing is decoded). (0, 0) when it cannot tell."""
    try:
        ctx = av.CodecContext.create("h264", "r")
        ctx.parse(data + b"\x00\x00\x00\x01\x09\x10")  # an access unit delimiter ends it
        return int(ctx.width), int(ctx.height)
    except av.FFmpegError:
        return 0, 0


class _Writer:
    """The container; used only from the room's writer thread."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.packets = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.stream.Stream | None = None
        self._first: int | None = None

    def write(self, batch: list[MediaPacket]) -> None:
        for item in batch:
            if self._container is None:
                if self.kind == "video" and not item.keyframe:
                    continue  # a file starts at a keyframe
                self._open(item)
            assert self._stream is not None and self._container is not None
            if self._first is None:
                self._first = item.pts
            packet = av.Packet(item.data)
            packet.pts = item.pts - self._first
            packet.dts = item.dts - self._first
            packet.time_base = item.time_base
            packet.stream = self._stream
            try:
                self._container.mux(packet)
                self.packets += 1
            except av.FFmpegError:  # a timestamp going backwards: drop that one packet
                continue

    def _open(self, first: MediaPacket) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        part = self.path.with_name(self.path.name + PART_SUFFIX)
        container = av.open(str(part), "w", format="matroska")
        stream: av.stream.Stream
        if self.kind == "video":
            video = container.add_stream("h264")
            width, height = _sps_size(first.data)
            video.width, video.height = width or 640, height or 480
            stream = video
        else:
            audio = container.add_stream("opus", rate=48000)
            audio.codec_context.extradata = OPUS_HEAD
            stream = audio
        stream.time_base = first.time_base
        self._container, self._stream = container, stream

    def close(self) -> bool:
        """Finish the file; False when nothing was written."""
        if self._container is None:
            return False
        self._container.close()
        part = self.path.with_name(self.path.name + PART_SUFFIX)
        os.replace(part, self.path)
        return True


class TrackRecorder:
    """Records one relay viewer until the viewer ends (run :meth:`run` as a task)."""

    def __init__(
        self,
        source_id: str,
        kind: str,
        viewer: Viewer,
        path: Path,
        executor: concurrent.futures.Executor,
    ) -> None:
        self.source_id = source_id
        self.kind = kind
        self._viewer = viewer
        self._writer = _Writer(path, kind)
        self._executor = executor
        self.started_at = dt.datetime.now(dt.UTC)

    async def run(self) -> TrackFile | None:
        """Write until the viewer ends; the finished file, or None if nothing came."""
        loop = asyncio.get_running_loop()
        ended = False
        try:
            while not ended:
                first = await self._viewer.get()
                batch = [first, *self._viewer.drain()]
                ended = None in batch
                packets = [p for p in batch if p is not None]
                if packets:
                    await loop.run_in_executor(self._executor, self._writer.write, packets)
        finally:
            written = await loop.run_in_executor(self._executor, self._writer.close)
        if not written:
            return None
        path = self._writer.path
        log.info("track recorded", source=self.source_id, kind=self.kind, path=path.name)
        return TrackFile(
            self.source_id, self.kind, path, path.stat().st_size, self._writer.packets,
            self.started_at, dt.datetime.now(dt.UTC),
        )  # fmt: skip
