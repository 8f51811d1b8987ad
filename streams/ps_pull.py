"""GB/T 28181 live media: one channel's MPEG-PS over RTP (UDP, or TCP with RFC 4571 framing,
the device connecting to us or we to it), checked for source and SSRC, demuxed to H.264/H.265
access units without decoding and handed to the camera's shared fan-out like an RTSP pull.

The SIP side (INVITE, BYE) belongs to the adapter; this module reaches it only through the
``PsSignalling`` protocol, so the media plane knows nothing of SIP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Protocol

import structlog

from protocols.gb28181.ps import AccessUnit, PsDemuxer, PsError
from protocols.gb28181.rtp import Rfc4571Framer, RtpError, RtpPacket, RtpReorderer, parse_rtp
from streams.h264 import (
    START_CODE,
    has_sps,
    parameter_sets,
    profile_level_id,
    split_annexb,
    sps_dimensions,
)
from streams.source import (
    MediaPacket,
    SourceHooks,
    StatusLatch,
    StreamInfo,
    TimestampCleaner,
    reconnect_forever,
)

log = structlog.get_logger(__name__)

TIME_BASE = Fraction(1, 90000)
CODEC_NAMES = {"h264": "h264", "h265": "hevc"}
"""PS stream codec → the name PyAV (and StreamInfo) uses."""
H265_PARAMETER_SETS = frozenset({32, 33, 34})
READ_CHUNK = 65536
WATCH_INTERVAL = 0.5
"""Seconds between two checks of a running session for silence."""
TRANSPORTS = ("tcp_passive", "tcp_active", "udp")
DEFAULT_FRAME_STEP = 3600
"""90 kHz ticks of one frame at 25 fps (the usual camera rate), until the stream shows its own."""
MAX_FRAME_STEP = 90000


class SignallingError(Exception):
    """The device refused or did not answer the INVITE (the message says why)."""


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """What the hub offers a device: where to send which stream."""

    transport: str  # one of TRANSPORTS
    media_ip: str
    media_port: int
    ssrc: str


@dataclass(frozen=True, slots=True)
class MediaCall:
    """The device's answer: its media address (TCP active: where we connect) and SSRC."""

    call_id: str
    ssrc: str
    peer_host: str
    peer_port: int | None


class PsSignalling(Protocol):
    """The SIP side of a GB/T 28181 pull (implemented by adapters/gb28181)."""

    def allocate_ssrc(self) -> str:
        """A live SSRC not in use."""

    def release_ssrc(self, ssrc: str) -> None:
        """The SSRC is free again."""

    async def invite(self, url: str, offer: MediaOffer) -> MediaCall:
        """INVITE the channel of ``url``; raises SignallingError."""

    def hang_up(self, call: MediaCall) -> None:
        """Send BYE (in the background: it must not block a stopping pull)."""


@dataclass(frozen=True, slots=True)
class PsPullConfig:
    """How GB/T 28181 channels are pulled."""

    media_ip: str
    bind_host: str = "0.0.0.0"
    transport: str = "tcp_passive"
    port_min: int = 30000
    port_max: int = 30499
    invite_timeout: float = 10.0
    media_timeout: float = 10.0
    read_timeout: float = 5.0
    reconnect_min_delay: float = 0.5
    reconnect_max_delay: float = 30.0
    stable_after: float = 30.0
    reorder_window: int = 64


@dataclass(slots=True)
class PsCounters:
    """What GB/T 28181 media did (shared by all pulls; /metrics reads them)."""

    sessions: int = 0
    packets: int = 0
    bytes: int = 0
    access_units: int = 0
    malformed: int = 0
    ssrc_mismatches: int = 0
    wrong_source: int = 0
    lost: int = 0
    media_timeouts: int = 0
    dropped_timestamps: int = 0
    by_codec: dict[str, int] = field(default_factory=dict)


class PortPool:
    """Media ports of a configured range, one per live session."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self._used: set[int] = set()
        self._next = low

    def candidates(self) -> list[int]:
        """Free ports, starting after the last one handed out (a port is not reused at once:
        late packets of the previous session must not land in the next one)."""
        span = range(self._next, self.high + 1), range(self.low, self._next)
        return [p for part in span for p in part if p not in self._used]

    def take(self, port: int) -> None:
        """Mark ``port`` in use."""
        self._used.add(port)
        self._next = port + 1 if port < self.high else self.low

    def release(self, port: int) -> None:
        """``port`` is free again."""
        self._used.discard(port)


class _Pipeline:
    """RTP packets of one session → access units → MediaPackets on the camera's timeline."""

    def __init__(self, pull: PsRtpPull, ssrc: int) -> None:
        self.pull = pull
        self.ssrc = ssrc
        self.reorder = RtpReorderer(pull.config.reorder_window)
        self.demux = PsDemuxer()
        self.first_packet = asyncio.Event()
        self.last_packet = 0.0
        self.peer_host: str | None = None
        self.info: StreamInfo | None = None
        self.error = ""
        self.last_pts = 0
        self.frame_step = DEFAULT_FRAME_STEP

    def datagram(self, data: bytes, reorder: bool) -> None:
        counters = self.pull.counters
        try:
            packet = parse_rtp(data)
        except RtpError:
            counters.malformed += 1
            return
        if packet.ssrc != self.ssrc:
            counters.ssrc_mismatches += 1
            return
        counters.packets += 1
        counters.bytes += len(data)
        self.last_packet = time.monotonic()
        self.first_packet.set()
        packets: list[RtpPacket] = [packet]
        if reorder:
            lost = self.reorder.lost
            packets = self.reorder.push(packet)
            counters.lost += self.reorder.lost - lost
        for each in packets:
            try:
                units = self.demux.feed(each.payload)
            except PsError:
                counters.malformed += 1
                continue
            for unit in units:
                self.pull._deliver(self, unit)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, pipeline: _Pipeline) -> None:
        self.pipeline = pipeline

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        expected = self.pipeline.peer_host
        if expected is not None and addr[0] != expected:
            self.pipeline.pull.counters.wrong_source += 1
            return
        self.pipeline.datagram(data, reorder=True)


