"""A GB/T 28181 UPPER platform stand-in over real sockets, for the hub's cascade tests.

The hub registers to it as a lower platform (digest-authenticated REGISTER, keepalives); the
stand-in queries the hub's catalog, opens live streams (INVITE, PS over RTP on UDP or TCP in
both setup directions), sends PTZ DeviceControl and collects the hub's alarms.

Like gb_device it must not import the hub's protocols/sip or protocols/gb28181, so that a
misreading is not made twice; it reuses gb_device's tolerant SIP parser and helpers instead.
Self-check (no hub needed): ``python -m tests.support.gb_upper``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import random
import re
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import av

from tests.support.gb_device import (
    REASONS,
    GbDevice,
    SipMessage,
    build_message,
    decode_text,
    digest_response,
    frame_stream,
    new_tag,
    parse_sip,
)
from tests.support.gb_device_media import DISCARD_PORT, InviteInfo, parse_offer

T1 = 0.5
T2 = 4.0
TRANSACTION_TIMEOUT = 32.0
WAIT_TIMEOUT = 10.0
MAX_MESSAGE = 65_536
RESPONSE_CACHE = 256
BIND_ATTEMPTS = 20
DEFAULT_EXPIRES = 3600
RTP_MIN_HEADER = 12
RTP_VERSION = 2
SEQ_MODULO = 1 << 16
SEQ_HALF = 1 << 15
USER_AGENT = "GridHub-GbUpper-StandIn/1.0"
CONTENT_TYPE = "Application/MANSCDP+xml"
REQUEST_LINE = re.compile(r"^[A-Za-z]+ \S+ SIP/2\.0$")
STATUS_LINE = re.compile(r"^SIP/2\.0 \d{3}\b")
TRANSPORTS = ("udp", "tcp_active", "tcp_passive")
GB_CHARSETS = {"gb2312", "gbk", "gb18030"}
EXTRA_REASONS = {404: "Not Found", 408: "Request Timeout", 486: "Busy Here",
                 488: "Not Acceptable Here", 500: "Server Internal Error",
                 503: "Service Unavailable"}  # fmt: skip


def _reason(status: int) -> str:
    return REASONS.get(status) or EXTRA_REASONS.get(status, "Unknown")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse_auth_params(value: str) -> dict[str, str]:
    """The name=value pairs of a Digest header (quoted values may hold commas)."""
    pairs = re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', value)
    return {name.lower(): quoted or bare for name, quoted, bare in pairs}


def parse_uri(value: str) -> tuple[str, str, int]:
    """(user, host, port) of a sip: URI inside a header value (port 5060 when absent)."""
    match = re.search(r"sips?:(?:([^@>;\s]+)@)?([^:;>\s]+)(?::(\d+))?", value)
    if match is None:
        return "", "", 0
    return match.group(1) or "", match.group(2), int(match.group(3) or 5060)


def header_tag(value: str) -> str:
    """The tag parameter of a From/To value ("" when absent)."""
    match = re.search(r";\s*tag=([^;>\s]+)", value, re.I)
    return match.group(1) if match else ""


def decode_manscdp(body: bytes) -> tuple[ET.Element | None, str, bool]:
    """Parse a MANSCDP body decoding it per its XML declaration.

    Returns (root or None, declared charset lower-cased ("" when undeclared), whether the bytes
    decoded cleanly in the declared charset). GB2312 is read as GB18030, its superset.
    """
    match = re.match(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']+)", body)
    charset = match.group(1).decode("ascii", errors="replace").lower() if match else ""
    codec = "gb18030" if charset in GB_CHARSETS else (charset or "utf-8")
    try:
        text, clean = body.decode(codec), True
    except (LookupError, UnicodeDecodeError):
        text, clean = decode_text(body), False
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text).strip()
    try:
        return ET.fromstring(text), charset, clean
    except ET.ParseError:
        return None, charset, clean


def element_fields(element: ET.Element) -> dict[str, str]:
    """Leaf children as tag → stripped text; nested leaves as "Parent.Child" too."""
    fields: dict[str, str] = {}
    for child in element:
        if len(child):
            for sub in child.iter():
                if sub is not child and not len(sub):
                    fields[f"{child.tag}.{sub.tag}"] = (sub.text or "").strip()
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


@dataclass
class ReceivedMessage:
    """One MANSCDP MESSAGE the hub sent (Response/Notify), parsed."""

    root: str  # "Response" | "Notify" | ...
    cmd_type: str
    sn: str
    device_id: str
    fields: dict[str, str]
    items: list[dict[str, str]]
    element: ET.Element
    charset: str
    charset_ok: bool
    request: SipMessage

    @property
    def sum_num(self) -> int:
        """SumNum as an int (-1 when absent or not a number)."""
        value = self.fields.get("SumNum", "")
        return int(value) if value.isdigit() else -1


@dataclass
class Registration:
    """One successful REGISTER (expires 0 = an unregister)."""

    username: str
    contact: str
    contact_host: str
    contact_port: int
    transport: str  # "udp" | "tcp" (what the REGISTER arrived on)
    source: tuple[str, int]
    expires: int
    at: float  # time.monotonic()
    request: SipMessage
    conn: _Conn | None = None


@dataclass
class RtpPacket:
    """One received RTP packet, header fields parsed."""

    version: int
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    ext_seq: int = 0


def parse_rtp(data: bytes) -> RtpPacket | None:
    """Parse an RTP packet (CSRCs, header extension and padding honoured); None if not RTP."""
    if len(data) < RTP_MIN_HEADER or data[0] >> 6 != RTP_VERSION:
        return None
    first, second = data[0], data[1]
    offset = RTP_MIN_HEADER + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data)
    if first & 0x20 and end > offset:  # padding
        end -= data[-1]
    if offset > end:
        return None
    return RtpPacket(
        version=first >> 6,
        payload_type=second & 0x7F,
        marker=bool(second & 0x80),
        seq=int.from_bytes(data[2:4], "big"),
        timestamp=int.from_bytes(data[4:8], "big"),
        ssrc=int.from_bytes(data[8:12], "big"),
        payload=bytes(data[offset:end]),
    )


class InviteRefused(Exception):
    """The hub answered an INVITE with a non-2xx final response."""

    def __init__(self, status: int, response: SipMessage) -> None:
        super().__init__(f"INVITE refused: {response.first_line}")
        self.status = status
        self.response = response


class CatalogIncomplete(TimeoutError):
    """query_catalog timed out; carries what had arrived."""

    def __init__(self, sn: str, messages: list[ReceivedMessage], status: int) -> None:
        items = sum(len(m.items) for m in messages)
        sums = [m.sum_num for m in messages]
        super().__init__(
            f"catalog SN {sn}: query status {status}, {len(messages)} responses, "
            f"{items} items, SumNum {sums}"
        )
        self.sn, self.messages, self.status = sn, messages, status


class _Conn:
    """One TCP signalling connection (accepted from the hub)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1]))
        self.closed = False


