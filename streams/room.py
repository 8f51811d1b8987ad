"""A consultation room's media: one aiortc peer connection per participant; every
participant's encoded audio and video relayed to every other participant.

Signalling model (no renegotiation): a participant's offer carries its own tracks
(``sendrecv``/``sendonly`` sections: at most one audio and one video are its upstream) and
*receive slots*: every section that receives (``sendrecv``/``recvonly``), paired in order
audio k with video k. The hub plays each other source (participant or camera) in one slot
and says which in :meth:`MediaRoom.slots`; a slot's sender keeps one SSRC and continuous
timestamps while the source behind it changes, so no renegotiation is ever needed.

Media path: receivers are tapped (streams/forwarding.py) so complete encoded frames go to
the source's relay (streams/relay.py: bounded per-receiver queues and a cached GOP for a
fast first picture); slot tracks hand them to aiortc's senders as ``av.Packet``s, which are
packetised without encoding. Video is H.264 constrained baseline (what every WebRTC
endpoint must support, what cameras and GB/T 28181 deliver), audio Opus. Transcoding is a
fallback (a camera in another profile, or ``force_transcode`` for benchmarks): one
decode-once/encode-once Transcoder per source, counted in ``frames_decoded``/``encoded``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import structlog
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
from aiortc.sdp import H264Profile, SessionDescription, candidate_from_sdp

from streams import forwarding
from streams.h264 import nal_type, split_annexb
from streams.relay import CameraRelay, RelayCounters, Viewer
from streams.source import MediaPacket, StreamInfo
from streams.track_recorder import TrackFile, TrackRecorder
from streams.transcode import TranscodeConfig, Transcoder
from streams.whep import SUPPORTED_FEEDBACK, h264_profile

log = structlog.get_logger(__name__)

CLOCK = {"audio": 48000, "video": 90000}
DEFAULT_STEP = {"audio": 960, "video": 3600}
"""Timestamp step (20 ms of Opus, one 25 fps frame) where a source change leaves a gap."""
MAX_GAP_SECONDS = 5
ROOM_PLID = "42e01f"
_CB = (H264Profile.PROFILE_CONSTRAINED_BASELINE, H264Profile.PROFILE_BASELINE)
MAX_BUNDLE = RTCBundlePolicy.MAX_BUNDLE
"""Every section on the first one's transport. aiortc's default (balanced) leaves a second
video section of an answer on a transport that never connects."""
SPEAKING_BELOW = 60
"""Audio level (-dBov) under which a source counts as speaking."""


class RoomMediaError(Exception):
    """A request the room cannot serve; ``code`` is the API error code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """Knobs of every room (the hub fills them from its settings)."""

    viewer_queue: int = 150
    gop_max_packets: int = 300
    gop_max_bytes: int = 8 * 1024 * 1024
    participant_timeout: float = 10.0
    """Seconds without a datagram from a participant before it counts as lost."""
    connect_timeout: float = 15.0
    watch_interval: float = 0.5
    keyframe_interval: float = 0.5
    """Shortest time between two keyframe requests sent to one source."""
    force_transcode: bool = False
    transcode: TranscodeConfig = field(default_factory=TranscodeConfig)
    record_dir: Path | None = None
    """Where per-track recordings go (``<dir>/<room>/…``); None: no recording."""


@dataclass(slots=True)
class RoomCounters:
    """What every room of the process has done (tests, /metrics and benches read these)."""

    frames_received: int = 0
    frames_forwarded: int = 0
    frames_decoded: int = 0
    frames_encoded: int = 0
    keyframe_requests: int = 0
    transcoded_sources: int = 0
    peer_connections_open: int = 0
    peer_connections_total: int = 0
    relay: RelayCounters = field(default_factory=RelayCounters)


EventSink = Callable[[str, dict[str, Any]], None]


def is_keyframe(kind: str, data: bytes) -> bool:
    """Whether an encoded frame starts a decodable picture (IDR or SPS for H.264)."""
    if kind == "audio":
        return True
    return any(nal_type(unit) in (5, 7) for unit in split_annexb(data[:4096]))


