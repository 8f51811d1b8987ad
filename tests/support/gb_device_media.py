"""Media side of the GB28181 device stand-in: SDP offers/answers and PS-over-RTP senders.

Independent of the hub's own GB28181 code on purpose, so bugs are not symmetric.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.support.gb_clip import PsFrame

RTP_VERSION = 2
RTP_PAYLOAD_TYPE = 96
RTP_HEADER = struct.Struct("!BBHII")
MTU_PAYLOAD = 1400
RFC4571_LENGTH = struct.Struct("!H")
SEQ_MODULO = 1 << 16
TS_MODULO = 1 << 32
PS_CLOCK_HZ = 90_000
CONNECT_TIMEOUT = 5.0
ACCEPT_TIMEOUT = 10.0
MEDIA_MODES = ("normal", "silent", "wrong_ssrc", "garbage")
DISCARD_PORT = 9  # the port an active TCP side announces (RFC 4145)


@dataclass
class InviteInfo:
    """What the device saw in one INVITE from the hub."""

    call_id: str
    ssrc: str
    transport: str  # "udp" | "tcp"
    setup: str | None  # "active" | "passive" | None
    media_host: str
    media_port: int
    sdp: str
    raw: str


def parse_offer(call_id: str, sdp: str, raw: str) -> InviteInfo:
    """Read the fields the device acts on from the hub's SDP offer (tolerant, line based)."""
    host, port, proto, setup, ssrc = "", 0, "", None, ""
    for line in sdp.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if line.startswith("c=") and not host:
            host = line.split()[-1]
        elif line.startswith("m=video"):
            parts = line[2:].split()
            port, proto = int(parts[1]), parts[2]
        elif line.startswith("a=setup:"):
            setup = line.split(":", 1)[1].strip().lower()
        elif line.startswith("y="):
            ssrc = line[2:].strip()
    transport = "tcp" if "TCP" in proto.upper() else "udp"
    return InviteInfo(call_id, ssrc, transport, setup, host, port, sdp, raw)


def build_answer(
    device_id: str, host: str, port: int, invite: InviteInfo, setup: str | None
) -> str:
    """The device's SDP answer: sendonly PS/90000, same y= as the offer."""
    proto = "TCP/RTP/AVP" if invite.transport == "tcp" else "RTP/AVP"
    lines = [
        "v=0",
        f"o={device_id} 0 0 IN IP4 {host}",
        "s=Play",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=video {port} {proto} {RTP_PAYLOAD_TYPE}",
        "a=sendonly",
        f"a=rtpmap:{RTP_PAYLOAD_TYPE} PS/90000",
    ]
    if setup:
        lines += [f"a=setup:{setup}", "a=connection:new"]
    lines += [f"y={invite.ssrc}", "f="]
    return "\r\n".join(lines) + "\r\n"


def rtp_packets(data: bytes, seq: int, timestamp: int, ssrc: int) -> list[bytes]:
    """Cut one PS frame into RTP packets (PT 96), marker on the last one."""
    chunks = [data[i : i + MTU_PAYLOAD] for i in range(0, len(data), MTU_PAYLOAD)] or [b""]
    packets = []
    for index, chunk in enumerate(chunks):
        marker = 0x80 if index == len(chunks) - 1 else 0
        header = RTP_HEADER.pack(
            RTP_VERSION << 6,
            marker | RTP_PAYLOAD_TYPE,
            (seq + index) % SEQ_MODULO,
            timestamp % TS_MODULO,
            ssrc & 0xFFFFFFFF,
        )
        packets.append(header + chunk)
    return packets


Sink = Callable[[bytes], Awaitable[None]]