class PsRtpPull:
    """Pulls one GB/T 28181 channel until stopped: INVITE, receive, BYE; on silence or a
    refused INVITE it reports the camera offline and tries again with capped backoff."""

    def __init__(
        self,
        url: str,
        name: str,
        hooks: SourceHooks,
        config: PsPullConfig,
        signalling: PsSignalling,
        ports: PortPool,
        counters: PsCounters,
    ) -> None:
        self.url = url
        self.config = config
        self.counters = counters
        self._hooks = hooks
        self._signalling = signalling
        self._ports = ports
        self._stop = asyncio.Event()
        self._cleaner = TimestampCleaner()
        self._status = StatusLatch(hooks.on_status, name)
        self._seen_keyframe = False
        self._readers: set[asyncio.Task[None]] = set()
        self._log = log.bind(camera_id=name)

    @property
    def online(self) -> bool | None:
        """None until the first session reported, then whether media flows."""
        return self._status.online

    def stop(self) -> None:
        """End the pull (the current call is hung up)."""
        self._stop.set()

    async def join(self, timeout: float) -> bool:
        """No threads: the pull is over when its task is."""
        return True

    async def run(self) -> None:
        """Pull, re-inviting with backoff, until ``stop()``."""
        await reconnect_forever(
            self._session, self._stop.is_set, self._status, self.config, self._pause
        )

    async def _pause(self, seconds: float) -> None:
        """Wait between sessions, cut short by ``stop()``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _session(self) -> str:
        config = self.config
        ssrc = self._signalling.allocate_ssrc()
        pipeline = _Pipeline(self, int(ssrc))
        closers: list[asyncio.BaseTransport | asyncio.Server] = []
        call: MediaCall | None = None
        port: int | None = None
        self._cleaner.new_session()
        self._seen_keyframe = False
        self.counters.sessions += 1
        try:
            if config.transport != "tcp_active":
                port = await self._listen(pipeline, closers)
                if port is None:
                    return f"no free media port in {config.port_min}–{config.port_max}"
            offer = MediaOffer(config.transport, config.media_ip, port or 0, ssrc)
            try:
                call = await asyncio.wait_for(
                    self._signalling.invite(self.url, offer), config.invite_timeout
                )
            except TimeoutError:
                return f"the device did not answer the INVITE in {config.invite_timeout:g} s"
            except SignallingError as err:
                return f"INVITE refused: {err}"
            if call.ssrc != ssrc:
                # The standard lets the device's answer (y=) decide the SSRC it sends.
                self._log.info("device answered another SSRC", offered=ssrc, answered=call.ssrc)
                if call.ssrc.isdigit():
                    pipeline.ssrc = int(call.ssrc)
            pipeline.peer_host = call.peer_host or None
            if config.transport == "tcp_active":
                reason = await self._connect(pipeline, call, closers)
                if reason:
                    return reason
            return await self._receive(pipeline, call)
        finally:
            if call is not None:
                self._signalling.hang_up(call)
            for closer in closers:
                closer.close()
            for task in list(self._readers):
                task.cancel()
            if port is not None:
                self._ports.release(port)
            self._signalling.release_ssrc(ssrc)

    async def _listen(
        self, pipeline: _Pipeline, closers: list[asyncio.BaseTransport | asyncio.Server]
    ) -> int | None:
        loop = asyncio.get_running_loop()
        for port in self._ports.candidates():
            try:
                if self.config.transport == "udp":
                    transport, _ = await loop.create_datagram_endpoint(
                        lambda: _Datagrams(pipeline), local_addr=(self.config.bind_host, port)
                    )
                    closers.append(transport)
                else:
                    server = await asyncio.start_server(
                        lambda r, w: self._accepted(pipeline, r, w),
                        self.config.bind_host,
                        port,
                        reuse_address=True,
                    )
                    closers.append(server)
            except OSError:
                continue  # in use by something else: the next one
            self._ports.take(port)
            return port
        return None

    async def _accepted(
        self, pipeline: _Pipeline, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if peer else None
        if pipeline.peer_host is not None and host != pipeline.peer_host:
            self.counters.wrong_source += 1
            writer.close()
            return
        await self._read_stream(pipeline, reader, writer)

    async def _connect(
        self,
        pipeline: _Pipeline,
        call: MediaCall,
        closers: list[asyncio.BaseTransport | asyncio.Server],
    ) -> str:
        if not call.peer_port:
            return "the device's answer gives no media port to connect to (TCP active)"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(call.peer_host, call.peer_port), self.config.media_timeout
            )
        except (OSError, TimeoutError) as err:
            return f"could not connect to the device's media port {call.peer_host}:" \
                f"{call.peer_port}: {err}"  # fmt: skip
        closers.append(writer.transport)
        reader_task = asyncio.get_running_loop().create_task(
            self._read_stream(pipeline, reader, writer), name="gb28181 media (active)"
        )
        self._readers.add(reader_task)
        reader_task.add_done_callback(self._readers.discard)
        return ""

    async def _read_stream(
        self, pipeline: _Pipeline, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        framer = Rfc4571Framer()
        try:
            while not self._stop.is_set():
                data = await reader.read(READ_CHUNK)
                if not data:
                    return
                try:
                    frames = framer.feed(data)
                except RtpError:
                    self.counters.malformed += 1
                    pipeline.error = "the device's TCP media stream is not RFC 4571 framed RTP"
                    return
                for frame in frames:
                    pipeline.datagram(frame, reorder=False)
        except (OSError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def _receive(self, pipeline: _Pipeline, call: MediaCall) -> str:
        config = self.config
        try:
            await asyncio.wait_for(pipeline.first_packet.wait(), config.media_timeout)
        except TimeoutError:
            if self._stop.is_set():
                return "stopped"
            self.counters.media_timeouts += 1
            where = f"{config.media_ip} port {config.port_min}–{config.port_max}"
            how = {
                "tcp_passive": f"the device must open a TCP connection to {where}",
                "udp": f"the device must send UDP to {where} from {call.peer_host}",
                "tcp_active": f"the hub connected to {call.peer_host}:{call.peer_port}",
            }[config.transport]
            detail = pipeline.error or f"{how}; check gb28181.media_ip, firewalls and NAT"
            return (
                f"收流超时: no media within {config.media_timeout:g} s of the device accepting"
                f" the INVITE (SSRC {call.ssrc}); {detail}"
            )
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                async with asyncio.timeout(WATCH_INTERVAL):
                    await self._stop.wait()
            if time.monotonic() - pipeline.last_packet > config.read_timeout:
                return pipeline.error or f"no media for {config.read_timeout:g} s"
        return "stopped"

    def _deliver(self, pipeline: _Pipeline, unit: AccessUnit) -> None:
        if unit.kind != "video" or unit.codec not in CODEC_NAMES:
            return  # video only, like RTSP pulls (audio of cameras is not relayed)
        self.counters.access_units += 1
        self.counters.by_codec[unit.codec] = self.counters.by_codec.get(unit.codec, 0) + 1
        if pipeline.info is None:
            if not unit.keyframe:
                return  # nothing decodes before the first keyframe
            pipeline.info = _stream_info(unit)
            self._hooks.on_info(pipeline.info)
            self._status.set(True, "")
        if not self._seen_keyframe and not unit.keyframe:
            return
        pts, dts = unit.pts, unit.dts
        if pts is None:  # a frame that shares its PES with the previous one carries no time
            pts = dts = pipeline.last_pts + pipeline.frame_step if pipeline.last_pts else None
        elif pipeline.last_pts and 0 < pts - pipeline.last_pts <= MAX_FRAME_STEP:
            pipeline.frame_step = pts - pipeline.last_pts
        if pts is not None:
            pipeline.last_pts = pts
        psets = pipeline.info.parameter_sets
        if unit.keyframe and unit.codec == "h264" and psets and not has_sps(unit.data):
            unit = replace(unit, data=psets + unit.data)  # aiortc never adds SPS/PPS itself
        times = self._cleaner.clean(pts, dts)
        if times is None:
            self.counters.dropped_timestamps += 1
            return
        self._seen_keyframe = True
        self._hooks.on_packet(MediaPacket(unit.data, times[0], times[1], unit.keyframe, TIME_BASE))


def _stream_info(unit: AccessUnit) -> StreamInfo:
    """What viewers need to know, from the first keyframe's parameter sets."""
    if unit.codec == "h264":
        psets = parameter_sets(unit.data)
        size = sps_dimensions(psets) or (0, 0)
        return StreamInfo("h264", size[0], size[1], psets, profile_level_id(psets), TIME_BASE)
    units = split_annexb(unit.data)
    psets = b"".join(START_CODE + u for u in units if (u[0] >> 1) & 0x3F in H265_PARAMETER_SETS)
    return StreamInfo("hevc", 0, 0, psets, None, TIME_BASE)


def outward_address() -> str:
    """This host's address on its default route (no packet is sent), for SDP when bound to
    every interface; 127.0.0.1 when there is no route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
