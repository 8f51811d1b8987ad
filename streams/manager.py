"""``StreamManager``: one pull per camera however many viewers, started on the first viewer
and stopped an idle time after the last; WHEP sessions and snapshots on top of it."""

from __future__ import annotations

import asyncio
import secrets
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.sdp import H264Profile, SessionDescription

from streams.recorder import RecordConfig, Recorded, RecordError, record_mp4
from streams.relay import CameraRelay, RelayCounters, Viewer
from streams.snapshot import Snapshot, SnapshotError, keyframe_to_jpeg
from streams.source import (
    CameraSource,
    MediaPacket,
    PullConfig,
    PullCounters,
    PullSource,
    SourceFactory,
    SourceHooks,
    StreamInfo,
)
from streams.transcode import TranscodeConfig, Transcoder
from streams.whep import (
    OfferError,
    PassthroughTrack,
    answer_offer,
    choose_codec,
    h264_profile,
)

log = structlog.get_logger(__name__)

PASSTHROUGH = "passthrough"
_BASELINE = (H264Profile.PROFILE_CONSTRAINED_BASELINE,)
TRANSCODED = "transcoded"

StatusCallback = Callable[[str, bool, str], Coroutine[Any, Any, None]]
"""(camera_id, online, reason) — the hub publishes camera.online / camera.offline."""


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """The media plane's knobs (the hub fills them from its settings)."""

    pull: PullConfig = field(default_factory=PullConfig)
    idle_timeout: float = 10.0
    max_viewers_per_camera: int = 50
    viewer_queue: int = 150
    gop_max_packets: int = 300
    gop_max_bytes: int = 8 * 1024 * 1024
    ready_timeout: float = 10.0
    connect_timeout: float = 15.0
    snapshot_cache_seconds: float = 2.0
    record: RecordConfig = field(default_factory=RecordConfig)
    transcode: TranscodeConfig = field(default_factory=TranscodeConfig)
    force_transcode: bool = False


