"""The media plane of a SIP video-conference terminal in a consultation room (a "leg").

Plain RTP/RTCP over UDP (no ICE, no SRTP), one port pair (RTP even, RTCP odd) per medium.

* Terminal -> room: H.264 RTP is depacketised into Annex-B access units and published into
  the leg's :class:`~streams.room.Source` like any participant's video (never decoded).
  G.711 is decoded, resampled to 48 kHz and encoded to Opus (what the room's WebRTC
  receivers take); Opus is published as it comes. The decoded audio's level feeds the
  room's active-speaker choice.
* Room -> terminal: one source's video (the host's pick, else the active speaker) through a
  :class:`~streams.room.SlotTrack` (one SSRC, continuous timestamps across switches),
  packetised at the negotiated payload type and packetization-mode; and one mix of every
  other source's audio, encoded to the terminal's codec on a 20 ms clock.
* Keyframes: PLI + FIR to the terminal while its video waits for one (and when the room asks
  the leg's source); PLI/FIR from the terminal go to the source it is shown.
* No RTP for ``rtp_timeout`` seconds, or an RTCP BYE: ``on_lost`` is called once.
"""

from __future__ import annotations

import asyncio
import errno
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import structlog

from protocols.gb28181.rtp import (
    SEQUENCE_MODULO,
    RtpError,
    RtpPacket,
    RtpReorderer,
    encode_rtp,
    parse_rtp,
)
from protocols.rtp.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from protocols.rtp.h264 import H264Depacketizer, H264Packetizer
from protocols.rtp.rtcp import build_bye, is_rtcp, keyframe_request, scan_rtcp
from streams.ps_pull import PortPool
from streams.relay import CameraRelay, Viewer
from streams.room import MediaRoom, SlotTrack, Source
from streams.source import MediaPacket

log = structlog.get_logger(__name__)

OPUS_RATE = 48000
OPUS_FRAME = 960
"""Samples of one 20 ms frame at 48 kHz."""
G711_RATE = 8000
G711_FRAME = 160
TICK = 0.02
"""The audio clock toward the terminal: one packet per 20 ms."""
MAX_LATE = 0.2
"""A pacing loop this far behind (a stalled event loop) resynchronises instead of bursting."""
MIX_PRIME = 2 * OPUS_FRAME
"""A source joins the mix once this much of its audio is buffered (a 40 ms jitter buffer)."""
MIX_MAX_BUFFER = 10 * OPUS_FRAME
"""Per-source mix buffer bound (200 ms); beyond it the oldest audio is dropped."""
RETARGET_INTERVAL = 0.2
"""How often the leg checks which source's video the terminal should see."""
OFFLOAD_ABOVE = 4
"""Mixes of more inputs run in the room's executor (4 inputs cost ~0.5 ms per tick)."""
REORDER_WINDOW = 32
TIMESTAMP_MODULO = 1 << 32
HALF_TIMESTAMP = TIMESTAMP_MODULO // 2
VIDEO_TB = Fraction(1, 90000)
AUDIO_TB = Fraction(1, OPUS_RATE)
SILENT_LEVEL = 127
MAX_GAP_SAMPLES = 5 * G711_RATE
AUDIO_CODECS = ("PCMU", "PCMA", "OPUS")
SENDS = ("sendrecv", "sendonly")
"""Directions (seen from the hub, as written in its own SDP) in which the leg sends."""
RECEIVES = ("sendrecv", "recvonly")
"""Directions (seen from the hub) in which the leg receives."""

_Pcm = npt.NDArray[np.int16]


class LegError(OSError):
    """A leg could not get the sockets it needs (no free port pair in the pool)."""


@dataclass(frozen=True, slots=True)
class LegMedia:
    """What offer/answer settled (all remote values come from the terminal's SDP).

    Directions are the hub's own, as in the SDP the hub wrote: ``sendonly`` means the leg
    sends and does not receive that medium, ``recvonly`` the reverse."""

    remote_host: str
    video_port: int | None
    """The terminal's RTP port for video (RTCP on port + 1); None/0: no video."""
    video_payload_type: int
    packetization_mode: int
    audio_port: int | None
    audio_payload_type: int
    audio_codec: str
    """"PCMU", "PCMA" or "opus"."""
    video_direction: str = "sendrecv"
    audio_direction: str = "sendrecv"


