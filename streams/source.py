"""One camera pull: PyAV demuxes (never decodes) the video stream in a worker thread that
feeds the event loop through a bounded queue; the loop side cleans timestamps, reports
online/offline once per change and reconnects with capped, jittered, resetting backoff."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av
import structlog

from streams.h264 import has_sps, parameter_sets, profile_level_id

log = structlog.get_logger(__name__)

PUT_POLL = 0.5
"""Seconds the worker waits on a full queue before rechecking its stop flag."""
MICROSECONDS = 1_000_000


@dataclass(frozen=True, slots=True)
class PullConfig:
    """How a camera is pulled."""

    open_timeout: float = 10.0
    read_timeout: float = 5.0
    reconnect_min_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    stable_after: float = 30.0
    queue_size: int = 64
    rtsp_transport: str = "tcp"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a viewer must know about a camera's video before the first packet."""

    codec: str
    width: int
    height: int
    parameter_sets: bytes
    profile_level_id: str | None
    time_base: Fraction


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One encoded access unit (Annex-B), timestamps cleaned and on a continuous timeline."""

    data: bytes
    pts: int
    dts: int
    keyframe: bool
    time_base: Fraction


@dataclass(frozen=True, slots=True)
class _Raw:
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    time_base: Fraction


@dataclass(frozen=True, slots=True)
class _Ended:
    reason: str


@dataclass(slots=True)
class PullCounters:
    """Shared across pulls (the StreamManager owns one)."""

    rtsp_sessions: int = 0
    packets_in: int = 0
    packets_dropped_timestamps: int = 0
    threads_alive: int = 0


_Item = StreamInfo | _Raw | _Ended


@dataclass(frozen=True, slots=True)
class SourceHooks:
    """How a pull reports to the camera it feeds."""

    on_info: Callable[[StreamInfo], None]
    on_packet: Callable[[MediaPacket], None]
    on_status: Callable[[bool, str], None]


class PullSource(Protocol):
    """What the StreamManager runs for a camera: CameraSource (URLs PyAV opens) or another
    kind registered for a URL scheme (GB/T 28181 PS over RTP)."""

    url: str

    @property
    def online(self) -> bool | None:
        """None until the first session reported, then whether media flows."""

    async def run(self) -> None:
        """Pull, reconnecting, until ``stop()``."""

    def stop(self) -> None:
        """Ask the pull to end."""

    async def join(self, timeout: float) -> bool:
        """Wait for the pull's own threads/sessions to end; False if one is still running."""


SourceFactory = Callable[[str, str, SourceHooks], PullSource]
"""(url, camera id, hooks) → a pull for URLs of one scheme."""

MAX_ATTEMPT = 30
"""Backoff doublings counted at most (the delay is capped long before)."""


class BackoffConfig(Protocol):
    """The reconnect knobs every pull's config has."""

    @property
    def reconnect_min_delay(self) -> float:
        """First wait (s)."""

    @property
    def reconnect_max_delay(self) -> float:
        """Longest wait (s)."""

    @property
    def stable_after(self) -> float:
        """Seconds a session must last to reset the backoff."""


class StatusLatch:
    """A pull's online state: reported (and logged) once per change, never repeated."""

    def __init__(self, on_status: Callable[[bool, str], None], name: str) -> None:
        self.online: bool | None = None
        self._on_status = on_status
        self._log = log.bind(camera_id=name)

    def set(self, online: bool, reason: str) -> None:
        """Report ``online`` if it differs from the last report."""
        if self.online is online:
            return
        self.online = online
        if online:
            self._log.info("camera online")
        else:
            self._log.warning("camera offline", reason=reason)
        self._on_status(online, reason)


async def reconnect_forever(
    session: Callable[[], Awaitable[str]],
    stopped: Callable[[], bool],
    status: StatusLatch,
    config: BackoffConfig,
    pause: Callable[[float], Awaitable[object]],
) -> None:
    """Run ``session`` (returns why it ended) until ``stopped()``: after each end report the
    camera offline and ``pause`` a capped, jittered, doubling delay that a stable session
    resets."""
    attempt = 0
    while not stopped():
        started = time.monotonic()
        reason = await session()
        if stopped():
            return
        if time.monotonic() - started >= config.stable_after:
            attempt = 0
        status.set(False, reason)
        delay = min(config.reconnect_max_delay, config.reconnect_min_delay * 2**attempt)
        attempt = min(attempt + 1, MAX_ATTEMPT)
        await pause(random.uniform(delay / 2, delay))


class TimestampCleaner:
    """Home Assistant's stream worker rules: drop packets without any timestamp and packets
    whose DTS does not advance; rebase onto a timeline that stays monotonic across
    reconnects."""

    def __init__(self) -> None:
        self._last_in: int | None = None
        self._offset: int | None = None
        self._last_out: int | None = None
        self._step = 1

    def new_session(self) -> None:
        """The next packet starts a new upstream timeline (after a reconnect)."""
        self._last_in = None
        self._offset = None

    def clean(self, pts: int | None, dts: int | None) -> tuple[int, int] | None:
        """(pts, dts) on the output timeline, or None to drop the packet."""
        if dts is None:
            dts = pts
        if dts is None:
            if self._last_in is not None:
                return None
            dts = 0  # RTSP's first packet often has no time yet; the next ones follow it
        if pts is None:
            pts = dts
        if self._last_in is not None:
            if dts <= self._last_in:
                return None
            self._step = dts - self._last_in
        self._last_in = dts
        if self._offset is None:
            start = 0 if self._last_out is None else self._last_out + self._step
            self._offset = start - dts
        self._last_out = dts + self._offset
        return pts + self._offset, self._last_out