class Source:
    """One participant's (or camera's) media entering the room."""

    def __init__(self, source_id: str, room: MediaRoom) -> None:
        self.id = source_id
        config = room.config
        relay_args = (room.counters.relay, config.viewer_queue, config.gop_max_packets,
                      config.gop_max_bytes)  # fmt: skip
        self.relays = {"audio": CameraRelay(*relay_args), "video": CameraRelay(*relay_args)}
        self.relays["video"].set_info(
            StreamInfo("h264", 0, 0, b"", ROOM_PLID, Fraction(1, CLOCK["video"]))
        )
        self.has = {"audio": False, "video": False}
        self.muted = {"audio": False, "video": False}
        self.level = 127
        self.level_at = 0.0
        self.transcoder: Transcoder | None = None
        self.feeding: Viewer | None = None
        """A camera's viewer on the stream manager, pumped into this source's relay."""
        self._room = room
        self._pli: Callable[[], object] | None = None
        self._pli_at = 0.0

    def output(self, kind: str) -> CameraRelay:
        """The relay receivers read: the source's own, or its transcoded stream."""
        if kind == "video" and self.transcoder is not None:
            return self.transcoder.relay
        return self.relays[kind]

    def publish(self, kind: str, packet: MediaPacket) -> None:
        self._room.counters.frames_received += 1
        if not self.muted[kind]:
            self.relays[kind].publish(packet)

    def on_frame(self, kind: str) -> Callable[[str, bytes, int], None]:
        """The receiver tap's sink for one of this source's tracks."""
        tb = Fraction(1, CLOCK[kind])

        def sink(mime: str, data: bytes, timestamp: int) -> None:
            self.publish(kind, MediaPacket(data, timestamp, timestamp, is_keyframe(kind, data), tb))

        return sink

    def on_level(self, level: int) -> None:
        self.level = level
        self.level_at = time.monotonic()

    def request_keyframe(self) -> None:
        """Ask the source for a keyframe (rate-limited; cameras and transcoders have none to
        give: new receivers start from the cached GOP; a muted video would be dropped, and
        unmuting asks anew)."""
        now = time.monotonic()
        if self._pli is None or now - self._pli_at < self._room.config.keyframe_interval:
            return
        if self.muted["video"]:
            return
        self._pli_at = now
        if self._pli() is not None:
            self._room.counters.keyframe_requests += 1

    def close(self) -> None:
        for relay in self.relays.values():
            relay.close()
        if self.transcoder is not None:
            self.transcoder.stop()


class SlotTrack(MediaStreamTrack):
    """A sender's track playing whichever source the room assigns to its slot; ``recv()``
    returns encoded ``av.Packet``s on one continuous timeline."""

    def __init__(self, kind: str, counters: RoomCounters) -> None:
        super().__init__()
        self.kind = kind
        self.source: Source | None = None
        self._counters = counters
        self._viewer: Viewer | None = None
        self._relay: CameraRelay | None = None
        self._changed = asyncio.Event()
        self._clock = CLOCK[kind]
        self._tb = Fraction(1, self._clock)
        self._out = 0
        self._last_in: int | None = None

    def assign(self, source: Source | None) -> None:
        """Play ``source`` from its next keyframe on (None: nothing)."""
        if self._viewer is not None and self._relay is not None:
            self._relay.detach(self._viewer)
        self._viewer = self._relay = None
        self.source = source
        self._last_in = None
        if source is not None:
            self._relay = source.output(self.kind)
            self._viewer = self._relay.attach()
            if self.kind == "video":
                source.request_keyframe()
        self._changed.set()

    def request_keyframe(self) -> None:
        """A receiver lost a picture: forward the request to the source."""
        if self.source is not None:
            self.source.request_keyframe()

    @property
    def starved(self) -> bool:
        """Waiting for a keyframe (just assigned, or skipped forward after falling behind)."""
        return self._viewer is not None and self._viewer.waiting_keyframe

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        while True:
            viewer = self._viewer
            if viewer is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            item = await viewer.get()
            if viewer is not self._viewer:
                continue  # reassigned meanwhile
            if item is None:
                self._viewer = None  # the source ended
                continue
            self._counters.frames_forwarded += 1
            return self._packet(item)

    def _packet(self, item: MediaPacket) -> av.Packet:  # type: ignore[type-arg]
        if item.time_base == self._tb:  # the usual case: no Fraction arithmetic per packet
            ticks = item.pts
        else:
            ticks = int(item.pts * item.time_base * self._clock)
        last, self._last_in = self._last_in, ticks
        step = DEFAULT_STEP[self.kind]
        if last is not None and 0 <= ticks - last <= MAX_GAP_SECONDS * self._clock:
            step = ticks - last
        self._out += step
        packet = av.Packet(item.data)
        packet.pts = packet.dts = self._out
        packet.time_base = self._tb
        return packet

    def stop(self) -> None:
        self.assign(None)
        super().stop()