@dataclass(slots=True)
class LegCounters:
    """What every leg of the process has done (one per process, shared by all legs)."""

    legs_open: int = 0
    video_frames_in: int = 0
    """Access units from terminals published into rooms."""
    video_frames_out: int = 0
    """Access units packetised toward terminals (never decoded)."""
    video_frames_decoded: int = 0
    """Always 0: legs never decode video."""
    video_frames_encoded: int = 0
    """Always 0: legs never encode video."""
    audio_frames_decoded: int = 0
    audio_frames_encoded: int = 0
    keyframe_requests_sent: int = 0
    keyframe_requests_received: int = 0
    rtp_timeouts: int = 0


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._sink(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable from a terminal not listening yet: keep going


class _Unwrap:
    """32-bit RTP timestamps onto a continuous timeline starting at 0."""

    def __init__(self) -> None:
        self._last: int | None = None
        self.value = 0

    def __call__(self, timestamp: int) -> int:
        if self._last is not None:
            delta = (timestamp - self._last) % TIMESTAMP_MODULO
            self.value += delta - TIMESTAMP_MODULO if delta >= HALF_TIMESTAMP else delta
        self._last = timestamp
        return self.value


@dataclass(slots=True)
class _MixInput:
    """One other source's audio entering the mix toward the terminal."""

    source: Source
    relay: CameraRelay
    viewer: Viewer
    decoder: Any
    buffer: _Pcm = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    primed: bool = False


@dataclass(slots=True)
class _Tick:
    payload: bytes
    decoded: int
    encoded: int


def level_dbov(samples: _Pcm) -> int:
    """Audio level in the RFC 6464 sense the room uses: -dBov, 0 loudest, 127 silence."""
    if samples.size == 0:
        return SILENT_LEVEL
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64))))
    if rms < 1.0:
        return SILENT_LEVEL
    return max(0, min(SILENT_LEVEL, round(-20 * math.log10(rms / 32767))))


def _opus_decoder() -> Any:
    codec = av.CodecContext.create("libopus", "r")
    codec.format = "s16"
    codec.layout = "stereo"
    codec.sample_rate = OPUS_RATE
    return codec


def _opus_encoder(layout: str) -> Any:
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate = 64000
    codec.format = "s16"
    codec.layout = layout
    codec.sample_rate = OPUS_RATE
    codec.time_base = AUDIO_TB
    codec.options = {"application": "voip"}
    return codec


def _mono(frame: av.AudioFrame) -> _Pcm:
    """A decoded s16 frame as mono samples (stereo averaged)."""
    data = frame.to_ndarray().reshape(-1)
    if len(frame.layout.channels) == 2:
        data = data.reshape(-1, 2).mean(axis=1)
    return data.astype(np.int16)