class CameraSource:
    """Pulls one URL until stopped, reconnecting with backoff; reports through callbacks."""

    def __init__(
        self,
        url: str,
        config: PullConfig,
        counters: PullCounters,
        hooks: SourceHooks,
        name: str = "",
    ) -> None:
        self.url = url
        self.config = config
        self.counters = counters
        self._hooks = hooks
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cleaner = TimestampCleaner()
        self._status = StatusLatch(hooks.on_status, name)

    @property
    def online(self) -> bool | None:
        """None until the first session reported, then whether the camera delivers."""
        return self._status.online

    async def run(self) -> None:
        """Pull, reconnecting until ``stop()``; returns when stopped."""
        await reconnect_forever(
            self._session, self._stop.is_set, self._status, self.config, asyncio.sleep
        )

    async def _session(self) -> str:
        """One worker thread's session; why it ended."""
        queue: asyncio.Queue[_Item] = asyncio.Queue(self.config.queue_size)
        thread = threading.Thread(
            target=self._worker,
            args=(asyncio.get_running_loop(), queue),
            name="camera pull",
            daemon=True,
        )
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()
        return await self._consume(queue)

    def stop(self) -> None:
        """Ask the worker to finish (it does within one read timeout)."""
        self._stop.set()

    async def join(self, timeout: float) -> bool:
        """Wait for the worker threads to end; False if one is still running."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            remaining = max(0.0, deadline - time.monotonic())
            await asyncio.to_thread(thread.join, remaining)
        return not any(t.is_alive() for t in self._threads)

    async def _consume(self, queue: asyncio.Queue[_Item]) -> str:
        self._cleaner.new_session()
        seen_keyframe = False
        while True:
            item = await queue.get()
            if isinstance(item, _Ended):
                return item.reason
            if isinstance(item, StreamInfo):
                self._hooks.on_info(item)
                self._status.set(True, "")
                continue
            if not seen_keyframe and not item.keyframe:
                continue  # nothing decodes before the first keyframe
            times = self._cleaner.clean(item.pts, item.dts)
            if times is None:
                self.counters.packets_dropped_timestamps += 1
                continue
            seen_keyframe = True
            self._hooks.on_packet(
                MediaPacket(item.data, times[0], times[1], item.keyframe, item.time_base)
            )

    # -- worker thread -------------------------------------------------------------------

    def _put(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_Item], item: _Item
    ) -> bool:
        while not self._stop.is_set():
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            try:
                future.result(PUT_POLL)
                return True
            except concurrent.futures.TimeoutError:
                future.cancel()
            except RuntimeError:  # the loop is closed
                return False
        return False

    def _worker(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_Item]) -> None:
        self.counters.threads_alive += 1
        try:
            reason = self._pull(loop, queue)
        except Exception as err:  # the thread must always report its end
            reason = f"{type(err).__name__}: {err}"
        finally:
            self.counters.threads_alive -= 1
        if not self._stop.is_set():
            self._put(loop, queue, _Ended(reason))

    def _pull(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[_Item]) -> str:
        options = {
            "rtsp_transport": self.config.rtsp_transport,
            "timeout": str(int(self.config.read_timeout * MICROSECONDS)),
        }
        if not self.url.startswith("rtsp"):
            options = {}
        try:
            container = av.open(
                self.url,
                options=options,
                timeout=(self.config.open_timeout, self.config.read_timeout),
            )
        except (av.FFmpegError, OSError) as err:
            return f"open failed: {err}"
        try:
            self.counters.rtsp_sessions += 1
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            ctx = stream.codec_context
            psets = parameter_sets(bytes(ctx.extradata or b""))
            time_base = stream.time_base or Fraction(1, 90000)
            info = StreamInfo(
                ctx.name, ctx.width, ctx.height, psets, profile_level_id(psets), time_base
            )
            if not self._put(loop, queue, info):
                return "stopped"
            # Video only: a camera's audio (AAC, G.711) is dropped here on purpose; viewers'
            # offers get their audio sections answered inactive (streams/whep.py).
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return "stopped"
                if packet.size == 0:
                    continue
                self.counters.packets_in += 1
                data = bytes(packet)
                if packet.is_keyframe and psets and not has_sps(data):
                    data = psets + data  # aiortc's pack() never adds SPS/PPS itself
                item = _Raw(data, packet.pts, packet.dts, packet.is_keyframe, time_base)
                if not self._put(loop, queue, item):
                    return "stopped"
            return "end of stream"
        except (av.FFmpegError, OSError) as err:
            return f"read failed: {err}"
        finally:
            container.close()