@dataclass(slots=True)
class Slot:
    """A pair of receive sections of one participant's connection."""

    index: int
    audio: SlotTrack | None
    video: SlotTrack | None
    audio_mid: str | None
    video_mid: str | None

    @property
    def source(self) -> Source | None:
        track = self.video or self.audio
        return track.source if track is not None else None

    def assign(self, source: Source | None) -> None:
        for track in (self.audio, self.video):
            if track is not None:
                track.assign(source)


class Peer:
    """One participant's connection."""

    def __init__(self, participant_id: str, pc: RTCPeerConnection) -> None:
        self.participant_id = participant_id
        self.pc = pc
        self.slots: list[Slot] = []
        self.source: Source | None = None
        self.rx_packets = 0
        self.rx_at = time.monotonic()
        self.created_at = time.monotonic()
        self.connected = False
        self.closed = False


@dataclass(frozen=True, slots=True)
class _Section:
    kind: str
    sends: bool
    receives: bool


class MediaRoom:
    """The peer connections, sources and recordings of one consultation room."""

    def __init__(
        self,
        room_id: str,
        config: RoomConfig,
        counters: RoomCounters,
        on_event: EventSink,
        executor: concurrent.futures.Executor,
    ) -> None:
        self.room_id = room_id
        self.config = config
        self.counters = counters
        self._on_event = on_event
        self._executor = executor
        self.peers: dict[str, Peer] = {}
        self.sources: dict[str, Source] = {}
        self._recorders: dict[str, list[asyncio.Task[TrackFile | None]]] = {}
        self._files: list[TrackFile] = []
        self._record_seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._speaker: str | None = None
        self._watch = self._spawn(self._watchdog(), f"room watchdog {room_id}")
        self.closed = False

    # -- participants --------------------------------------------------------------------

    async def connect(self, participant_id: str, offer: str) -> str:
        """Answer a participant's offer (replacing its earlier connection, if any)."""
        if self.closed:
            raise RoomMediaError("consultation.ended", "the consultation has ended", 409)
        sections = parse_offer(offer)
        if participant_id in self.peers:
            await self.disconnect(participant_id)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=MAX_BUNDLE))
        self.counters.peer_connections_open += 1
        self.counters.peer_connections_total += 1
        peer = Peer(participant_id, pc)
        try:
            await self._answer(peer, offer, sections)
        except BaseException:
            await self._close_pc(peer)
            raise
        self.peers[participant_id] = peer
        if peer.source is not None:
            self.sources[peer.source.id] = peer.source
            self._record(peer.source)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState == "connected":
                peer.connected = True
            elif pc.connectionState in ("failed", "closed") and not peer.closed:
                await self._lost(peer, "connection_" + pc.connectionState)

        self._fill_slots()
        local = pc.localDescription
        assert local is not None
        log.info("participant connected", room=self.room_id, participant=participant_id,
                 slots=len(peer.slots), sends=sorted(k for k, v in (peer.source.has.items()
                 if peer.source else ()) if v))  # fmt: skip
        return str(local.sdp)

    async def _answer(self, peer: Peer, offer: str, sections: list[_Section]) -> None:
        pc = peer.pc
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        except Exception as err:  # aiortc raises assorted errors on offers it refuses
            raise RoomMediaError(
                "consultation.bad_sdp", f"the offer was refused: {err}", 400
            ) from err
        transceivers = pc.getTransceivers()
        if len(transceivers) != len(sections):
            raise RoomMediaError(
                "consultation.bad_sdp", "the offer's sections are not all audio/video", 400
            )
        source: Source | None = None
        receiving: dict[str, list[tuple[RTCRtpTransceiver, SlotTrack]]] = {"audio": [], "video": []}
        for transceiver, section in zip(transceivers, sections, strict=True):
            transceiver._codecs = _room_codecs(transceiver, section.kind)
            if section.sends and (source is None or not source.has[section.kind]):
                source = source or Source(peer.participant_id, self)
                source.has[section.kind] = True
                forwarding.tap_receiver(transceiver.receiver, source.on_frame(section.kind))
                if section.kind == "audio":
                    forwarding.watch_audio_level(transceiver.receiver, source.on_level)
                else:
                    source._pli = partial(forwarding.send_pli, transceiver.receiver)
            else:
                forwarding.tap_receiver(transceiver.receiver, _discard)
            if section.receives:
                track = SlotTrack(section.kind, self.counters)
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendrecv"
                forwarding.on_keyframe_request(transceiver.sender, track.request_keyframe)
                receiving[section.kind].append((transceiver, track))
        audio, video = receiving["audio"], receiving["video"]
        for index in range(max(len(audio), len(video))):
            a = audio[index] if index < len(audio) else None
            v = video[index] if index < len(video) else None
            peer.slots.append(Slot(index, a[1] if a else None, v[1] if v else None,
                                   a[0].mid if a else None, v[0].mid if v else None))  # fmt: skip
        if source is not None and self.config.force_transcode and source.has["video"]:
            self._transcode(source)
        peer.source = source
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)  # returns once ICE gathering is complete

    async def disconnect(self, participant_id: str) -> bool:
        """Close a participant's connection (False if it had none)."""
        peer = self.peers.pop(participant_id, None)
        if peer is None:
            return False
        await self._drop_peer(peer)
        return True

    async def add_candidate(self, participant_id: str, candidate: dict[str, Any]) -> None:
        """A trickled ICE candidate (``{"candidate": "candidate:…", "sdpMid": …}``)."""
        peer = self.peers.get(participant_id)
        if peer is None:
            raise RoomMediaError("consultation.no_session", "no media session to add ICE to", 404)
        line = candidate.get("candidate")
        if not isinstance(line, str) or not line:
            return  # end-of-candidates
        try:
            parsed: RTCIceCandidate = candidate_from_sdp(
                line.removeprefix("a=").removeprefix("candidate:")
            )
        except (ValueError, IndexError, AssertionError) as err:
            raise RoomMediaError(
                "consultation.bad_candidate", f"unparseable ICE candidate: {err}", 400
            ) from err
        mid = candidate.get("sdpMid")
        parsed.sdpMid = mid if isinstance(mid, str) else peer.pc.getTransceivers()[0].mid
        await peer.pc.addIceCandidate(parsed)

    def mute(self, participant_id: str, kind: str, muted: bool) -> None:
        """Stop (or resume) forwarding one of a source's tracks."""
        source = self.sources.get(participant_id)
        if source is None:
            return
        source.muted[kind] = muted
        if muted:
            # Silence now, not after what a loaded hub still holds for the receivers (slot
            # tracks, SIP legs, a transcoder's input); recordings keep theirs.
            for relay in {source.relays[kind], source.output(kind)}:
                relay.flush()
        elif kind == "video":
            source.request_keyframe()

    # -- cameras -------------------------------------------------------------------------

    def add_feed(self, source_id: str, viewer: Viewer, transcoded: bool) -> Source:
        """A camera as a source: ``viewer`` (from the stream manager) is pumped into it."""
        source = Source(source_id, self)
        source.has["video"] = True
        source.feeding = viewer
        if transcoded:
            self.counters.transcoded_sources += 1
        self.sources[source_id] = source
        self._spawn(self._pump(source, viewer), f"room feed {source_id}")
        self._record(source)
        self._fill_slots()
        return source

    def remove_feed(self, source_id: str) -> Viewer | None:
        """Take a camera out; returns its stream-manager viewer for release."""
        source = self.sources.pop(source_id, None)
        if source is None:
            return None
        self._remove_source(source)
        return source.feeding

    # -- SIP legs ------------------------------------------------------------------------

    def add_leg_source(
        self, participant_id: str, *, audio: bool = True, video: bool = True
    ) -> Source:
        """A participant whose media arrives outside aiortc (a SIP terminal's leg publishes
        into the returned source and sets its ``_pli``)."""
        if self.closed:
            raise RoomMediaError("consultation.ended", "the consultation has ended", 409)
        if participant_id in self.sources:
            raise RoomMediaError(
                "consultation.duplicate_source", f"{participant_id!r} is already in the room", 409
            )
        source = Source(participant_id, self)
        source.has["audio"], source.has["video"] = audio, video
        self.sources[participant_id] = source
        self._record(source)
        self._fill_slots()
        return source

    def remove_leg_source(self, participant_id: str) -> bool:
        """Take a leg's source out (False if it had none); slots showing it are re-filled."""
        source = self.sources.pop(participant_id, None)
        if source is None:
            return False
        self._remove_source(source)
        return True

    @property
    def active_speaker(self) -> str | None:
        """The source that spoke loudest most recently (None until someone spoke)."""
        return self._speaker

    async def _pump(self, source: Source, viewer: Viewer) -> None:
        while (packet := await viewer.get()) is not None:
            source.publish("video", packet)

    # -- state ---------------------------------------------------------------------------

    def slots(self) -> dict[str, list[dict[str, Any]]]:
        """Per participant: its receive slots and the source each plays."""
        return {
            pid: [
                {
                    "index": s.index,
                    "audio_mid": s.audio_mid,
                    "video_mid": s.video_mid,
                    "source": s.source.id if s.source else None,
                }
                for s in peer.slots
            ]
            for pid, peer in self.peers.items()
        }

    async def close(self) -> list[TrackFile]:
        """Close every connection and source; the recordings written."""
        if self.closed:
            return list(self._files)
        self.closed = True
        self._watch.cancel()
        for pid in list(self.peers):
            await self.disconnect(pid)
        for source in list(self.sources.values()):
            self.sources.pop(source.id, None)
            self._remove_source(source)
        tasks = [t for ts in self._recorders.values() for t in ts]
        for done in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(done, TrackFile):
                self._files.append(done)
            elif isinstance(done, BaseException):
                log.error("track recording failed", room=self.room_id, error=str(done))
        others = [t for t in self._tasks if not t.done()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=5)
        return list(self._files)

    # -- internals -----------------------------------------------------------------------

    def _transcode(self, source: Source) -> None:
        config = self.config
        source.transcoder = Transcoder(
            source.relays["video"], config.transcode, self.counters, self.counters.relay,
            config.viewer_queue, config.gop_max_packets, config.gop_max_bytes,
            name=f"{self.room_id}/{source.id}",
        )  # fmt: skip
        self.counters.transcoded_sources += 1
        self._spawn(source.transcoder.run(), f"room transcode {source.id}")

    def _fill_slots(self, changed: bool = False) -> None:
        """Give every source a slot on every other participant's connection; say so when
        that (or the caller, with ``changed``) changed what plays where."""
        for peer in self.peers.values():
            shown = {s.source.id for s in peer.slots if s.source is not None}
            free = [s for s in peer.slots if s.source is None]
            for source in self.sources.values():
                if source.id == peer.participant_id or source.id in shown or not free:
                    continue
                free.pop(0).assign(source)
                changed = True
        if changed:
            self._on_event("slots", {"slots": self.slots()})

    def _remove_source(self, source: Source) -> None:
        for peer in self.peers.values():
            for slot in peer.slots:
                if slot.source is source:
                    slot.assign(None)
        source.close()
        self._fill_slots(changed=True)

    async def _drop_peer(self, peer: Peer) -> None:
        peer.closed = True
        if peer.source is not None and self.sources.get(peer.source.id) is peer.source:
            del self.sources[peer.source.id]
            self._remove_source(peer.source)
        for slot in peer.slots:
            slot.assign(None)
        await self._close_pc(peer)

    async def _close_pc(self, peer: Peer) -> None:
        peer.closed = True
        await peer.pc.close()
        self.counters.peer_connections_open -= 1

    async def _lost(self, peer: Peer, reason: str) -> None:
        if self.peers.get(peer.participant_id) is not peer:
            return
        del self.peers[peer.participant_id]
        log.warning("participant lost", room=self.room_id, participant=peer.participant_id,
                    reason=reason)  # fmt: skip
        await self._drop_peer(peer)
        self._on_event(
            "participant_lost", {"participant_id": peer.participant_id, "reason": reason}
        )

    def _record(self, source: Source) -> None:
        if self.config.record_dir is None:
            return
        directory = self.config.record_dir / self.room_id
        tasks = self._recorders.setdefault(source.id, [])
        safe = source.id.replace(":", "-").replace("/", "-")
        for kind in ("audio", "video"):
            if not source.has[kind]:
                continue
            self._record_seq += 1
            suffix = ".mkv" if kind == "video" else ".mka"
            path = directory / f"{self._record_seq:03d}-{safe}-{kind}{suffix}"
            recorder = TrackRecorder(source.id, kind, source.relays[kind].attach(keep=True), path,
                                     self._executor)  # fmt: skip
            tasks.append(self._spawn(recorder.run(), f"record {source.id} {kind}"))

    async def _watchdog(self) -> None:
        config = self.config
        while True:
            await asyncio.sleep(config.watch_interval)
            now = time.monotonic()
            for peer in list(self.peers.values()):
                rx = forwarding.packets_received(peer.pc)
                if rx != peer.rx_packets:
                    peer.rx_packets, peer.rx_at = rx, now
                if not peer.connected and now - peer.created_at > config.connect_timeout:
                    await self._lost(peer, "connect_timeout")
                elif peer.connected and now - peer.rx_at > config.participant_timeout:
                    await self._lost(peer, "timeout")
                for slot in peer.slots:
                    if slot.video is not None and slot.video.starved:
                        slot.video.request_keyframe()  # rate-limited per source
            self._active_speaker(now)

    def _active_speaker(self, now: float) -> None:
        speaking = [
            (s.level, s.id) for s in self.sources.values()
            if not s.muted["audio"] and now - s.level_at < 1.0 and s.level < SPEAKING_BELOW
        ]  # fmt: skip
        if not speaking:
            return
        loudest = min(speaking)[1]
        if loudest != self._speaker:
            self._speaker = loudest
            self._on_event("active_speaker", {"participant_id": loudest})

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("room task failed", room=self.room_id, task=task.get_name(),
                      exc_info=(type(exc), exc, exc.__traceback__))  # fmt: skip


