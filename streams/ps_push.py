"""A camera's shared stream sent on as MPEG-PS over RTP (GB/T 28181 live media towards an
upper platform): the access units a relay viewer gets are remuxed into PS packs (no
decoding, no encoding) and packetised with the SSRC the upper platform asked for, over UDP,
TCP to the upper (active) or TCP from the upper (passive), RFC 4571 framed on TCP.

A sender that falls behind (a slow TCP peer) is skipped forward by its bounded relay queue
to the next keyframe, like any viewer: the camera and its other viewers never wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction

import structlog

from protocols.gb28181.ps_mux import PsMuxer, PsRtpPacketizer
from protocols.gb28181.rtp import frame_rfc4571
from streams.ps_pull import PortPool
from streams.relay import Viewer
from streams.source import MediaPacket, StreamInfo

log = structlog.get_logger(__name__)

PS_CLOCK = 90000
PS_PAYLOAD_TYPE = 96
MAX_RTP_PAYLOAD = 1400
TCP_WRITE_LIMIT = 2 * 1024 * 1024
"""Bytes queued on a TCP media connection beyond which we wait for it to drain."""
TRANSPORTS = ("udp", "tcp_active", "tcp_passive")


@dataclass(slots=True)
class PushCounters:
    """What every PS sender of the process did (/metrics, tests, benches)."""

    streams_open: int = 0
    streams_total: int = 0
    frames_sent: int = 0
    packets_sent: int = 0
    bytes_sent: int = 0


class PushError(Exception):
    """A media connection could not be set up."""


class _Sink(asyncio.DatagramProtocol):
    """Our UDP media socket: nothing is expected back (RTCP is ignored)."""

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        del data, addr


class PsPush:
    """One cascaded stream: set up with one of ``open_udp``/``listen_tcp``/``connect_tcp``
    (each returns our media port), then ``run()`` until the viewer ends or ``stop()``."""

    def __init__(
        self,
        viewer: Viewer,
        info: StreamInfo,
        ssrc: int,
        counters: PushCounters,
        ports: PortPool,
        bind_host: str,
        *,
        payload_type: int = PS_PAYLOAD_TYPE,
        max_payload: int = MAX_RTP_PAYLOAD,
    ) -> None:
        codec = "h265" if info.codec in ("hevc", "h265") else info.codec
        self.viewer = viewer
        self.counters = counters
        self._muxer = PsMuxer(codec)
        self._rtp = PsRtpPacketizer(ssrc, payload_type, max_payload)
        self._ports = ports
        self._bind_host = bind_host
        self._port: int | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._remote: tuple[str, int] | None = None
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._stopped = asyncio.Event()
        self._first_pts: int | None = None

    # -- set-up --------------------------------------------------------------------------

    async def open_udp(self, host: str, port: int) -> int:
        """Send datagrams to host:port from a port of the pool."""
        loop = asyncio.get_running_loop()

        async def bind(port_: int) -> None:
            self._udp, _ = await loop.create_datagram_endpoint(
                _Sink, local_addr=(self._bind_host, port_)
            )

        local = await self._take_port(bind)
        self._remote = (host, port)
        self._connected.set()
        return local

    async def listen_tcp(self) -> int:
        """Wait for the upper platform to connect (TCP passive on our side)."""

        async def bind(port_: int) -> None:
            self._server = await asyncio.start_server(
                self._accepted, self._bind_host, port_, reuse_address=True
            )

        return await self._take_port(bind)

    async def connect_tcp(self, host: str, port: int, timeout: float) -> int:
        """Connect to the upper platform's listening port (TCP active on our side)."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as err:
            raise PushError(f"cannot connect to {host}:{port}: {err}") from err
        self._use(writer)
        return int(writer.get_extra_info("sockname")[1])

    async def _take_port(self, bind: Callable[[int], Awaitable[None]]) -> int:
        for port in self._ports.candidates():
            try:
                await bind(port)
            except OSError:
                continue
            self._ports.take(port)
            self._port = port
            return port
        raise PushError("no free media port in the configured range")

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            writer.close()  # one connection per stream
            return
        self._use(writer)
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while await reader.read(4096):  # RTCP or nothing: read until it closes
                pass
        self._stopped.set()

    def _use(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        transport = writer.transport
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=TCP_WRITE_LIMIT)
        self._connected.set()

    # -- sending -------------------------------------------------------------------------

    async def wait_connected(self, timeout: float) -> bool:
        """Whether the media connection is up (TCP passive: the peer connected) in time."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> str:
        """Send until the stream ends: why ("ended", "stopped", "connection_lost")."""
        self.counters.streams_open += 1
        self.counters.streams_total += 1
        stop = asyncio.ensure_future(self._stopped.wait())
        try:
            while True:
                get = asyncio.ensure_future(self.viewer.get())
                done, _ = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    get.cancel()
                    return "stopped"
                packet = get.result()
                if packet is None:
                    return "ended"
                if not await self._send(packet):
                    return "connection_lost"
        finally:
            stop.cancel()
            self.counters.streams_open -= 1

    async def _send(self, packet: MediaPacket) -> bool:
        timestamp = _ticks(packet.pts, packet.time_base)
        if self._first_pts is None:
            self._first_pts = timestamp
        pts = (timestamp - self._first_pts) % 2**33
        pack = self._muxer.mux(packet.data, pts, packet.keyframe)
        rtp = self._rtp.packets(pack, pts % 2**32)
        counters = self.counters
        counters.frames_sent += 1
        counters.packets_sent += len(rtp)
        if self._udp is not None and self._remote is not None:
            for datagram in rtp:
                self._udp.sendto(datagram, self._remote)
                counters.bytes_sent += len(datagram)
            return True
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        data = b"".join(frame_rfc4571(p) for p in rtp)
        writer.write(data)
        counters.bytes_sent += len(data)
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    def stop(self) -> None:
        """End ``run()`` (BYE, shutdown)."""
        self._stopped.set()

    def close(self) -> None:
        """Close sockets and give the port back. Safe to call twice."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._port is not None:
            self._ports.release(self._port)
            self._port = None


def _ticks(pts: int, time_base: Fraction) -> int:
    if time_base == Fraction(1, PS_CLOCK):
        return pts
    return int(pts * time_base * PS_CLOCK)