class SipLeg:
    """One SIP terminal in one room: its RTP/RTCP sockets and the tasks moving its media."""

    def __init__(
        self,
        room: MediaRoom,
        participant_id: str,
        counters: LegCounters,
        *,
        rtp_timeout: float = 10.0,
        keyframe_interval: float = 1.0,
        on_lost: Callable[[str], None] | None = None,
        offload_mix: bool | None = None,
    ) -> None:
        self.room = room
        self.participant_id = participant_id
        self.counters = counters
        self._rtp_timeout = rtp_timeout
        self._keyframe_interval = keyframe_interval
        self._on_lost = on_lost
        self._offload = offload_mix
        self._media: LegMedia | None = None
        self._source: Source | None = None
        self._rtp: dict[str, asyncio.DatagramTransport] = {}
        self._rtcp: dict[str, asyncio.DatagramTransport] = {}
        self._local: dict[str, int] = {}
        self._pool: PortPool | None = None
        self._taken: list[int] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._lost: str | None = None
        self._rx_at = 0.0
        # terminal -> room
        self._reorder = RtpReorderer(REORDER_WINDOW)
        self._depacketizer = H264Depacketizer()
        self._video_clock = _Unwrap()
        self._audio_clock = _Unwrap()
        self._remote_video_ssrc = 0
        self._asked_at = -math.inf
        self._fir_sequence = 0
        self._level_decoder: Any = None
        self._upsampler: av.AudioResampler | None = None
        self._up_encoder: Any = None
        self._up_ts = 0
        self._g711_next: int | None = None
        # room -> terminal
        self._video_ssrc = random.getrandbits(32)
        self._audio_ssrc = random.getrandbits(32)
        self._track = SlotTrack("video", room.counters)
        self._pick: str | None = None
        self._video_ts_base = random.getrandbits(32)
        self._packetizer: H264Packetizer | None = None
        self._mix: dict[str, _MixInput] = {}
        self._downsampler: av.AudioResampler | None = None
        self._down_buffer: _Pcm = np.zeros(G711_FRAME, dtype=np.int16)
        self._down_encoder: Any = None
        self._audio_sequence = random.randrange(SEQUENCE_MODULO)
        self._audio_ts = random.getrandbits(32)
        self._audio_marker = True

    # -- the contract -------------------------------------------------------------------

    async def bind(self, host: str, ports: PortPool) -> tuple[int, int]:
        """Bind local UDP sockets before the SDP is written: (video_port, audio_port); RTP on
        an even port, RTCP on port + 1 (both bound); ports from the pool. Raises LegError
        (an OSError) when no pair is free."""
        if self._local:
            return self._local["video"], self._local["audio"]
        if self._closed:
            raise LegError(errno.EBADF, "the leg is closed")
        self._pool = ports
        try:
            for kind in ("video", "audio"):
                self._local[kind] = await self._bind_pair(host, ports, kind)
        except BaseException:
            self._close_sockets()
            raise
        return self._local["video"], self._local["audio"]

    def start(self, media: LegMedia) -> None:
        """Media flows: the leg becomes a Source in the room (the terminal's video/audio are
        published into it like any participant's) and the terminal is sent the room.
        ValueError on media the leg cannot handle."""
        if self._closed:
            raise LegError(errno.EBADF, "the leg is closed")
        if self._media is not None:
            raise ValueError("the leg has already started")
        if not self._local:
            raise ValueError("bind() the leg before starting it")
        codec = media.audio_codec.upper()
        if media.audio_port and codec not in AUDIO_CODECS:
            raise ValueError(f"audio codec {media.audio_codec!r} is not supported")
        video_in = bool(media.video_port) and media.video_direction in RECEIVES
        audio_in = bool(media.audio_port) and media.audio_direction in RECEIVES
        self._packetizer = H264Packetizer(
            self._video_ssrc,
            media.video_payload_type,
            packetization_mode=media.packetization_mode,
            first_sequence=random.randrange(SEQUENCE_MODULO),
        )
        source = self.room.add_leg_source(self.participant_id, audio=audio_in, video=video_in)
        source._pli = self._ask_keyframe
        self._media, self._source = media, source
        self._rx_at = time.monotonic()
        self.counters.legs_open += 1
        if media.video_port and media.video_direction in SENDS:
            self._spawn(self._video_out(media.remote_host, media.video_port), "leg video out")
            self._spawn(self._retarget_loop(), "leg retarget")
        if media.audio_port and media.audio_direction in SENDS:
            self._spawn(self._audio_out(media.remote_host, media.audio_port, codec), "leg mix")
        self._spawn(self._watch(), "leg rtp watch")
        log.info("sip leg started", room=self.room.room_id, participant=self.participant_id,
                 remote=media.remote_host, video=media.video_port, audio=media.audio_port,
                 codec=codec, local=dict(self._local))  # fmt: skip

    def show(self, source_id: str | None) -> None:
        """The host's pick of what video the terminal sees; None: follow the active speaker."""
        self._pick = source_id
        if self._media is not None and not self._closed:
            self._retarget()

    @property
    def showing(self) -> str | None:
        """The source id whose video is being sent."""
        source = self._track.source
        return source.id if source is not None else None

    @property
    def local_ports(self) -> tuple[int, int] | None:
        """(video RTP port, audio RTP port) once bound."""
        return (self._local["video"], self._local["audio"]) if self._local else None

    async def close(self) -> None:
        """Stop the tasks, say BYE, close the sockets, give the ports back and take the
        leg's source out of the room. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._track.stop()
        for entry in self._mix.values():
            entry.relay.detach(entry.viewer)
        self._mix.clear()
        media = self._media
        if media is not None:
            bye = build_bye(self._video_ssrc)
            for kind, port in (("video", media.video_port), ("audio", media.audio_port)):
                transport = self._rtcp.get(kind)
                if port and transport is not None:
                    transport.sendto(bye, (media.remote_host, port + 1))
            self.counters.legs_open -= 1
        self._close_sockets()
        if self._source is not None and self.room.sources.get(self.participant_id) is self._source:
            self.room.remove_leg_source(self.participant_id)
        log.info("sip leg closed", room=self.room.room_id, participant=self.participant_id)

    # -- sockets ------------------------------------------------------------------------

    async def _bind_pair(self, host: str, ports: PortPool, kind: str) -> int:
        loop = asyncio.get_running_loop()
        free = ports.candidates()
        available = set(free)
        for port in free:
            if port % 2 or port + 1 not in available:
                continue
            try:
                rtp, _ = await loop.create_datagram_endpoint(
                    partial(_Endpoint, partial(self._rtp_in, kind)), local_addr=(host, port)
                )
            except OSError:
                continue  # in use by something else: the next pair
            try:
                rtcp, _ = await loop.create_datagram_endpoint(
                    partial(_Endpoint, partial(self._rtcp_in, kind)), local_addr=(host, port + 1)
                )
            except OSError:
                rtp.close()
                continue
            ports.take(port)
            ports.take(port + 1)
            self._taken += [port, port + 1]
            self._rtp[kind], self._rtcp[kind] = rtp, rtcp
            return port
        raise LegError(errno.EADDRINUSE, f"no free RTP/RTCP port pair for {kind}")

    def _close_sockets(self) -> None:
        for transport in (*self._rtp.values(), *self._rtcp.values()):
            transport.close()
        self._rtp.clear()
        self._rtcp.clear()
        if self._pool is not None:
            for port in self._taken:
                self._pool.release(port)
        self._taken = []

    # -- terminal -> room ---------------------------------------------------------------

    def _rtp_in(self, kind: str, data: bytes) -> None:
        media, source = self._media, self._source
        if media is None or source is None or self._closed:
            return
        if is_rtcp(data):  # RTCP multiplexed on the RTP port (RFC 5761)
            self._rtcp_in(kind, data)
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            return
        self._rx_at = time.monotonic()
        try:
            if kind == "video":
                if packet.payload_type == media.video_payload_type and source.has["video"]:
                    self._video_in(source, packet)
            elif packet.payload_type == media.audio_payload_type and source.has["audio"]:
                self._audio_in(source, media.audio_codec.upper(), packet)
        except (av.FFmpegError, ValueError) as err:
            log.warning("sip leg dropped a packet", participant=self.participant_id,
                        kind=kind, error=str(err))  # fmt: skip

    def _video_in(self, source: Source, packet: RtpPacket) -> None:
        self._remote_video_ssrc = packet.ssrc
        for each in self._reorder.push(packet):
            for annexb, timestamp, keyframe in self._depacketizer.push(each):
                pts = self._video_clock(timestamp)
                source.publish("video", MediaPacket(annexb, pts, pts, keyframe, VIDEO_TB))
                self.counters.video_frames_in += 1
        if self._depacketizer.waiting_keyframe:
            self._ask_keyframe()

    def _ask_keyframe(self) -> bool | None:
        """PLI + FIR to the terminal (at most once per keyframe_interval); True when sent.
        Also the leg source's ``_pli``, so the room's requests land here."""
        media = self._media
        transport = self._rtcp.get("video")
        if media is None or not media.video_port or transport is None or self._closed:
            return None
        now = time.monotonic()
        if now - self._asked_at < self._keyframe_interval:
            return None
        self._asked_at = now
        self._fir_sequence = (self._fir_sequence + 1) % 256
        request = keyframe_request(
            self._video_ssrc, self._remote_video_ssrc, fir_sequence=self._fir_sequence
        )
        transport.sendto(request, (media.remote_host, media.video_port + 1))
        self.counters.keyframe_requests_sent += 1
        return True

    def _audio_in(self, source: Source, codec: str, packet: RtpPacket) -> None:
        payload = packet.payload
        if not payload:
            return
        if codec == "OPUS":
            pts = self._audio_clock(packet.timestamp)
            source.publish("audio", MediaPacket(payload, pts, pts, True, AUDIO_TB))
            if self._level_decoder is None:
                self._level_decoder = _opus_decoder()
            frames = self._level_decoder.decode(av.Packet(payload))
            self.counters.audio_frames_decoded += 1
            if frames:
                source.on_level(level_dbov(np.concatenate([_mono(f) for f in frames])))
            return
        pcm = (ulaw_decode if codec == "PCMU" else alaw_decode)(payload)
        self.counters.audio_frames_decoded += 1
        samples = np.frombuffer(pcm, dtype="<i2")
        source.on_level(level_dbov(samples))
        timestamp = self._audio_clock(packet.timestamp)
        expected, self._g711_next = self._g711_next, timestamp + len(samples)
        if expected is not None and 0 < timestamp - expected <= MAX_GAP_SAMPLES:
            # silence suppression or loss: keep the Opus timeline in step with the terminal's
            self._up_ts += (timestamp - expected) * (OPUS_RATE // G711_RATE)
        if self._upsampler is None:
            self._upsampler = av.AudioResampler(
                format="s16", layout="stereo", rate=OPUS_RATE, frame_size=OPUS_FRAME
            )
            self._up_encoder = _opus_encoder("stereo")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = G711_RATE
        for chunk in self._upsampler.resample(frame):
            for encoded in self._up_encoder.encode(chunk):
                pts = self._up_ts
                source.publish("audio", MediaPacket(bytes(encoded), pts, pts, True, AUDIO_TB))
                self._up_ts += OPUS_FRAME
                self.counters.audio_frames_encoded += 1

    def _rtcp_in(self, kind: str, data: bytes) -> None:
        if self._media is None or self._closed:
            return
        events = scan_rtcp(data)
        if events.keyframe_request and kind == "video":
            self.counters.keyframe_requests_received += 1
            self._track.request_keyframe()
        if events.bye:
            self._lose("rtcp_bye")

    def _lose(self, reason: str) -> None:
        if self._lost is not None or self._closed:
            return
        self._lost = reason
        log.warning("sip leg lost", room=self.room.room_id, participant=self.participant_id,
                    reason=reason)  # fmt: skip
        if self._on_lost is not None:
            self._on_lost(reason)

    async def _watch(self) -> None:
        period = min(0.2, self._rtp_timeout / 4)
        while True:
            await asyncio.sleep(period)
            if time.monotonic() - self._rx_at > self._rtp_timeout:
                self.counters.rtp_timeouts += 1
                self._lose("rtp_timeout")
                return

    # -- room -> terminal: video --------------------------------------------------------

    def _choose(self) -> Source | None:
        sources = self.room.sources

        def usable(source_id: str | None) -> Source | None:
            if source_id is None or source_id == self.participant_id:
                return None
            source = sources.get(source_id)
            return source if source is not None and source.has["video"] else None

        current = self._track.source
        return (
            usable(self._pick)
            or usable(self.room.active_speaker)
            # the terminal itself speaking: keep showing whom it saw
            or (usable(current.id) if current is not None else None)
            or next(
                (s for s in sources.values() if s.id != self.participant_id and s.has["video"]),
                None,
            )
        )

    def _retarget(self) -> None:
        target = self._choose()
        if target is not self._track.source:
            self._track.assign(target)  # asks the new source for a keyframe
            log.info("sip leg shows", participant=self.participant_id,
                     source=target.id if target else None)  # fmt: skip
        elif self._track.starved:
            self._track.request_keyframe()  # rate-limited per source

    async def _retarget_loop(self) -> None:
        while True:
            self._retarget()
            await asyncio.sleep(RETARGET_INTERVAL)

    async def _video_out(self, host: str, port: int) -> None:
        transport = self._rtp["video"]
        packetizer = self._packetizer
        assert packetizer is not None
        address = (host, port)
        while True:
            packet = await self._track.recv()
            timestamp = (self._video_ts_base + int(packet.pts or 0)) % TIMESTAMP_MODULO
            for datagram in packetizer.packets(bytes(packet), timestamp):
                transport.sendto(datagram, address)
            self.counters.video_frames_out += 1

    # -- room -> terminal: audio --------------------------------------------------------

    async def _audio_out(self, host: str, port: int, codec: str) -> None:
        loop = asyncio.get_running_loop()
        transport = self._rtp["audio"]
        media = self._media
        assert media is not None
        address = (host, port)
        step = G711_FRAME if codec in ("PCMU", "PCMA") else OPUS_FRAME
        due = loop.time()
        while True:
            due += TICK
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -MAX_LATE:
                due = loop.time()  # the loop stalled: resynchronise, don't burst
            drained = self._drain_mix()
            offload = self._offload
            if offload is None:
                offload = len(drained) > OFFLOAD_ABOVE
            if offload:
                tick = await loop.run_in_executor(
                    self.room._executor, self._mix_tick, drained, codec
                )
            else:
                tick = self._mix_tick(drained, codec)
            self.counters.audio_frames_decoded += tick.decoded
            self.counters.audio_frames_encoded += tick.encoded
            if tick.payload:
                packet = RtpPacket(self._audio_marker, media.audio_payload_type,
                                   self._audio_sequence, self._audio_ts, self._audio_ssrc,
                                   tick.payload)  # fmt: skip
                transport.sendto(encode_rtp(packet), address)
                self._audio_marker = False
                self._audio_sequence = (self._audio_sequence + 1) % SEQUENCE_MODULO
            self._audio_ts = (self._audio_ts + step) % TIMESTAMP_MODULO

    def _drain_mix(self) -> list[tuple[_MixInput, list[MediaPacket]]]:
        """Follow the room's sources (every other source with audio) and take what each
        has queued; runs on the loop (viewers are not thread-safe)."""
        wanted = {
            s.id: s
            for s in self.room.sources.values()
            if s.id != self.participant_id and s.has["audio"]
        }
        for source_id, entry in list(self._mix.items()):
            if wanted.get(source_id) is not entry.source or entry.viewer.closed:
                entry.relay.detach(entry.viewer)
                del self._mix[source_id]
        for source_id, source in wanted.items():
            if source_id not in self._mix:
                relay = source.output("audio")
                self._mix[source_id] = _MixInput(source, relay, relay.attach(), _opus_decoder())
        return [
            (entry, [p for p in entry.viewer.drain() if p is not None])
            for entry in self._mix.values()
        ]

    def _mix_tick(self, drained: list[tuple[_MixInput, list[MediaPacket]]], codec: str) -> _Tick:
        """Decode what arrived, mix 20 ms of every input (silence where one has nothing),
        encode for the terminal. Touches only PyAV/numpy state of this leg: executor-safe."""
        total = np.zeros(OPUS_FRAME, dtype=np.int32)
        decoded = 0
        for entry, packets in drained:
            pieces = [entry.buffer]
            for item in packets:
                try:
                    frames = entry.decoder.decode(av.Packet(item.data))
                except av.FFmpegError:
                    continue
                decoded += 1
                pieces.extend(_mono(frame) for frame in frames)
            buffer = np.concatenate(pieces) if len(pieces) > 1 else entry.buffer
            if len(buffer) > MIX_MAX_BUFFER:
                buffer = buffer[-MIX_PRIME:]  # far behind: keep the newest 40 ms
            if not entry.primed and len(buffer) >= MIX_PRIME:
                entry.primed = True
            if entry.primed:
                take = buffer[:OPUS_FRAME]
                total[: len(take)] += take
                buffer = buffer[OPUS_FRAME:]
                entry.primed = len(buffer) > 0
            entry.buffer = buffer
        mixed = np.clip(total, -32768, 32767).astype(np.int16)
        if codec == "OPUS":
            if self._down_encoder is None:
                self._down_encoder = _opus_encoder("mono")
            frame = av.AudioFrame.from_ndarray(mixed.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = OPUS_RATE
            payload = b"".join(bytes(p) for p in self._down_encoder.encode(frame))
            return _Tick(payload, decoded, 1)
        if self._downsampler is None:
            self._downsampler = av.AudioResampler(format="s16", layout="mono", rate=G711_RATE)
        frame = av.AudioFrame.from_ndarray(mixed.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OPUS_RATE
        out = [self._down_buffer]
        out.extend(
            f.to_ndarray().reshape(-1).astype(np.int16) for f in self._downsampler.resample(frame)
        )
        pcm = np.concatenate(out)
        if len(pcm) < G711_FRAME:
            pcm = np.concatenate([pcm, np.zeros(G711_FRAME - len(pcm), dtype=np.int16)])
        self._down_buffer = pcm[G711_FRAME:][-4 * G711_FRAME :]
        chunk = pcm[:G711_FRAME].astype("<i2").tobytes()
        payload = (ulaw_encode if codec == "PCMU" else alaw_encode)(chunk)
        return _Tick(payload, decoded, 1)

    # -- tasks --------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name} {self.participant_id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("sip leg task failed", participant=self.participant_id, task=task.get_name(),
                      exc_info=(type(exc), exc, exc.__traceback__))  # fmt: skip
