"""Camera recordings: a relay viewer's packets remuxed into MP4 (no decoding, no encoding).

The recording starts at the keyframe the viewer receives first (the relay primes a new
viewer with its cached GOP, so this is the pre-roll from the last keyframe) and spans
``seconds`` of media time from there. The loop side reads the viewer and hands packets
through a bounded queue to a worker thread that muxes them with PyAV into ``<name>.part``,
which is renamed to the final name only once the file is complete.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import structlog

from streams.source import MediaPacket, StreamInfo

log = structlog.get_logger(__name__)

PART_SUFFIX = ".part"
MP4_OPTIONS = {"movflags": "+faststart"}
"""Index in front of the media, so a download plays while it arrives."""


@dataclass(frozen=True, slots=True)
class RecordConfig:
    """Bounds of one recording."""

    max_seconds: float = 300.0
    queue_size: int = 256
    """Packets waiting for the writer thread; more means the disk cannot keep up."""
    slack: float = 15.0
    """Wall-clock seconds beyond the media length (pull start, reconnects) before giving up."""
    join_timeout: float = 30.0
    """Seconds the writer thread has to finish the file once the last packet is queued."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """A finished MP4."""

    path: Path
    duration: float
    """Seconds of media in the file."""
    size: int
    packets: int
    keyframes: int
    complete: bool
    """False when the stream ended or stalled before ``seconds`` were recorded."""


class RecordError(Exception):
    """A recording that produced no usable file."""


class PacketSource(Protocol):
    """What the recorder reads (a relay ``Viewer``)."""

    async def get(self) -> MediaPacket | None:
        """The next packet, or None once the stream has ended."""


class _Done:
    pass


class _Abort:
    pass


_DONE = _Done()
_ABORT = _Abort()
_Item = tuple[MediaPacket, int] | _Done | _Abort


class Mp4Writer:
    """Muxes packets into an MP4 in a worker thread of its own."""

    def __init__(self, partial: Path, info: StreamInfo, time_base: Fraction, max_queue: int):
        self.partial = partial
        self.info = info
        self.time_base = time_base
        self._max = max_queue
        # Unbounded underneath so the end markers always fit; ``put`` enforces the bound.
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="camera recorder", daemon=True)
        self.packets = 0
        self.keyframes = 0
        self.media_end = 0
        self.error: str | None = None

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def put(self, packet: MediaPacket, duration: int) -> None:
        """Queue one packet with its duration (in ``time_base`` units)."""
        if self._queue.qsize() >= self._max:
            raise RecordError("the recording's disk writer fell behind")
        self._queue.put_nowait((packet, duration))

    async def finish(self, timeout: float) -> None:
        """Close the file once the queued packets are written; RecordError on failure."""
        self._queue.put_nowait(_DONE)
        await self._join(timeout)
        if self.error is not None:
            raise RecordError(self.error)

    async def abort(self, timeout: float) -> None:
        """Drop what is queued and remove the partial file."""
        self._queue.put_nowait(_ABORT)
        await self._join(timeout)

    async def _join(self, timeout: float) -> None:
        if not self._thread.is_alive():
            return
        await asyncio.to_thread(self._thread.join, timeout)
        if self._thread.is_alive():
            self.error = self.error or "the recording's disk writer did not finish in time"

    def _run(self) -> None:
        try:
            finished = self._mux()
        except (av.FFmpegError, OSError, ValueError) as err:
            self.error = f"{type(err).__name__}: {err}"
            finished = False
        if not finished:
            self.partial.unlink(missing_ok=True)

    def _mux(self) -> bool:
        with av.open(str(self.partial), "w", format="mp4", options=MP4_OPTIONS) as out:
            stream = out.add_mux_stream(
                self.info.codec, width=self.info.width, height=self.info.height
            )
            stream.time_base = self.time_base
            origin: int | None = None
            while True:
                item = self._queue.get()
                if isinstance(item, _Abort):
                    return False
                if isinstance(item, _Done):
                    break
                packet, duration = item
                if origin is None:
                    origin = packet.dts
                muxed = av.Packet(packet.data)
                muxed.stream = stream
                muxed.time_base = self.time_base
                muxed.pts = packet.pts - origin
                muxed.dts = packet.dts - origin
                muxed.duration = duration
                muxed.is_keyframe = packet.keyframe
                out.mux(muxed)
                self.packets += 1
                self.keyframes += packet.keyframe
                self.media_end = packet.dts - origin + duration
            if not self.packets:
                self.error = "no video arrived from the camera"
                return False
        return True


async def record_mp4(
    source: PacketSource, info: StreamInfo, seconds: float, path: Path, config: RecordConfig
) -> Recorded:
    """Remux ``seconds`` of ``source`` (from its first keyframe on) into an MP4 at ``path``.
    Written to ``<path>.part`` first; RecordError if no usable file came of it."""
    if not 0 < seconds <= config.max_seconds:
        raise RecordError(f"a recording lasts 0 < seconds <= {config.max_seconds}")
    partial = path.with_name(path.name + PART_SUFFIX)
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    writer: Mp4Writer | None = None
    complete = False
    try:
        async with asyncio.timeout(seconds + config.slack):
            first = await _first_keyframe(source)
            if first is None:
                raise RecordError("the stream ended before a keyframe arrived")
            writer = Mp4Writer(partial, info, first.time_base, config.queue_size)
            writer.start()
            complete = await _feed(source, writer, first, seconds)
    except TimeoutError:
        if writer is None:
            raise RecordError("no keyframe arrived from the camera in time") from None
    except BaseException:
        if writer is not None:
            await writer.abort(config.join_timeout)
        raise
    await writer.finish(config.join_timeout)
    await asyncio.to_thread(os.replace, partial, path)
    size = (await asyncio.to_thread(path.stat)).st_size
    duration = float(writer.media_end * writer.time_base)
    return Recorded(path, duration, size, writer.packets, writer.keyframes, complete)


async def _first_keyframe(source: PacketSource) -> MediaPacket | None:
    while (packet := await source.get()) is not None:
        if packet.keyframe:
            return packet
    return None


async def _feed(
    source: PacketSource, writer: Mp4Writer, first: MediaPacket, seconds: float
) -> bool:
    """Queue packets until ``seconds`` of media; True if all of them arrived. Each packet
    is queued once the next one tells its duration."""
    limit = first.dts + round(seconds / first.time_base)
    pending, step = first, 0
    try:
        while (packet := await source.get()) is not None:
            if packet.time_base != first.time_base:
                return False  # a new upstream session with another clock: stop here
            if packet.dts >= limit:
                return True
            step = packet.dts - pending.dts
            writer.put(pending, step)
            pending = packet
        return False
    finally:
        # The last packet lasts as long as the one before it (or up to the limit).
        writer.put(pending, step or max(0, limit - pending.dts))