class MediaError(Exception):
    """A viewer request that cannot be served; ``code`` is the API error code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(slots=True)
class MediaCounters:
    """What the media plane has done (tests and /metrics read these)."""

    pulls_started: int = 0
    frames_decoded: int = 0
    frames_encoded: int = 0
    peer_connections_open: int = 0
    peer_connections_total: int = 0
    snapshots_taken: int = 0
    pull: PullCounters = field(default_factory=PullCounters)
    relay: RelayCounters = field(default_factory=RelayCounters)


class _Camera:
    def __init__(self, camera_id: str, url: str, manager: StreamManager) -> None:
        self.camera_id = camera_id
        self.relay = CameraRelay(
            manager.counters.relay,
            manager.config.viewer_queue,
            manager.config.gop_max_packets,
            manager.config.gop_max_bytes,
        )
        hooks = SourceHooks(self.relay.set_info, self._on_packet, self._on_status)
        factory = manager.source_factories.get(url.partition("://")[0])
        self.source: PullSource
        if factory is not None:
            self.source = factory(url, camera_id, hooks)
        else:
            pull = manager.config.pull
            self.source = CameraSource(url, pull, manager.counters.pull, hooks, name=camera_id)
        self._manager = manager
        self.task: asyncio.Task[None] | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.transcoder: Transcoder | None = None
        self.offline = asyncio.Event()
        """Set while the pull reports the camera offline (viewers waiting stop waiting)."""

    @property
    def viewer_count(self) -> int:
        """Passthrough and transcoded viewers (the transcoder's own input not counted)."""
        if self.transcoder is None:
            return self.relay.viewer_count
        return max(0, self.relay.viewer_count - 1) + self.transcoder.viewer_count

    def _on_packet(self, packet: MediaPacket) -> None:
        self.relay.publish(packet)

    def _on_status(self, online: bool, reason: str) -> None:
        if online:
            self.offline.clear()
        else:
            self.relay.end_session()
            self.offline.set()
        self._manager._status(self.camera_id, online, reason)


class WhepSession:
    """One viewer's peer connection."""

    def __init__(self, session_id: str, camera: _Camera, pc: RTCPeerConnection, viewer: Viewer,
                 track: PassthroughTrack, media_path: str = PASSTHROUGH) -> None:  # fmt: skip
        self.id = session_id
        self.media_path = media_path
        """``passthrough`` (the camera's H.264 as received) or ``transcoded``."""
        self.camera_id = camera.camera_id
        self.camera = camera
        self.pc = pc
        self.viewer = viewer
        self.track = track
        self.closed = False


class StreamManager:
    """Camera pulls, their relays, WHEP sessions and snapshots of one hub process."""

    def __init__(self, config: MediaConfig, on_status: StatusCallback | None = None) -> None:
        self.config = config
        self.counters = MediaCounters()
        self._on_status = on_status
        self._cameras: dict[str, _Camera] = {}
        self._stopping: set[_Camera] = set()
        self._sessions: dict[str, WhepSession] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.source_factories: dict[str, SourceFactory] = {}
        """URL scheme → the pull for such cameras (others are opened with PyAV)."""

    # -- observation ---------------------------------------------------------------------

    @property
    def pulls_running(self) -> int:
        """Cameras being pulled now (including ones winding down)."""
        return len(self._cameras) + len(self._stopping)

    def viewers(self, camera_id: str) -> int:
        """Viewers attached to a camera now."""
        camera = self._cameras.get(camera_id)
        return camera.viewer_count if camera else 0

    def sessions(self, camera_id: str | None = None) -> list[WhepSession]:
        """Open WHEP sessions (of one camera)."""
        return [s for s in self._sessions.values() if camera_id in (None, s.camera_id)]

    def is_online(self, camera_id: str) -> bool | None:
        """The pull's view of the camera: None while unknown or not pulled."""
        camera = self._cameras.get(camera_id)
        return camera.source.online if camera else None

    # -- viewers -------------------------------------------------------------------------

    def acquire(self, camera_id: str, url: str) -> tuple[_Camera, Viewer]:
        """Attach a viewer, starting the camera's pull if it is not running."""
        if self._closed:
            raise MediaError("camera.unavailable", "the media plane is shutting down", 503)
        camera = self._cameras.get(camera_id)
        if camera is None:
            camera = _Camera(camera_id, url, self)
            self._cameras[camera_id] = camera
            self.counters.pulls_started += 1
            camera.task = self._spawn(camera.source.run(), f"pull {camera_id}")
        elif camera.viewer_count >= self.config.max_viewers_per_camera:
            raise MediaError(
                "camera.viewer_limit",
                f"this camera already has {camera.viewer_count} viewers",
                503,
            )
        if camera.idle is not None:
            camera.idle.cancel()
            camera.idle = None
        return camera, camera.relay.attach()

    def release(self, camera: _Camera, viewer: Viewer) -> None:
        """Detach a viewer; the pull stops ``idle_timeout`` after the last one leaves."""
        transcoder = camera.transcoder
        if transcoder is not None and transcoder.owns(viewer):
            transcoder.detach(viewer)
            if transcoder.viewer_count == 0:  # the last transcoded viewer: stop encoding
                camera.transcoder = None
                transcoder.stop()
                self._spawn(transcoder.join(self.config.pull.read_timeout), "stop transcoder")
        else:
            camera.relay.detach(viewer)
        if camera.relay.viewer_count or self._cameras.get(camera.camera_id) is not camera:
            return
        if camera.idle is None:
            loop = asyncio.get_running_loop()
            camera.idle = loop.call_later(self.config.idle_timeout, self._idle_stop, camera)

    def _idle_stop(self, camera: _Camera) -> None:
        camera.idle = None
        if camera.relay.viewer_count == 0 and self._cameras.get(camera.camera_id) is camera:
            self._spawn(self._stop_camera(camera, self.config.pull.read_timeout + 2), "stop pull")

    async def _stop_camera(self, camera: _Camera, timeout: float) -> None:
        if self._cameras.get(camera.camera_id) is camera:
            del self._cameras[camera.camera_id]
        self._stopping.add(camera)
        try:
            if camera.idle is not None:
                camera.idle.cancel()
            camera.source.stop()
            if camera.transcoder is not None:
                camera.transcoder.stop()
            if camera.task is not None:
                camera.task.cancel()
                await asyncio.wait([camera.task], timeout=timeout)
            camera.relay.close()
            if not await camera.source.join(timeout):
                log.warning("camera pull thread did not end in time", camera_id=camera.camera_id)
            if camera.transcoder is not None and not await camera.transcoder.join(timeout):
                log.warning("transcoder thread did not end in time", camera_id=camera.camera_id)
        finally:
            self._stopping.discard(camera)
        log.info("camera pull stopped", camera_id=camera.camera_id)

    async def _ready(self, camera: _Camera) -> StreamInfo:
        """The camera's stream info once it is open; 503 as soon as the pull finds the
        camera offline, or after ``ready_timeout``."""
        if camera.source.online is False:
            raise MediaError("camera.unavailable", "the camera is offline", 503)
        info = asyncio.ensure_future(camera.relay.wait_info())
        offline = asyncio.ensure_future(camera.offline.wait())
        try:
            done, _ = await asyncio.wait(
                {info, offline}, timeout=self.config.ready_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )  # fmt: skip
        finally:
            info.cancel()
            offline.cancel()
        if info in done:
            return info.result()
        if offline in done:
            raise MediaError("camera.unavailable", "the camera is offline", 503)
        raise MediaError("camera.unavailable", "the camera did not answer in time", 503)

    # -- WHEP ----------------------------------------------------------------------------

    async def open_whep(
        self,
        camera_id: str,
        url: str,
        offer: str,
        *,
        transcode: bool = False,
    ) -> tuple[str, str]:
        """Answer a WHEP offer: (session id, SDP answer). Raises MediaError. The camera's
        H.264 is passed through unless it is another codec or ``transcode`` (or the
        ``force_transcode`` setting) asks for the shared transcoded stream."""
        _check_offer(offer)
        camera, viewer = self.acquire(camera_id, url)
        pc: RTCPeerConnection | None = None
        media_path = PASSTHROUGH
        try:
            info = await self._ready(camera)
            if transcode or self.config.force_transcode or info.codec != "h264":
                media_path = TRANSCODED
                viewer, info = await self._transcoded(camera, viewer, self.config.transcode)
            chosen = choose_codec(offer, info.profile_level_id)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            self.counters.peer_connections_open += 1
            self.counters.peer_connections_total += 1
            track = PassthroughTrack(viewer, self.counters.relay)
            answer = await answer_offer(pc, offer, chosen, track)
        except OfferError as err:
            await self._abort(camera, viewer, pc)
            status = 422 if err.code == "camera.codec_unsupported" else 400
            raise MediaError(err.code, str(err), status) from err
        except BaseException:
            await self._abort(camera, viewer, pc)
            raise
        session = WhepSession(secrets.token_urlsafe(12), camera, pc, viewer, track, media_path)
        self._sessions[session.id] = session

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close_whep(session.id)

        self._spawn(self._connect_watchdog(session), f"whep watchdog {session.id}")
        log.info("whep viewer joined", camera_id=camera_id, session=session.id, path=media_path)
        return session.id, answer

    # -- feeds (consultation rooms) -------------------------------------------------------

    async def open_feed(self, camera_id: str, url: str) -> tuple[_Camera, Viewer, bool]:
        """A camera's stream as H.264 constrained baseline for a consultation room, through
        the same shared pull (and, when the camera sends another profile or codec, the same
        shared transcoder) as live view: (camera, viewer, transcoded). Release with
        :meth:`release`."""
        camera, viewer = self.acquire(camera_id, url)
        try:
            info = await self._ready(camera)
            profile = h264_profile(info.profile_level_id or "")
            if self.config.force_transcode or info.codec != "h264" or profile not in _BASELINE:
                viewer, info = await self._transcoded(camera, viewer, self.config.transcode)
                return camera, viewer, True
        except BaseException:
            self.release(camera, viewer)
            raise
        return camera, viewer, False

    async def open_stream(self, camera_id: str, url: str) -> tuple[_Camera, Viewer, StreamInfo]:
        """A camera's encoded stream as it comes (any codec, no transcoding) through the
        shared pull, e.g. for remuxing to another container: (camera, viewer, info). Raises
        MediaError when the camera cannot be reached. Release with :meth:`release`."""
        camera, viewer = self.acquire(camera_id, url)
        try:
            info = await self._ready(camera)
        except BaseException:
            self.release(camera, viewer)
            raise
        return camera, viewer, info

    def session(self, session_id: str) -> WhepSession | None:
        """An open WHEP session by id."""
        return self._sessions.get(session_id)

    async def _transcoded(
        self, camera: _Camera, viewer: Viewer, encoding: TranscodeConfig
    ) -> tuple[Viewer, StreamInfo]:
        """Swap a passthrough viewer for one of the camera's (shared) transcoded stream."""
        if camera.transcoder is None:
            config = self.config
            camera.transcoder = Transcoder(
                camera.relay, encoding, self.counters, self.counters.relay,
                config.viewer_queue, config.gop_max_packets, config.gop_max_bytes,
                name=camera.camera_id,
            )  # fmt: skip
            self._spawn(camera.transcoder.run(), f"transcode {camera.camera_id}")
        transcoded = camera.transcoder.attach()
        camera.relay.detach(viewer)  # the transcoder's own input keeps the pull alive
        try:
            info = await asyncio.wait_for(
                camera.transcoder.relay.wait_info(), self.config.ready_timeout
            )
        except TimeoutError as err:
            self.release(camera, transcoded)
            raise MediaError(
                "camera.unavailable", "the camera's transcoded stream did not start", 503
            ) from err
        except BaseException:
            self.release(camera, transcoded)
            raise
        return transcoded, info

    async def _abort(self, camera: _Camera, viewer: Viewer, pc: RTCPeerConnection | None) -> None:
        self.release(camera, viewer)
        if pc is not None:
            await pc.close()
            self.counters.peer_connections_open -= 1

    async def _connect_watchdog(self, session: WhepSession) -> None:
        deadline = time.monotonic() + self.config.connect_timeout
        while not session.closed and time.monotonic() < deadline:
            if session.pc.connectionState == "connected":
                return
            await asyncio.sleep(0.2)
        if not session.closed:
            log.info("whep viewer never connected", session=session.id)
            await self.close_whep(session.id)

    async def close_whep(self, session_id: str, camera_id: str | None = None) -> bool:
        """End a WHEP session; False if there is none (of that camera)."""
        session = self._sessions.get(session_id)
        if session is None or camera_id not in (None, session.camera_id):
            return False
        del self._sessions[session_id]
        session.closed = True
        self.release(session.camera, session.viewer)
        await session.pc.close()
        self.counters.peer_connections_open -= 1
        log.info("whep viewer left", camera_id=session.camera_id, session=session_id)
        return True

    # -- snapshots -----------------------------------------------------------------------

    async def snapshot(self, camera_id: str, url: str) -> Snapshot:
        """A JPEG of the camera's latest keyframe, cached ``snapshot_cache_seconds``."""
        cached = self._snapshots.get(camera_id)
        if cached and time.monotonic() - cached.taken < self.config.snapshot_cache_seconds:
            return cached
        camera, viewer = self.acquire(camera_id, url)
        try:
            info = await self._ready(camera)
            keyframe = await asyncio.wait_for(
                camera.relay.wait_keyframe(), self.config.ready_timeout
            )
        except TimeoutError as err:
            raise MediaError("camera.unavailable", "no keyframe from the camera", 503) from err
        finally:
            self.release(camera, viewer)
        try:
            shot = await asyncio.to_thread(keyframe_to_jpeg, info, keyframe)
        except SnapshotError as err:
            raise MediaError("camera.snapshot_failed", str(err), 502) from err
        self.counters.frames_decoded += 1
        self.counters.frames_encoded += 1
        self.counters.snapshots_taken += 1
        self._snapshots[camera_id] = shot
        return shot

    # -- recordings ----------------------------------------------------------------------

    async def record(self, camera_id: str, url: str, seconds: float, path: Path) -> Recorded:
        """Remux ``seconds`` of the camera (from the cached GOP's keyframe on) into an MP4
        at ``path``. The recording counts as a viewer, so the pull stays up while it runs.
        Raises MediaError."""
        camera, viewer = self.acquire(camera_id, url)
        try:
            info = await self._ready(camera)
            return await record_mp4(viewer, info, seconds, path, self.config.record)
        except RecordError as err:
            raise MediaError("camera.recording_failed", str(err), 502) from err
        finally:
            self.release(camera, viewer)

    # -- lifecycle -----------------------------------------------------------------------

    async def source_changed(self, camera_id: str, url: str | None) -> None:
        """The camera was edited (``url``: its source now) or deleted (None): if its pull
        uses another source, end the pull and its viewers (the next viewer pulls anew)."""
        camera = self._cameras.get(camera_id)
        if camera is not None and camera.source.url != url:
            await self.drop_camera(camera_id)

    async def drop_camera(self, camera_id: str) -> None:
        """End a camera's viewers and its pull."""
        for session in self.sessions(camera_id):
            await self.close_whep(session.id)
        self._snapshots.pop(camera_id, None)
        camera = self._cameras.get(camera_id)
        if camera is not None:
            await self._stop_camera(camera, self.config.pull.read_timeout + 2)

    async def close(self, timeout: float) -> None:
        """Close every peer connection and stop every pull (threads joined, time-boxed)."""
        self._closed = True
        for session_id in list(self._sessions):
            try:
                await asyncio.wait_for(self.close_whep(session_id), timeout)
            except Exception:
                log.warning("peer connection did not close cleanly", exc_info=True)
        await asyncio.gather(
            *(self._stop_camera(c, timeout) for c in list(self._cameras.values())),
            return_exceptions=True,
        )
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def _status(self, camera_id: str, online: bool, reason: str) -> None:
        self._snapshots.pop(camera_id, None)
        if self._on_status is not None:
            self._spawn(self._on_status(camera_id, online, reason), f"camera status {camera_id}")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        origin = "".join(traceback.format_stack(limit=4)[:-1])
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, origin))
        return task

    def _done(self, task: asyncio.Task[Any], origin: str) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            log.error("media task failed", task=task.get_name(), spawned_at=origin,
                      exc_info=(type(exc), exc, exc.__traceback__))  # fmt: skip


def _check_offer(offer: str) -> None:
    """Reject what is plainly not a WebRTC offer before any pull starts."""
    if not offer.startswith("v=0"):
        raise MediaError("camera.bad_sdp", "the body is not an SDP offer (must start v=0)", 400)
    try:
        description = SessionDescription.parse(offer)
    except Exception as err:  # aiortc's parser raises assorted errors on garbage
        raise MediaError("camera.bad_sdp", f"unparseable SDP offer: {err}", 400) from err
    if not any(m.kind == "video" for m in description.media):
        raise MediaError("camera.bad_sdp", "the offer has no video media section", 400)
    if not any(m.ice and m.dtls for m in description.media):
        raise MediaError("camera.bad_sdp", "the offer lacks ICE credentials or DTLS", 400)