def _discard(mime: str, data: bytes, timestamp: int) -> None:
    """Sink for a second audio/video a participant sends: not forwarded, never decoded."""


def parse_offer(offer: str) -> list[_Section]:
    """The offer's media sections, or RoomMediaError for what is plainly not usable."""
    if not isinstance(offer, str) or not offer.startswith("v=0"):
        raise RoomMediaError("consultation.bad_sdp", "the offer is not SDP (must start v=0)", 400)
    try:
        description = SessionDescription.parse(offer)
    except Exception as err:  # aiortc's parser raises assorted errors on garbage
        raise RoomMediaError("consultation.bad_sdp", f"unparseable SDP offer: {err}", 400) from err
    if not description.media:
        raise RoomMediaError("consultation.bad_sdp", "the offer has no media sections", 400)
    bundle = next((g for g in description.group if g.semantic == "BUNDLE"), None)
    mids = {m.rtp.muxId for m in description.media}
    if bundle is None or not mids <= {str(item) for item in bundle.items}:
        raise RoomMediaError(
            "consultation.bad_sdp", "the offer must bundle every section (a=group:BUNDLE)", 400
        )
    sections = []
    for media in description.media:
        if media.kind not in ("audio", "video"):
            raise RoomMediaError(
                "consultation.bad_sdp", f"media section {media.kind!r} is not audio or video", 400
            )
        if not (
            media.ice and media.ice.usernameFragment and media.dtls and media.dtls.fingerprints
        ):
            raise RoomMediaError(
                "consultation.bad_sdp", "the offer lacks ICE credentials or DTLS", 400
            )
        direction = media.direction or "sendrecv"
        mimes = {c.mimeType.lower() for c in media.rtp.codecs}
        if media.kind == "audio" and "audio/opus" not in mimes:
            raise RoomMediaError(
                "consultation.codec_unsupported", "an audio section lacks Opus", 422
            )
        if media.kind == "video" and not _baseline(media.rtp.codecs):
            raise RoomMediaError(
                "consultation.codec_unsupported",
                "a video section lacks H.264 constrained baseline (packetization-mode=1), "
                "the room's video codec",
                422,
            )
        sections.append(_Section(media.kind, direction in ("sendrecv", "sendonly"),
                                 direction in ("sendrecv", "recvonly")))  # fmt: skip
    return sections