class MediaSession:
    """One call's media: paces PS frames in real time as RTP into a sink until stopped."""

    def __init__(self, frames: list[PsFrame], fps: int, ssrc: int, mode: str) -> None:
        if mode not in MEDIA_MODES:
            raise ValueError(f"media_mode must be one of {MEDIA_MODES}")
        self.frames = frames
        self.fps = fps
        self.ssrc = ssrc + 1 if mode == "wrong_ssrc" else ssrc
        self.mode = mode
        self.packets_sent = 0
        self.first_packet = asyncio.Event()
        self._closers: list[Callable[[], Awaitable[None] | None]] = []

    def on_close(self, closer: Callable[[], Awaitable[None] | None]) -> None:
        """Register something to close when the session ends (sockets, servers)."""
        self._closers.append(closer)

    async def run(self, sink: Sink) -> None:
        """Send frames forever (looping, timestamps continuing) until cancelled."""
        if self.mode == "silent" or not self.frames:
            await asyncio.Event().wait()
        loop = asyncio.get_running_loop()
        seq = random.randrange(SEQ_MODULO)
        base_ts = random.randrange(TS_MODULO)
        frame_ticks = PS_CLOCK_HZ // self.fps
        first_pts = self.frames[0].pts90k
        span = self.frames[-1].pts90k - first_pts + frame_ticks
        start = loop.time()
        index = 0
        while True:
            lap, position = divmod(index, len(self.frames))
            frame = self.frames[position]
            due = start + index / self.fps
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            timestamp = base_ts + lap * span + frame.pts90k - first_pts
            if self.mode == "garbage":
                packets = [os.urandom(len(p)) for p in rtp_packets(frame.data, 0, 0, 0)]
            else:
                packets = rtp_packets(frame.data, seq, timestamp, self.ssrc)
            for packet in packets:
                await sink(packet)
                self.packets_sent += 1
                self.first_packet.set()
            seq += len(packets)
            index += 1

    async def close(self) -> None:
        """Close what the session opened."""
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                result = closer()
                if result is not None:
                    await result
        self._closers.clear()


class _UdpSender(asyncio.DatagramProtocol):
    """A datagram endpoint that only sends (and ignores what comes back, e.g. RTCP)."""


async def udp_socket(local_host: str, port: int = 0) -> asyncio.DatagramTransport:
    """A bound UDP socket for sending RTP."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_UdpSender, local_addr=(local_host, port))
    return transport


def udp_sink(transport: asyncio.DatagramTransport, host: str, port: int) -> Sink:
    """Send each RTP packet as one datagram to host:port."""

    async def send(packet: bytes) -> None:
        transport.sendto(packet, (host, port))

    return send


def stream_sink(writer: asyncio.StreamWriter) -> Sink:
    """Send each RTP packet RFC 4571 framed (2-byte big-endian length) on a TCP stream."""

    async def send(packet: bytes) -> None:
        writer.write(RFC4571_LENGTH.pack(len(packet)) + packet)
        await writer.drain()

    return send


async def tcp_connect(host: str, port: int, local_host: str) -> asyncio.StreamWriter:
    """Connect to the hub's passive media port."""
    async with asyncio.timeout(CONNECT_TIMEOUT):
        _, writer = await asyncio.open_connection(host, port, local_addr=(local_host, 0))
    return writer


class TcpListener:
    """The device's passive media port (hub is active): accepts the hub's one connection."""

    def __init__(self) -> None:
        self.connected: asyncio.Future[asyncio.StreamWriter] | None = None
        self.server: asyncio.Server | None = None

    async def start(self, local_host: str) -> int:
        """Listen on an ephemeral port and return it."""
        self.connected = asyncio.get_running_loop().create_future()

        async def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.connected is not None and not self.connected.done():
                self.connected.set_result(writer)
            else:
                writer.close()

        self.server = await asyncio.start_server(on_connect, local_host, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def accept(self) -> asyncio.StreamWriter:
        """Wait for the hub to connect."""
        assert self.connected is not None
        async with asyncio.timeout(ACCEPT_TIMEOUT):
            return await self.connected

    async def close(self) -> None:
        """Stop listening and drop any connection."""
        if self.connected is not None and self.connected.done() and not self.connected.cancelled():
            self.connected.result().close()
        if self.server is not None:
            self.server.close()
