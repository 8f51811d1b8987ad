"""Fan-out of one camera's encoded packets to its viewers.

Unlike aiortc's MediaRelay (unbounded per-viewer queues) every viewer queue here is bounded:
a viewer that falls behind is emptied and skipped forward to the next keyframe. The current
GOP (keyframe with SPS/PPS in front, then its delta frames) is cached so a new viewer gets a
decodable picture at once instead of waiting for the camera's next keyframe.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from streams.source import MediaPacket, StreamInfo


@dataclass(slots=True)
class RelayCounters:
    """Shared across relays (the StreamManager owns one)."""

    packets_forwarded: int = 0
    packets_skipped: int = 0
    viewers_skipped: int = 0


class Viewer:
    """One consumer's bounded queue; ``None`` from ``get()`` means the stream has ended."""

    def __init__(self, max_queue: int, *, keep: bool = False) -> None:
        self._queue: asyncio.Queue[MediaPacket | None] = asyncio.Queue(max_queue + 1)
        self._max = max_queue
        self.keep = keep
        """Never flushed by :meth:`CameraRelay.flush` (a recording keeps what arrived)."""
        self.waiting_keyframe = True
        self.closed = False

    async def get(self) -> MediaPacket | None:
        """The next packet, or None once the relay closed this viewer."""
        return await self._queue.get()

    def drain(self) -> list[MediaPacket | None]:
        """Everything queued now, without waiting."""
        items: list[MediaPacket | None] = []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def flush(self, counters: RelayCounters) -> None:
        """Drop everything queued; the viewer resumes at the next keyframe."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:  # the end of the stream stays queued
                self._queue.put_nowait(None)
                return
            counters.packets_skipped += 1
        self.waiting_keyframe = True

    def _offer(self, packet: MediaPacket, counters: RelayCounters) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._max:
            # Behind by a whole queue: drop what is queued and resume at the next keyframe.
            self.flush(counters)
            counters.viewers_skipped += 1
        if self.waiting_keyframe:
            if not packet.keyframe:
                counters.packets_skipped += 1
                return
            self.waiting_keyframe = False
        self._queue.put_nowait(packet)
        counters.packets_forwarded += 1

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)


class CameraRelay:
    """One camera's viewers, its stream info and its cached GOP."""

    def __init__(
        self, counters: RelayCounters, max_queue: int, gop_max_packets: int, gop_max_bytes: int
    ) -> None:
        self.counters = counters
        self._max_queue = max_queue
        self._gop_max_packets = gop_max_packets
        self._gop_max_bytes = gop_max_bytes
        self._viewers: set[Viewer] = set()
        self._gop: list[MediaPacket] = []
        self._gop_bytes = 0
        self.info: StreamInfo | None = None
        self._info_ready = asyncio.Event()
        self._keyframe_ready = asyncio.Event()

    @property
    def viewer_count(self) -> int:
        """Viewers attached now."""
        return len(self._viewers)

    def attach(self, *, keep: bool = False) -> Viewer:
        """A new viewer, primed with the cached GOP when there is one; ``keep``: one that
        :meth:`flush` leaves alone."""
        viewer = Viewer(self._max_queue, keep=keep)
        for packet in self._gop[: self._max_queue]:
            viewer._offer(packet, self.counters)
        self._viewers.add(viewer)
        return viewer

    def detach(self, viewer: Viewer) -> None:
        """Stop feeding ``viewer``."""
        self._viewers.discard(viewer)
        viewer._close()

    def flush(self) -> None:
        """Drop what the viewers (but the kept ones) still have queued; they resume at the
        next keyframe. A muted source goes silent at once, not after the backlog."""
        for viewer in self._viewers:
            if not viewer.keep:
                viewer.flush(self.counters)

    def set_info(self, info: StreamInfo) -> None:
        """A (re)connected camera's stream description; the old GOP is useless now."""
        self.info = info
        self._drop_gop()
        self._info_ready.set()

    def end_session(self) -> None:
        """The upstream session ended: forget its GOP (deltas of it can't follow a new one)."""
        self._drop_gop()

    def publish(self, packet: MediaPacket) -> None:
        """Cache and fan out one packet."""
        if packet.keyframe:
            self._drop_gop()
            self._gop.append(packet)
            self._gop_bytes = len(packet.data)
            self._keyframe_ready.set()
        elif self._gop:
            self._gop.append(packet)
            self._gop_bytes += len(packet.data)
            if len(self._gop) > self._gop_max_packets or self._gop_bytes > self._gop_max_bytes:
                self._drop_gop()  # a long GOP: new viewers wait for the next keyframe
        for viewer in self._viewers:
            viewer._offer(packet, self.counters)

    def keyframe(self) -> MediaPacket | None:
        """The cached keyframe (SPS/PPS in front), if any."""
        return self._gop[0] if self._gop else None

    async def wait_info(self) -> StreamInfo:
        """The stream description, once the camera has been opened."""
        await self._info_ready.wait()
        assert self.info is not None
        return self.info

    async def wait_keyframe(self) -> MediaPacket:
        """The cached keyframe, waiting for the next one if none is cached."""
        while True:
            frame = self.keyframe()
            if frame is not None:
                return frame
            self._keyframe_ready.clear()
            await self._keyframe_ready.wait()

    def close(self) -> None:
        """End every viewer (their ``get()`` returns None)."""
        for viewer in list(self._viewers):
            self.detach(viewer)
        self._drop_gop()

    def _drop_gop(self) -> None:
        self._gop = []
        self._gop_bytes = 0