def _baseline(codecs: list[RTCRtpCodecParameters]) -> RTCRtpCodecParameters | None:
    for codec in codecs:
        if codec.mimeType.lower() != "video/h264":
            continue
        if str(codec.parameters.get("packetization-mode", "0")) != "1":
            continue
        if h264_profile(str(codec.parameters.get("profile-level-id", ROOM_PLID))) in _CB:
            return codec
    return None


def _room_codecs(transceiver: RTCRtpTransceiver, kind: str) -> list[RTCRtpCodecParameters]:
    """The one codec (and its RTX) this section will use, from what aiortc negotiated."""
    negotiated: list[RTCRtpCodecParameters] = transceiver._codecs
    if kind == "audio":
        chosen = next((c for c in negotiated if c.mimeType.lower() == "audio/opus"), None)
    else:
        chosen = _baseline(negotiated)
    if chosen is None:
        raise RoomMediaError("consultation.codec_unsupported", f"no shared {kind} codec", 422)
    chosen = copy.deepcopy(chosen)
    chosen.rtcpFeedback = [
        RTCRtcpFeedback(type=f.type, parameter=f.parameter)
        for f in chosen.rtcpFeedback
        if (f.type, f.parameter) in SUPPORTED_FEEDBACK
    ]
    rtx = [
        c for c in negotiated
        if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") == chosen.payloadType
    ]  # fmt: skip
    return [chosen, *rtx[:1]]