@dataclass
class _Route:
    transport: str  # "udp" | "tcp"
    addr: tuple[str, int]
    conn: _Conn | None = None


@dataclass
class _Pending:
    future: asyncio.Future[SipMessage]
    provisional: bool = False


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, upper: UpperPlatform) -> None:
        self.upper = upper
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.upper._on_data(data, _Route("udp", (str(addr[0]), int(addr[1]))))


class _RtpUdp(asyncio.DatagramProtocol):
    def __init__(self, session: PlaySession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.session._on_rtp(data)


class PlaySession:
    """One live stream from the hub: its dialog and the RTP it receives."""

    def __init__(
        self, upper: UpperPlatform, channel_id: str, transport: str, ssrc: str, route: _Route
    ) -> None:
        self.upper, self.channel_id, self.transport = upper, channel_id, transport
        self.ssrc, self.route = ssrc, route
        self.call_id = f"{new_tag()}@{upper.host}"
        self.local_tag = new_tag()
        self.remote_tag = ""
        self.remote_target = ""
        self.cseq = random.randrange(1, 1000)
        self.offer = ""
        self.response: SipMessage | None = None
        self.answer: InviteInfo | None = None
        self.media_port = DISCARD_PORT
        self.packets: list[RtpPacket] = []
        self.ssrc_mismatches = 0
        self.payload_type_mismatches = 0
        self.bad_packets = 0
        self.closed_by_hub = False
        self.bye_status = 0
        self.errors: list[str] = []
        self._pulse = asyncio.Event()
        self._hub_bye = asyncio.Event()
        self._media_connected = asyncio.Event()
        self._closers: list[Callable[[], object]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_ext: int | None = None

    # media -----------------------------------------------------------------------------
    async def _open_media(self) -> None:
        loop = asyncio.get_running_loop()
        host = self.upper.host
        if self.transport == "udp":
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _RtpUdp(self), local_addr=(host, 0)
            )
            self.media_port = int(udp.get_extra_info("sockname")[1])
            self._closers.append(udp.close)
        elif self.transport == "tcp_active":  # the hub connects to us

            async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                if self._media_connected.is_set():
                    writer.close()
                    return
                self._media_connected.set()
                self._closers.append(writer.close)
                await self._read_rfc4571(reader)

            server = await asyncio.start_server(on_conn, host, 0)
            self.media_port = int(server.sockets[0].getsockname()[1])
            self._closers.append(server.close)

    async def _connect_media(self, timeout: float) -> None:
        """tcp_passive: connect to the port in the hub's answer."""
        assert self.answer is not None
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                self.answer.media_host, self.answer.media_port, local_addr=(self.upper.host, 0)
            )
        self._media_connected.set()
        self._closers.append(writer.close)
        task = asyncio.get_running_loop().create_task(self._read_rfc4571(reader))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_rfc4571(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                self._on_rtp(await reader.readexactly(length))

    def _on_rtp(self, data: bytes) -> None:
        packet = parse_rtp(data)
        if packet is None:
            self.bad_packets += 1
            return
        if packet.ssrc != _int(self.ssrc):  # y= is the SSRC in decimal
            self.ssrc_mismatches += 1
        if packet.payload_type != 96:
            self.payload_type_mismatches += 1
        if self._last_ext is None:
            packet.ext_seq = SEQ_MODULO + packet.seq
        else:
            delta = (packet.seq - self._last_ext) % SEQ_MODULO
            if delta >= SEQ_HALF:
                delta -= SEQ_MODULO
            packet.ext_seq = self._last_ext + delta
        if self._last_ext is None or packet.ext_seq > self._last_ext:
            self._last_ext = packet.ext_seq
        self.packets.append(packet)
        self._pulse.set()
        self._pulse = asyncio.Event()

    @property
    def media_connected(self) -> bool:
        """True once a TCP media connection exists (always False for UDP)."""
        return self._media_connected.is_set()

    async def wait_media_connected(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait for the TCP media connection (tcp_active: the hub's connect)."""
        async with asyncio.timeout(timeout):
            await self._media_connected.wait()

    async def wait_packets(self, n: int, timeout: float = WAIT_TIMEOUT) -> list[RtpPacket]:
        """Wait until at least n RTP packets arrived; returns them all."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.packets) < n:
                    await self._pulse.wait()
        except TimeoutError as err:
            raise TimeoutError(
                f"{self.channel_id}/{self.transport}: {len(self.packets)} of {n} RTP packets"
            ) from err
        return self.packets

    def ps_payload(self) -> bytes:
        """The PS payloads concatenated in sequence order (duplicates dropped)."""
        seen: dict[int, bytes] = {}
        for packet in self.packets:
            seen.setdefault(packet.ext_seq, packet.payload)
        return b"".join(seen[key] for key in sorted(seen))

    def decode(self) -> list[av.VideoFrame]:
        """Decode the received PS stream with PyAV (format "mpeg"); every video frame."""
        frames: list[av.VideoFrame] = []
        data = self.ps_payload()
        if not data:
            return frames
        with av.open(io.BytesIO(data), format="mpeg") as container:
            if not container.streams.video:
                return frames
            with contextlib.suppress(av.error.InvalidDataError):
                frames.extend(container.decode(video=0))
        return frames

    # dialog ----------------------------------------------------------------------------
    async def bye(self, timeout: float = WAIT_TIMEOUT) -> int:
        """Send BYE in the dialog and close the media; returns the status."""
        try:
            if not self.closed_by_hub:
                response = await self.upper._in_dialog(self, "BYE", timeout)
                self.bye_status = response.status
        finally:
            await self.close()
        return self.bye_status

    async def wait_closed_by_hub(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until the hub sends BYE."""
        async with asyncio.timeout(timeout):
            await self._hub_bye.wait()

    def _hub_hung_up(self) -> None:
        self.closed_by_hub = True
        self._hub_bye.set()

    async def close(self) -> None:
        """Close the media sockets (no signalling)."""
        self.upper._sessions.pop(self.call_id, None)
        for task in list(self._tasks):
            task.cancel()
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        self._closers.clear()


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


class UpperPlatform:
    """The governance network's GB28181 gateway as the hub's cascade peer (UDP + TCP)."""

    def __init__(
        self,
        *,
        upper_id: str = "34020000002000000099",
        domain: str = "3402000000",
        password: str = "12345678",
        hub_id: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        qop: str | None = "auth",
        realm: str | None = None,
    ) -> None:
        self.upper_id, self.domain, self.password = upper_id, domain, password
        self.hub_id, self.host, self.port = hub_id, host, port
        self.qop, self.realm = qop, realm or domain
        # knobs
        self.answering = True  # False: drop everything silently (the gateway vanished)
        self.keepalive_status = 200
        self.register_status: int | None = None  # force this final status for REGISTER
        # records
        self.register_attempts = 0
        self.challenges = 0
        self.rejections = 0
        self.auth_failures: list[str] = []
        self.registrations: list[Registration] = []  # every successful REGISTER
        self.registration: Registration | None = None  # current (None when unregistered)
        self.register_count = 0  # successful with Expires > 0
        self.unregister_count = 0
        self.keepalives: list[tuple[float, ReceivedMessage]] = []
        self.messages: list[ReceivedMessage] = []  # every non-keepalive MANSCDP received
        self.requests: list[SipMessage] = []  # every request received
        self.unmatched_responses: list[SipMessage] = []
        self.garbage: list[bytes] = []
        self.errors: list[str] = []
        self.tcp_disconnects = 0
        self.last_catalog_messages = 0
        self.last_catalog_responses: list[ReceivedMessage] = []
        self._nonces: set[str] = set()
        self._pulse = asyncio.Event()
        self._queues: dict[str, asyncio.Queue[ReceivedMessage]] = {}
        self._collectors: dict[str, asyncio.Queue[ReceivedMessage]] = {}
        self._pending: dict[str, _Pending] = {}
        self._unmatched: asyncio.Queue[SipMessage] = asyncio.Queue()
        self._answered: OrderedDict[str, tuple[_Route, bytes]] = OrderedDict()
        self._sessions: dict[str, PlaySession] = {}
        self._conns: set[_Conn] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._cseq = random.randrange(1, 1000)
        self._sn = random.randrange(1, 1000)
        self._ssrc_seq = 0

    # lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> UpperPlatform:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on UDP and TCP, same port (port 0: the system picks; kept for a restart)."""
        loop = asyncio.get_running_loop()
        for _ in range(BIND_ATTEMPTS if self.port == 0 else 1):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
            port = int(udp.get_extra_info("sockname")[1])
            try:
                self._server = await asyncio.start_server(self._on_tcp, self.host, port)
            except OSError:
                udp.close()
                if self.port:
                    raise
                continue
            self._udp, self.port = udp, port
            return
        raise OSError("no port free for both UDP and TCP")

    async def close(self) -> None:
        """Gateway down: close sockets and TCP connections, end streams, fail waiting requests."""
        for session in list(self._sessions.values()):
            await session.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for pending in self._pending.values():
            pending.future.cancel()
        self._pending.clear()
        if self._udp is not None:
            protocol = self._udp.get_protocol()
            self._udp.close()  # the socket itself closes on the next loop turn
            self._udp = None
            if isinstance(protocol, _UdpProtocol):
                await protocol.lost
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in list(self._conns):
            conn.closed = True
            conn.writer.close()
        self._conns.clear()
        self._notify()

    def go_silent(self) -> None:
        """Stop answering anything (sockets stay open): the gateway stops responding."""
        self.answering = False

    def resume(self) -> None:
        """Answer again after go_silent()."""
        self.answering = True

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _notify(self) -> None:
        self._pulse.set()
        self._pulse = asyncio.Event()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._pulse.wait()
        except TimeoutError as err:
            raise TimeoutError(f"upper platform: timed out waiting for {what}") from err

    # transport ------------------------------------------------------------------------
    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer)
        self._conns.add(conn)
        route = _Route("tcp", conn.peer, conn)
        buffer = bytearray()
        try:
            while chunk := await reader.read(MAX_MESSAGE):
                buffer += chunk
                while (message := frame_stream(buffer)) is not None:
                    self._on_data(message, route)
        except ConnectionError:
            pass
        finally:
            conn.closed = True
            self._conns.discard(conn)
            self.tcp_disconnects += 1
            writer.close()
            self._notify()

    def _send(self, route: _Route, data: bytes) -> None:
        if route.transport == "udp":
            if self._udp is None:
                raise ConnectionError("upper platform is closed")
            self._udp.sendto(data, route.addr)
        else:
            if route.conn is None or route.conn.closed or route.conn.writer.is_closing():
                raise ConnectionError(f"TCP connection to {route.addr} is gone")
            route.conn.writer.write(data)

    def _hub_route(self) -> _Route:
        reg = self.registration
        if reg is None:
            raise RuntimeError("the hub is not registered")
        if reg.transport == "tcp":
            return _Route("tcp", reg.source, reg.conn)
        return _Route("udp", (reg.contact_host, reg.contact_port))

    async def send_raw(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        """Send bytes as they are to the hub (bad-SIP tests).

        Over the registration's route (its TCP connection, or UDP to its contact), or as a UDP
        datagram to addr. Answers to it land in next_unmatched_response().
        """
        route = _Route("udp", addr) if addr is not None else self._hub_route()
        self._send(route, data)
        if route.conn is not None:
            await route.conn.writer.drain()

    async def next_unmatched_response(self, timeout: float = WAIT_TIMEOUT) -> SipMessage:
        """The next response that matched none of our transactions (e.g. to send_raw)."""
        async with asyncio.timeout(timeout):
            return await self._unmatched.get()

    def _on_data(self, data: bytes, route: _Route) -> None:
        if not self.answering:
            return
        try:
            message = parse_sip(data)
            ok = bool(
                REQUEST_LINE.match(message.first_line) or STATUS_LINE.match(message.first_line)
            )
        except (ValueError, IndexError):
            ok = False
        if not ok:
            self.garbage.append(data)
            return
        if message.is_request:
            self.requests.append(message)
            try:
                self._on_request(message, route)
            except Exception as err:  # a stand-in must keep answering; tests read errors
                self.errors.append(f"{message.method}: {err!r}")
        else:
            self._on_response(message, route)

    def _on_response(self, response: SipMessage, route: _Route) -> None:
        pending = self._pending.get(response.branch)
        if pending is None:
            # A retransmitted 2xx to an INVITE: ACK it again (RFC 3261 13.2.2.4).
            session = self._sessions.get(response.header("call-id"))
            if session is not None and response.method == "INVITE" and response.status < 300:
                with contextlib.suppress(ConnectionError):
                    self._send(route, self._ack(session))
            self.unmatched_responses.append(response)
            self._unmatched.put_nowait(response)
            return
        if response.status < 200:
            pending.provisional = True
        elif not pending.future.done():
            pending.future.set_result(response)

    # responding -----------------------------------------------------------------------
    def _respond(
        self, request: SipMessage, route: _Route, status: int,
        extra: Sequence[tuple[str, str]] = (), body: bytes = b"",
    ) -> None:  # fmt: skip
        to = request.header("to")
        if status > 100 and not header_tag(to):
            to += f";tag={new_tag()}"
        headers = [("Via", via) for via in request.all("via")]
        headers += [
            ("From", request.header("from")),
            ("To", to),
            ("Call-ID", request.header("call-id")),
            ("CSeq", request.header("cseq")),
            ("User-Agent", USER_AGENT),
            *extra,
        ]
        data = build_message(f"SIP/2.0 {status} {_reason(status)}", headers, body)
        self._send(route, data)
        if request.method != "ACK" and status >= 200:
            self._answered[request.branch + request.method] = (route, data)
            while len(self._answered) > RESPONSE_CACHE:
                self._answered.popitem(last=False)

    def _on_request(self, request: SipMessage, route: _Route) -> None:
        method = request.method
        cached = self._answered.get(request.branch + method)
        if cached is not None and method != "ACK":
            self._send(route, cached[1])  # a retransmission: the same answer again
            return
        if method == "REGISTER":
            self._on_register(request, route)
        elif method == "MESSAGE":
            self._on_message(request, route)
        elif method == "BYE":
            session = self._sessions.get(request.header("call-id"))
            self._respond(request, route, 200 if session else 481)
            if session is not None:
                session._hub_hung_up()
                self._spawn(session.close(), "gb-upper-hub-bye")
            self._notify()
        elif method in ("OPTIONS", "NOTIFY", "INFO"):
            self._respond(request, route, 200)
        elif method != "ACK":
            self._respond(request, route, 501)

    # registration ---------------------------------------------------------------------
    def _challenge(self, request: SipMessage, route: _Route, stale: bool = False) -> None:
        nonce = new_tag() + new_tag()
        self._nonces.add(nonce)
        value = f'Digest realm="{self.realm}", nonce="{nonce}"'
        if self.qop:
            value += f', qop="{self.qop}"'
        value += ", algorithm=MD5" + (", stale=true" if stale else "")
        self.challenges += 1
        self._respond(request, route, 401, [("WWW-Authenticate", value)])

    def _check_auth(self, request: SipMessage, auth: str) -> tuple[int, str]:
        """(0 ok | 401 stale/unknown nonce | 403 refused, reason)."""
        if not auth.lower().startswith("digest"):
            return 403, f"not Digest: {auth!r}"
        params = parse_auth_params(auth[6:])
        username, uri = params.get("username", ""), params.get("uri", "")
        if self.hub_id is not None and username != self.hub_id:
            return 403, f"username {username!r} != {self.hub_id!r}"
        if params.get("realm") != self.realm:
            return 403, f"realm {params.get('realm')!r} != {self.realm!r}"
        if params.get("algorithm", "MD5").upper() != "MD5":
            return 403, f"algorithm {params.get('algorithm')!r}"
        if params.get("nonce") not in self._nonces:
            return 401, f"nonce {params.get('nonce')!r} was not issued"
        if not uri:
            return 403, "no uri"
        ha1 = _md5(f"{username}:{self.realm}:{self.password}")
        ha2 = _md5(f"REGISTER:{uri}")
        qop = params.get("qop", "")
        if qop:
            if qop != "auth" or not params.get("nc") or not params.get("cnonce"):
                return 403, f"bad qop/nc/cnonce in {auth!r}"
            expected = _md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        elif self.qop:
            return 403, "qop=auth was offered but the answer has no qop"
        else:
            expected = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        if params.get("response", "").lower() != expected:
            return 403, "wrong digest response (password?)"
        return 0, ""

    def _on_register(self, request: SipMessage, route: _Route) -> None:
        self.register_attempts += 1
        if self.register_status is not None:
            self._respond(request, route, self.register_status)
            return
        auth = request.header("authorization")
        if not auth:
            self._challenge(request, route)
            return
        verdict, reason = self._check_auth(request, auth)
        if verdict:
            self.auth_failures.append(reason)
            if verdict == 401:
                self._challenge(request, route, stale=True)
            else:
                self.rejections += 1
                self._respond(request, route, 403)
            self._notify()
            return
        contact = request.header("contact")
        expires_text = request.header("expires")
        contact_expires = re.search(r";\s*expires=(\d+)", contact, re.I)
        if expires_text.strip().isdigit():
            expires = int(expires_text)
        elif contact_expires:
            expires = int(contact_expires.group(1))
        else:
            expires = DEFAULT_EXPIRES
        _user, host, port = parse_uri(contact)
        username = parse_auth_params(auth[6:]).get("username", "")
        reg = Registration(
            username, contact, host, port, route.transport, route.addr, expires,
            time.monotonic(), request, route.conn,
        )  # fmt: skip
        self.registrations.append(reg)
        if expires > 0:
            self.registration = reg
            self.register_count += 1
        else:
            self.registration = None
            self.unregister_count += 1
        now = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        extra = [("Expires", str(expires)), ("Date", now)]
        if contact and contact != "*":
            extra.insert(0, ("Contact", contact))
        self._respond(request, route, 200, extra)
        self._notify()

    @property
    def is_registered(self) -> bool:
        """True while a registration with Expires > 0 stands and has not expired."""
        reg = self.registration
        return reg is not None and time.monotonic() < reg.at + reg.expires

    async def wait_registered(self, timeout: float = WAIT_TIMEOUT) -> Registration:
        """Wait until the hub is registered (at once if it already is); the registration."""
        await self._wait_until(lambda: self.registration is not None, timeout, "a REGISTER")
        assert self.registration is not None
        return self.registration

    async def wait_register_count(self, n: int, timeout: float = WAIT_TIMEOUT) -> Registration:
        """Wait until n successful REGISTERs (Expires > 0) arrived in all; the last one."""
        await self._wait_until(lambda: self.register_count >= n, timeout, f"{n} REGISTERs")
        return next(r for r in reversed(self.registrations) if r.expires > 0)

    async def wait_unregistered(self, timeout: float = WAIT_TIMEOUT) -> Registration:
        """Wait until the hub has unregistered (Expires: 0) and not re-registered."""
        await self._wait_until(
            lambda: self.registration is None and self.unregister_count > 0,
            timeout,
            "an unregister (Expires: 0)",
        )
        return next(r for r in reversed(self.registrations) if r.expires == 0)

    # MESSAGEs from the hub --------------------------------------------------------------
    def _on_message(self, request: SipMessage, route: _Route) -> None:
        root, charset, clean = decode_manscdp(request.body)
        if root is None:
            self._respond(request, route, 400)
            return
        fields = element_fields(root)
        items = [element_fields(item) for item in root.iter("Item")]
        received = ReceivedMessage(
            root.tag, fields.get("CmdType", ""), fields.get("SN", ""), fields.get("DeviceID", ""),
            fields, items, root, charset, clean, request,
        )  # fmt: skip
        if root.tag == "Notify" and received.cmd_type == "Keepalive":
            self._respond(request, route, self.keepalive_status)
            self.keepalives.append((time.monotonic(), received))
            self._notify()
            return
        self._respond(request, route, 200)
        self.messages.append(received)
        collector = self._collectors.get(received.sn) if received.cmd_type == "Catalog" else None
        if collector is not None and root.tag == "Response":
            collector.put_nowait(received)
        else:
            self._queue(received.cmd_type).put_nowait(received)
        self._notify()

    def _queue(self, cmd_type: str) -> asyncio.Queue[ReceivedMessage]:
        return self._queues.setdefault(cmd_type, asyncio.Queue())

    @property
    def keepalive_count(self) -> int:
        """Keepalive MESSAGEs received so far."""
        return len(self.keepalives)

    async def wait_keepalives(self, n: int, timeout: float = WAIT_TIMEOUT) -> int:
        """Wait until n keepalives arrived in all; returns the count."""
        await self._wait_until(lambda: len(self.keepalives) >= n, timeout, f"{n} keepalives")
        return len(self.keepalives)

    async def next_message(self, cmd_type: str, timeout: float = WAIT_TIMEOUT) -> ReceivedMessage:
        """The next queued MESSAGE of a CmdType (Alarm, DeviceControl, Catalog, ...)."""
        try:
            async with asyncio.timeout(timeout):
                return await self._queue(cmd_type).get()
        except TimeoutError as err:
            raise TimeoutError(f"upper platform: no {cmd_type} MESSAGE came") from err

    # requests to the hub --------------------------------------------------------------
    def _via(self, route: _Route, branch: str) -> str:
        return f"SIP/2.0/{route.transport.upper()} {self.host}:{self.port};rport;branch={branch}"

    async def _transact(
        self, route: _Route, data: bytes, branch: str, timeout: float, invite: bool = False
    ) -> SipMessage:
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[branch] = pending
        try:
            async with asyncio.timeout(min(timeout, TRANSACTION_TIMEOUT)):
                self._send(route, data)
                if route.conn is not None:
                    await route.conn.writer.drain()
                interval = T1
                while True:
                    with contextlib.suppress(TimeoutError):
                        return await asyncio.wait_for(asyncio.shield(pending.future), interval)
                    if route.transport == "udp" and not (invite and pending.provisional):
                        self._send(route, data)  # timer A / E (RFC 3261 17.1)
                    interval = interval * 2 if invite else min(interval * 2, T2)
        finally:
            self._pending.pop(branch, None)

    async def request(
        self,
        method: str,
        uri: str,
        *,
        to: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
        call_id: str | None = None,
        from_user: str | None = None,
        timeout: float = WAIT_TIMEOUT,
    ) -> SipMessage:
        """Send any out-of-dialog request to the hub (over its registration's route), from
        ``from_user`` (default: this platform's id)."""
        route = self._hub_route()
        self._cseq += 1
        branch = "z9hG4bK" + new_tag()
        headers = [
            ("Via", self._via(route, branch)),
            ("From", f"<sip:{from_user or self.upper_id}@{self.domain}>;tag={new_tag()}"),
            ("To", f"<{to or uri}>"),
            ("Call-ID", call_id or f"{new_tag()}@{self.host}"),
            ("CSeq", f"{self._cseq} {method}"),
            ("Max-Forwards", "70"),
            ("User-Agent", USER_AGENT),
            *extra,
        ]
        if content_type:
            headers.append(("Content-Type", content_type))
        data = build_message(f"{method} {uri} SIP/2.0", headers, body)
        return await self._transact(route, data, branch, timeout)

    def _hub_uri(self, user: str) -> str:
        reg = self.registration
        if reg is None:
            raise RuntimeError("the hub is not registered")
        return f"sip:{user}@{reg.contact_host}:{reg.contact_port}"

    def _next_sn(self) -> str:
        self._sn += 1
        return str(self._sn)

    @staticmethod
    def _manscdp(root: str, cmd: str, sn: str, device_id: str, inner: str = "") -> bytes:
        return (
            f'<?xml version="1.0" encoding="GB2312"?>\r\n<{root}>\r\n<CmdType>{cmd}</CmdType>'
            f"\r\n<SN>{sn}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n{inner}</{root}>\r\n"
        ).encode("gb2312")

    async def send_manscdp(
        self, device_id: str, body: bytes, timeout: float = WAIT_TIMEOUT
    ) -> SipMessage:
        """Send a MANSCDP MESSAGE addressed to device_id at the hub's contact."""
        return await self.request(
            "MESSAGE",
            self._hub_uri(device_id),
            to=f"sip:{device_id}@{self.domain}",
            body=body,
            content_type=CONTENT_TYPE,
            timeout=timeout,
        )

    async def query_catalog(self, timeout: float = WAIT_TIMEOUT) -> list[dict[str, str]]:
        """Query the hub's catalog; the items once their count reaches SumNum."""
        reg = self.registration
        if reg is None:
            raise RuntimeError("the hub is not registered")
        hub_id = self.hub_id or reg.username
        sn = self._next_sn()
        collector: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self._collectors[sn] = collector
        arrived: list[ReceivedMessage] = []
        status = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                body = self._manscdp("Query", "Catalog", sn, hub_id)
                status = (await self.send_manscdp(hub_id, body, timeout)).status
                if status != 200:
                    raise CatalogIncomplete(sn, arrived, status)
                while True:
                    arrived.append(await collector.get())
                    total = arrived[0].sum_num
                    if sum(len(m.items) for m in arrived) >= max(total, 0):
                        break
        except TimeoutError as err:
            if isinstance(err, CatalogIncomplete):
                raise
            raise CatalogIncomplete(sn, arrived, status) from err
        finally:
            self._collectors.pop(sn, None)
        self.last_catalog_messages = len(arrived)
        self.last_catalog_responses = arrived
        return [item for message in arrived for item in message.items]

    async def device_control(
        self, channel_id: str, ptz_cmd_hex: str, timeout: float = WAIT_TIMEOUT
    ) -> int:
        """Send a PTZ DeviceControl for a channel; the MESSAGE's status."""
        inner = (
            f"<PTZCmd>{ptz_cmd_hex}</PTZCmd>\r\n"
            "<Info>\r\n<ControlPriority>5</ControlPriority>\r\n</Info>\r\n"
        )
        body = self._manscdp("Control", "DeviceControl", self._next_sn(), channel_id, inner)
        return (await self.send_manscdp(channel_id, body, timeout)).status

    # INVITE -----------------------------------------------------------------------------
    def new_ssrc(self) -> str:
        """A live-view SSRC as GB/T 28181 builds it: 0 + domain digits 4-8 + 4-digit number."""
        self._ssrc_seq = (self._ssrc_seq + 1) % 10_000
        return f"0{self.domain[3:8]:0>5}{self._ssrc_seq:04d}"

    def offer(self, port: int, transport: str, ssrc: str) -> str:
        """Our SDP offer (recvonly PS/90000) for a transport named from the hub's side."""
        proto = "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP"
        lines = [
            "v=0",
            f"o={self.upper_id} 0 0 IN IP4 {self.host}",
            "s=Play",
            f"c=IN IP4 {self.host}",
            "t=0 0",
            f"m=video {port} {proto} 96",
            "a=recvonly",
            "a=rtpmap:96 PS/90000",
        ]
        if transport == "tcp_active":  # the hub connects: we are passive
            lines += ["a=setup:passive", "a=connection:new"]
        elif transport == "tcp_passive":  # the hub listens: we connect
            lines += ["a=setup:active", "a=connection:new"]
        return "\r\n".join([*lines, f"y={ssrc}"]) + "\r\n"

    async def invite(
        self,
        channel_id: str,
        transport: str = "udp",
        ssrc: str | None = None,
        timeout: float = WAIT_TIMEOUT,
    ) -> PlaySession:
        """Open a live stream of a channel; returns after 200 + ACK (and the TCP connect)."""
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}")
        session = PlaySession(
            self, channel_id, transport, ssrc or self.new_ssrc(), _Route("", ("", 0))
        )
        await session._open_media()
        sdp = self.offer(session.media_port, transport, session.ssrc)
        await self._invite(session, sdp, timeout)
        if transport == "tcp_passive":
            await session._connect_media(timeout)
        return session

    async def invite_sdp(
        self, channel_id: str, sdp: str, ssrc: str | None = None, timeout: float = WAIT_TIMEOUT
    ) -> PlaySession:
        """INVITE with an arbitrary SDP body (no media sockets opened); InviteRefused on non-2xx."""
        session = PlaySession(self, channel_id, "raw", ssrc or self.new_ssrc(), _Route("", ("", 0)))
        await self._invite(session, sdp, timeout)
        return session

    async def _invite(self, session: PlaySession, sdp: str, timeout: float) -> None:
        route = self._hub_route()
        session.route = route
        session.offer = sdp
        branch = "z9hG4bK" + new_tag()
        uri = self._hub_uri(session.channel_id)
        session.remote_target = uri
        headers = [
            ("Via", self._via(route, branch)),
            ("From", f"<sip:{self.upper_id}@{self.domain}>;tag={session.local_tag}"),
            ("To", f"<sip:{session.channel_id}@{self.domain}>"),
            ("Call-ID", session.call_id),
            ("CSeq", f"{session.cseq} INVITE"),
            ("Max-Forwards", "70"),
            ("Contact", f"<sip:{self.upper_id}@{self.host}:{self.port}>"),
            ("Subject", f"{session.channel_id}:{session.ssrc},{self.upper_id}:0"),
            ("User-Agent", USER_AGENT),
            ("Content-Type", "application/sdp"),
        ]
        data = build_message(f"INVITE {uri} SIP/2.0", headers, sdp.encode())
        self._sessions[session.call_id] = session
        try:
            response = await self._transact(route, data, branch, timeout, invite=True)
        except BaseException:
            await session.close()
            raise
        session.response = response
        session.remote_tag = header_tag(response.header("to"))
        if response.status >= 300:
            # ACK for a non-2xx final response: same branch, part of the transaction.
            ack_headers = [
                ("Via", self._via(route, branch)),
                ("From", headers[1][1]),
                ("To", response.header("to")),
                ("Call-ID", session.call_id),
                ("CSeq", f"{session.cseq} ACK"),
                ("Max-Forwards", "70"),
            ]
            self._send(route, build_message(f"ACK {uri} SIP/2.0", ack_headers))
            await session.close()
            raise InviteRefused(response.status, response)
        contact = response.header("contact")
        if contact:
            session.remote_target = re.sub(r"^.*?<|>.*$", "", contact) or uri
        session.answer = parse_offer(session.call_id, decode_text(response.body), response.text)
        self._send(route, self._ack(session))

    def _ack(self, session: PlaySession) -> bytes:
        branch = "z9hG4bK" + new_tag()
        headers = [
            ("Via", self._via(session.route, branch)),
            ("From", f"<sip:{self.upper_id}@{self.domain}>;tag={session.local_tag}"),
            ("To", f"<sip:{session.channel_id}@{self.domain}>;tag={session.remote_tag}"),
            ("Call-ID", session.call_id),
            ("CSeq", f"{session.cseq} ACK"),
            ("Max-Forwards", "70"),
        ]
        return build_message(f"ACK {session.remote_target} SIP/2.0", headers)

    async def _in_dialog(self, session: PlaySession, method: str, timeout: float) -> SipMessage:
        session.cseq += 1
        branch = "z9hG4bK" + new_tag()
        to = f"<sip:{session.channel_id}@{self.domain}>"
        headers = [
            ("Via", self._via(session.route, branch)),
            ("From", f"<sip:{self.upper_id}@{self.domain}>;tag={session.local_tag}"),
            ("To", to + (f";tag={session.remote_tag}" if session.remote_tag else "")),
            ("Call-ID", session.call_id),
            ("CSeq", f"{session.cseq} {method}"),
            ("Max-Forwards", "70"),
            ("User-Agent", USER_AGENT),
        ]
        data = build_message(f"{method} {session.remote_target} SIP/2.0", headers)
        return await self._transact(session.route, data, branch, timeout)


# Self-check: gb_device's GbDevice plays the hub (a lower platform registering upward) -------
SELF_CHECK_HUB_ID = "34020000002000000001"
SELF_CHECK_PASSWORD = "12345678"
SELF_CHECK_SIZE = (320, 240)


class _PickyLower(GbDevice):
    """GbDevice playing the hub, refusing unknown channels (404) and offers without PS (488)."""

    async def _on_invite(self, request: SipMessage) -> None:
        channel = parse_uri(request.first_line)[0]
        if channel not in {c[0] for c in self.channels}:
            self._respond(request, 404)
        elif "PS/90000" not in decode_text(request.body):
            self._respond(request, 488)
        else:
            await super()._on_invite(request)


def _ok(text: str) -> None:
    print(f"ok   {text}", flush=True)


async def _raw_register(upper: UpperPlatform, auth: str | None) -> SipMessage:
    """A hand-built REGISTER over UDP (one shot), for the 401/403 checks."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not answer.done():
                answer.set_result(data)

    udp, _ = await loop.create_datagram_endpoint(
        Proto, remote_addr=(upper.host, upper.port), local_addr=("127.0.0.1", 0)
    )
    port = udp.get_extra_info("sockname")[1]
    uri = f"sip:{upper.upper_id}@{upper.domain}"
    aor = f"<sip:{SELF_CHECK_HUB_ID}@{upper.domain}>"
    headers = [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK{new_tag()}"),
        ("From", f"{aor};tag={new_tag()}"),
        ("To", aor),
        ("Call-ID", new_tag()),
        ("CSeq", "1 REGISTER"),
        ("Contact", f"<sip:{SELF_CHECK_HUB_ID}@127.0.0.1:{port}>"),
        ("Max-Forwards", "70"),
        ("Expires", "3600"),
        *([("Authorization", auth)] if auth else []),
    ]
    udp.sendto(build_message(f"REGISTER {uri} SIP/2.0", headers))
    try:
        async with asyncio.timeout(WAIT_TIMEOUT):
            return parse_sip(await answer)
    finally:
        udp.close()


async def _self_check_auth() -> None:
    async with UpperPlatform(hub_id=SELF_CHECK_HUB_ID, password=SELF_CHECK_PASSWORD) as upper:
        first = await _raw_register(upper, None)
        challenge = first.header("www-authenticate")
        assert first.status == 401 and 'qop="auth"' in challenge, first.text
        uri = f"sip:{upper.upper_id}@{upper.domain}"
        nonce = re.search(r'nonce="([^"]+)"', challenge)
        assert nonce is not None, challenge
        stale = challenge.replace(nonce.group(1), "bogus")
        again = await _raw_register(
            upper, digest_response(stale, "REGISTER", uri, SELF_CHECK_HUB_ID, "12345678")
        )
        assert again.status == 401 and "stale=true" in again.header("www-authenticate")
        wrong = await _raw_register(
            upper, digest_response(challenge, "REGISTER", uri, SELF_CHECK_HUB_ID, "wrong")
        )
        assert wrong.status == 403, wrong.first_line
        other = await _raw_register(
            upper, digest_response(challenge, "REGISTER", uri, "34020000002000000777", "12345678")
        )
        assert other.status == 403 and upper.registration is None
        _ok(f"missing auth → 401, unknown nonce → 401 stale, wrong password/user → 403 "
            f"({upper.auth_failures[-2:]})")  # fmt: skip
    async with UpperPlatform(password=SELF_CHECK_PASSWORD, qop=None) as upper:
        device = GbDevice(
            hub_port=upper.port, hub_id=upper.upper_id, device_id=SELF_CHECK_HUB_ID,
            password=SELF_CHECK_PASSWORD,
        )  # fmt: skip
        async with device:
            status = await device.register()
            reg = await upper.wait_registered()
            assert status == 200 and upper.challenges == 1 and reg.username == SELF_CHECK_HUB_ID
            _ok("digest without qop (hub_id=None: any username) → 200")


async def _self_check_transport(transport: str, clip: Path) -> None:
    async with UpperPlatform(hub_id=SELF_CHECK_HUB_ID, password=SELF_CHECK_PASSWORD) as upper:
        device = _PickyLower(
            hub_port=upper.port, transport=transport, hub_id=upper.upper_id,
            domain=upper.domain, device_id=SELF_CHECK_HUB_ID, password=SELF_CHECK_PASSWORD,
            catalog_per_message=2, clip=clip,
        )  # fmt: skip
        async with device:
            tag = f"[{transport} signalling]"
            assert await device.register() == 200
            reg = await upper.wait_registered()
            assert upper.challenges == 1 and reg.transport == transport and reg.expires == 3600
            _ok(f"{tag} REGISTER 401 then 200; contact {reg.contact_host}:{reg.contact_port}")
            for _ in range(2):
                assert await device.keepalive() == 200
            assert await upper.wait_keepalives(2) == 2
            _ok(f"{tag} 2 keepalives answered 200")
            items = await upper.query_catalog()
            names = [item["Name"] for item in items]
            assert len(items) == 3 and upper.last_catalog_messages == 2, names
            assert upper.last_catalog_responses[0].charset == "gb2312"
            _ok(f"{tag} catalog: {len(items)} items in {upper.last_catalog_messages} "
                f"messages {names}")  # fmt: skip
            assert await upper.device_control(items[0]["DeviceID"], "A50F01021F0000D6") == 200
            ptz = await device.next_ptz()
            _ok(f"{tag} DeviceControl 200, PTZCmd {ptz} reached the lower side")
            assert await device.send_alarm(priority=2, method=5) == 200
            alarm = await upper.next_message("Alarm")
            assert alarm.fields["AlarmPriority"] == "2", alarm.fields
            _ok(f"{tag} Alarm queued: {alarm.fields['AlarmDescription']}")
            for media in TRANSPORTS:
                session = await upper.invite(items[0]["DeviceID"], media)
                await session.wait_packets(60)
                assert session.ssrc_mismatches == 0 and session.payload_type_mismatches == 0
                frames = await asyncio.to_thread(session.decode)
                sizes = {(f.width, f.height) for f in frames}
                assert frames and sizes == {SELF_CHECK_SIZE}, (len(frames), sizes)
                assert await session.bye() == 200
                await device.wait_bye()
                _ok(f"{tag} INVITE {media}: {len(session.packets)} RTP packets ssrc "
                    f"{session.ssrc}, {len(frames)} frames {sizes}, BYE 200")  # fmt: skip
            session = await upper.invite(items[1]["DeviceID"], "udp")
            await session.wait_packets(1)
            hub_bye = await device._request(  # the lower side hangs up (hand-built BYE)
                "BYE",
                f"sip:{upper.upper_id}@127.0.0.1:{upper.port}",
                f"sip:{upper.upper_id}@{upper.domain};tag={session.local_tag}",
                call_id=session.call_id,
            )
            await session.wait_closed_by_hub()
            assert hub_bye.status == 200 and session.closed_by_hub
            _ok(f"{tag} BYE from the lower side answered {hub_bye.status}, closed_by_hub")
            try:
                await upper.invite("34020000001329999999", "udp")
                raise AssertionError("unknown channel accepted")
            except InviteRefused as refused:
                assert refused.status == 404, refused
            h264 = upper.offer(DISCARD_PORT, "udp", "0200009999").replace("PS/", "H264/")
            try:
                await upper.invite_sdp(items[0]["DeviceID"], h264)
                raise AssertionError("offer without PS accepted")
            except InviteRefused as refused:
                assert refused.status == 488, refused
            _ok(f"{tag} unknown channel → InviteRefused(404), no common codec → (488)")
            reg = await upper.wait_registered()
            route = "TCP" if transport == "tcp" else "UDP"
            raw = build_message(
                f"OPTIONS sip:{SELF_CHECK_HUB_ID}@{reg.contact_host}:{reg.contact_port} SIP/2.0",
                [
                    ("Via", f"SIP/2.0/{route} 127.0.0.1:{upper.port};branch=z9hG4bKraw{new_tag()}"),
                    ("From", f"<sip:{upper.upper_id}@{upper.domain}>;tag=raw"),
                    ("To", f"<sip:{SELF_CHECK_HUB_ID}@{upper.domain}>"),
                    ("Call-ID", new_tag()),
                    ("CSeq", "1 OPTIONS"),
                ],
            )
            await upper.send_raw(raw)
            answer = await upper.next_unmatched_response()
            assert answer.status == 200 and answer.method == "OPTIONS", answer.first_line
            _ok(f"{tag} send_raw OPTIONS → {answer.first_line}")
            assert await device.unregister() == 200
            gone = await upper.wait_unregistered()
            assert gone.expires == 0 and upper.register_count == 1
            _ok(f"{tag} unregister (Expires 0) seen")


async def _self_check_restart() -> None:
    upper = UpperPlatform(password=SELF_CHECK_PASSWORD)
    await upper.start()
    port = upper.port
    device = GbDevice(
        hub_port=port, hub_id=upper.upper_id, device_id=SELF_CHECK_HUB_ID,
        password=SELF_CHECK_PASSWORD,
    )  # fmt: skip
    async with device:
        assert await device.register() == 200
        upper.go_silent()
        try:
            async with asyncio.timeout(1.2):
                await device.keepalive()
            raise AssertionError("a silent upper answered")
        except TimeoutError:
            pass
        upper.resume()
        assert await device.keepalive() == 200
        await upper.close()
        await upper.start()
        assert upper.port == port
        assert await device.register() == 200
        await upper.wait_register_count(2)
        _ok(f"silent/resume, close and restart on port {port}, re-register counted")
    await upper.close()


async def _sipp_device(port: int, transport: str, password: str) -> GbDevice:
    """A GbDevice (playing the hub) connected to sipp's port; polls until sipp listens."""
    device = GbDevice(
        hub_port=port, transport=transport, hub_id="34020000002000000099",
        device_id=SELF_CHECK_HUB_ID, password=password,
    )  # fmt: skip
    for _ in range(50):  # sipp needs a moment to bind its TCP port (UDP cannot be polled)
        try:
            await device.start()
            return device
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("sipp did not listen")


async def _self_check_sipp() -> None:
    from tests.support.sipp import run_sipp, sipp_available

    if not sipp_available():
        print("skip sipp not installed")
        return
    cases = (("udp", "u1", SELF_CHECK_PASSWORD, 2), ("tcp", "t1", SELF_CHECK_PASSWORD, 2),
             ("udp", "u1", "wrong", 1))  # fmt: skip
    for transport, flag, password, calls in cases:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        args = [
            "-i", "127.0.0.1", "-p", str(port), "-t", flag, "-m", str(calls),
            "-key", "realm", "3402000000", "-key", "hub_id", SELF_CHECK_HUB_ID,
            "-key", "password", SELF_CHECK_PASSWORD,
        ]  # fmt: skip
        task = asyncio.create_task(run_sipp("upper_register", "", extra_args=args, timeout=20))
        device = await _sipp_device(port, transport, password)
        try:
            status = await device.register()
            alive = await device.keepalive() if calls == 2 else 0
            result = await task  # before closing: on TCP, sipp fails calls on a closed socket
        finally:
            await device.close()
        if password == "wrong":
            assert status == 403 and result.returncode == 0, (status, result)
            _ok("sipp upper_register.xml: wrong password → 403")
            continue
        assert status == 200 and alive == 200, (status, alive, result)
        assert result.returncode == 0 and result.successful == calls, result
        _ok(f"sipp upper_register.xml over {transport}: REGISTER {status}, keepalive {alive}, "
            f"sipp calls ok {result.successful}")  # fmt: skip


async def _self_check() -> None:
    import tempfile

    from tests.support import gb_clip

    await _self_check_auth()
    with tempfile.TemporaryDirectory() as tmp:
        clip = await asyncio.to_thread(
            gb_clip.make_clip, Path(tmp) / "clip.mp4", 50, SELF_CHECK_SIZE
        )
        for transport in ("udp", "tcp"):
            await _self_check_transport(transport, clip)
    await _self_check_restart()
    await _self_check_sipp()


if __name__ == "__main__":
    try:
        asyncio.run(_self_check())
    except Exception as err:  # report and fail
        print(f"FAIL {err!r}", file=sys.stderr)
        raise SystemExit(1) from err
    print("all ok")
