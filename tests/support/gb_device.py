"""A GB/T 28181 camera/NVR stand-in over real sockets, for the hub's integration tests.

Hand-built SIP text and a small tolerant parser of its own: it must not share code with the
hub's protocols/sip or protocols/gb28181, so that a misreading is not made twice.
Self-check (no hub needed): ``python -m tests.support.gb_device``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import random
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import gb_clip
from tests.support.gb_clip import PsFrame
from tests.support.gb_device_media import (
    DISCARD_PORT,
    InviteInfo,
    MediaSession,
    TcpListener,
    build_answer,
    parse_offer,
    stream_sink,
    tcp_connect,
    udp_sink,
    udp_socket,
)

T1 = 0.5
T2 = 4.0
MAX_TRIES = 7
TRANSACTION_TIMEOUT = 32.0
RESPONSE_CACHE = 256
MAX_MESSAGE = 65_536
CATALOG_ACK_TIMEOUT = 5.0
WAIT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
"""Seconds close() waits for each of its own tasks."""
USER_AGENT = "GridHub-GbDevice-StandIn/1.0"
CONTENT_TYPE = "Application/MANSCDP+xml"
DEFAULT_CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("34020000001320000001", "东门广场", "340200"),
    ("34020000001320000002", "西湖路口", "340200"),
    ("34020000001320000003", "北站停车场", "340200"),
)
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type", "k": "supported"}  # fmt: skip
REASONS = {100: "Trying", 200: "OK", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 481: "Call/Transaction Does Not Exist",
           501: "Not Implemented"}  # fmt: skip


@dataclass
class SipMessage:
    """One parsed SIP request or response (headers keep order; names lower-cased)."""

    first_line: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes

    @property
    def is_request(self) -> bool:
        """True for a request, False for a response."""
        return not self.first_line.startswith("SIP/")

    @property
    def method(self) -> str:
        """The request method, or the CSeq method of a response."""
        if self.is_request:
            return self.first_line.split(" ", 1)[0].upper()
        return self.header("cseq").split()[-1].upper()

    @property
    def status(self) -> int:
        """The status code of a response (0 for requests)."""
        return 0 if self.is_request else int(self.first_line.split()[1])

    def header(self, name: str, default: str = "") -> str:
        """The first value of a header."""
        return next((v for n, v in self.headers if n == name), default)

    def all(self, name: str) -> list[str]:
        """All values of a header, in order."""
        return [v for n, v in self.headers if n == name]

    @property
    def branch(self) -> str:
        """The branch of the top Via."""
        match = re.search(r";\s*branch=([^;,\s]+)", self.header("via"), re.I)
        return match.group(1) if match else ""

    @property
    def text(self) -> str:
        """The raw message as text (bodies in GB2312 decoded leniently)."""
        return decode_text(self.raw)


def decode_text(data: bytes) -> str:
    """Decode SIP/XML bytes: UTF-8 when valid, else GB18030 (a superset of GB2312)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def parse_xml(body: bytes) -> ET.Element | None:
    """Parse a MANSCDP body whatever its declared charset; None when it is not XML."""
    # expat refuses multi-byte charsets like GB2312: decode first, drop the declaration.
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", decode_text(body)).strip()
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


def parse_sip(data: bytes) -> SipMessage:
    """Parse one SIP message; folds compact header names, tolerates LF-only line ends."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = data.partition(b"\n\n")
    lines = head.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            key = name.strip().lower()
            headers.append((COMPACT.get(key, key), value.strip()))
    length = next((v for n, v in headers if n == "content-length"), "")
    if length.isdigit():
        body = body[: int(length)]
    return SipMessage(lines[0].strip(), headers, body, data)


def frame_stream(buffer: bytearray) -> bytes | None:
    """Take one whole message off a TCP buffer (Content-Length framing), or None."""
    while buffer[:2] == b"\r\n":  # keepalive CRLFs
        del buffer[:2]
    end = buffer.find(b"\r\n\r\n")
    if end == -1:
        return None
    match = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", bytes(buffer[:end]))
    total = end + 4 + (int(match.group(1)) if match else 0)
    if len(buffer) < total:
        return None
    message = bytes(buffer[:total])
    del buffer[:total]
    return message


def build_message(first_line: str, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    """Assemble SIP text with a correct Content-Length."""
    lines = [first_line, *(f"{n}: {v}" for n, v in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def new_tag() -> str:
    """A random tag / Call-ID component."""
    return os.urandom(6).hex()


def digest_response(
    challenge: str, method: str, uri: str, username: str, password: str, nc: int = 1
) -> str:
    """An Authorization header value answering a WWW-Authenticate Digest challenge (MD5)."""
    params = dict(re.findall(r'(\w+)\s*=\s*"?([^",]*)"?', challenge))
    realm, nonce = params.get("realm", ""), params.get("nonce", "")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        cnonce, count = new_tag(), f"{nc:08x}"
        response = md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    parts.append("algorithm=MD5")
    if "opaque" in params:
        parts.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(parts)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, device: GbDevice) -> None:
        self.device = device

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.device._on_data(data)


@dataclass
class _Call:
    invite: InviteInfo
    to_tag: str
    session: MediaSession
    answer_port: int
    sender: asyncio.DatagramTransport | None = None
    listener: TcpListener | None = None
    task: asyncio.Task[None] | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)


class GbDevice:
    """A GB28181 IPC/NVR that registers to the hub and answers it, with real PS-over-RTP."""

    def __init__(
        self,
        *,
        hub_port: int,
        hub_host: str = "127.0.0.1",
        transport: str = "udp",
        hub_id: str = "34020000002000000001",
        domain: str = "3402000000",
        device_id: str = "34020000001320000001",
        password: str = "12345678",
        channels: Sequence[tuple[str, str, str]] | None = None,
        catalog_per_message: int = 20,
        charset: str = "GB2312",
        clip: Path | None = None,
        local_host: str = "127.0.0.1",
        expires: int = 3600,
        keepalive_interval: float = 60,
        media_mode: str = "normal",
        send_from_port: int | None = None,
        fps: int = 25,
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError("transport must be 'udp' or 'tcp'")
        self.hub_host, self.hub_port, self.transport = hub_host, hub_port, transport
        self.hub_id, self.domain, self.device_id = hub_id, domain, device_id
        self.password, self.charset, self.clip = password, charset, clip
        self.channels = list(channels if channels is not None else DEFAULT_CHANNELS)
        self.catalog_per_message = catalog_per_message
        self.local_host, self.expires = local_host, expires
        self.keepalive_interval = keepalive_interval
        self.media_mode, self.send_from_port, self.fps = media_mode, send_from_port, fps
        self.local_port = 0
        self.invites: list[InviteInfo] = []
        self.received: list[tuple[str, str]] = []
        self.ptz_commands: list[str] = []
        self.catalog_queries = 0
        self.byes = 0
        self.last_register: SipMessage | None = None
        self._ended_packets = 0
        self.errors: list[str] = []
        self._ptz_queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1024)
        self._bye_event = asyncio.Event()
        self._streaming = asyncio.Event()
        self._pending: dict[str, asyncio.Future[SipMessage]] = {}
        self._answered: OrderedDict[str, list[bytes]] = OrderedDict()
        self._calls: dict[str, _Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frames: list[PsFrame] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._call_id = f"{new_tag()}@{local_host}"
        self._cseq = random.randrange(1, 1000)
        self._sn = random.randrange(1, 1000)
        self._from_tag = new_tag()

    # lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> GbDevice:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the SIP socket/connection towards the hub (no REGISTER yet)."""
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self),
                local_addr=(self.local_host, 0),
                remote_addr=(self.hub_host, self.hub_port),
            )
            self._udp = udp
            self.local_port = int(udp.get_extra_info("sockname")[1])
        else:
            async with asyncio.timeout(WAIT_TIMEOUT):
                reader, writer = await asyncio.open_connection(
                    self.hub_host, self.hub_port, local_addr=(self.local_host, 0)
                )
            self._writer = writer
            self.local_port = int(writer.get_extra_info("sockname")[1])
            self._spawn(self._read_tcp(reader), "gb-device-tcp-reader")

    async def close(self) -> None:
        """Stop keepalives and media, cancel every task, close every socket."""
        for call in list(self._calls.values()):
            await self._end_call(call)
        self._calls.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:  # bounded: a test's teardown must not hang on the stand-in
            await asyncio.wait(list(self._tasks), timeout=CLOSE_TIMEOUT)
        for future in self._pending.values():
            future.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._writer.wait_closed()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # transport -----------------------------------------------------------------------
    async def _read_tcp(self, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        while chunk := await reader.read(MAX_MESSAGE):
            buffer += chunk
            while (message := frame_stream(buffer)) is not None:
                self._on_data(message)

    def _send(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data)
        elif self._writer is not None:
            self._writer.write(data)

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are to the hub's SIP port (malformed-traffic tests)."""
        self._send(data)
        if self._writer is not None:
            await self._writer.drain()

    def _on_data(self, data: bytes) -> None:
        try:
            message = parse_sip(data)
        except (ValueError, IndexError):
            return
        if not message.first_line:
            return
        if message.is_request:
            self.received.append((message.method, message.text))
            try:
                self._on_request(message)
            except Exception as err:  # a stand-in must keep answering; tests read errors
                self.errors.append(f"{message.method}: {err!r}")
        else:
            future = self._pending.get(message.branch)
            if future is not None and not future.done() and message.status >= 200:
                future.set_result(message)

    # requests to the hub --------------------------------------------------------------
    def _via(self, branch: str) -> str:
        kind = self.transport.upper()
        return f"SIP/2.0/{kind} {self.local_host}:{self.local_port};rport;branch={branch}"

    @property
    def _aor(self) -> str:
        return f"sip:{self.device_id}@{self.domain}"

    @property
    def _hub_uri(self) -> str:
        return f"sip:{self.hub_id}@{self.domain}"

    async def _transact(self, data: bytes, branch: str) -> SipMessage:
        future: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        try:
            async with asyncio.timeout(TRANSACTION_TIMEOUT):
                interval = T1
                for _ in range(MAX_TRIES if self._udp is not None else 1):
                    self._send(data)
                    if self._writer is not None:
                        await self._writer.drain()
                    with contextlib.suppress(TimeoutError):
                        return await asyncio.wait_for(asyncio.shield(future), interval)
                    interval = min(interval * 2, T2)
                return await future
        finally:
            self._pending.pop(branch, None)

    async def _request(
        self,
        method: str,
        uri: str,
        to: str,
        extra: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        call_id: str | None = None,
    ) -> SipMessage:
        self._cseq += 1
        branch = "z9hG4bK" + new_tag()
        headers = [
            ("Via", self._via(branch)),
            ("From", f"<{self._aor}>;tag={self._from_tag}"),
            ("To", f"<{to}>"),
            ("Call-ID", call_id or f"{new_tag()}@{self.local_host}"),
            ("CSeq", f"{self._cseq} {method}"),
            ("Max-Forwards", "70"),
            ("User-Agent", USER_AGENT),
            *extra,
        ]
        return await self._transact(build_message(f"{method} {uri} SIP/2.0", headers, body), branch)

    async def _register(self, expires: int) -> int:
        uri = self._hub_uri
        contact = ("Contact", f"<sip:{self.device_id}@{self.local_host}:{self.local_port}>")
        base = [contact, ("Expires", str(expires))]
        response = await self._request("REGISTER", uri, self._aor, base, call_id=self._call_id)
        if response.status in (401, 407):
            name = "www-authenticate" if response.status == 401 else "proxy-authenticate"
            challenge = response.header(name)
            auth = digest_response(challenge, "REGISTER", uri, self.device_id, self.password)
            header = "Authorization" if response.status == 401 else "Proxy-Authorization"
            extra = [*base, (header, auth)]
            response = await self._request("REGISTER", uri, self._aor, extra, call_id=self._call_id)
        self.last_register = response
        return response.status

    async def register(self) -> int:
        """REGISTER (answering a digest challenge); returns the final status code."""
        return await self._register(self.expires)

    async def unregister(self) -> int:
        """REGISTER with Expires: 0; returns the final status code."""
        return await self._register(0)

    def _xml(self, root: str, cmd: str, inner: str, sn: str | None = None) -> bytes:
        self._sn += 1
        text = (
            f'<?xml version="1.0" encoding="{self.charset}"?>\r\n<{root}>\r\n'
            f"<CmdType>{cmd}</CmdType>\r\n<SN>{sn or self._sn}</SN>\r\n"
            f"<DeviceID>{self.device_id}</DeviceID>\r\n{inner}</{root}>\r\n"
        )
        return text.encode(self.charset, errors="replace")

    async def _message(self, body: bytes) -> int:
        extra = [("Content-Type", CONTENT_TYPE)]
        response = await self._request("MESSAGE", self._hub_uri, self._hub_uri, extra, body)
        return response.status

    async def keepalive(self) -> int:
        """Send one Keepalive MESSAGE; returns the status code."""
        return await self._message(self._xml("Notify", "Keepalive", "<Status>OK</Status>\r\n"))

    def start_keepalives(self, interval: float | None = None) -> None:
        """Send a keepalive every interval seconds in the background."""
        period = interval if interval is not None else self.keepalive_interval

        async def loop() -> None:
            while True:
                await asyncio.sleep(period)
                with contextlib.suppress(TimeoutError):
                    await self.keepalive()

        if self._keepalive_task is None:
            self._keepalive_task = self._spawn(loop(), "gb-device-keepalives")

    async def stop_keepalives(self) -> None:
        """Stop the background keepalives."""
        task, self._keepalive_task = self._keepalive_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def send_alarm(
        self,
        priority: int = 1,
        method: int = 5,
        description: str = "视频丢失报警",
        alarm_type: int | None = None,
    ) -> int:
        """Send a Notify Alarm MESSAGE; returns the status code."""
        inner = (
            f"<AlarmPriority>{priority}</AlarmPriority>\r\n<AlarmMethod>{method}</AlarmMethod>\r\n"
            f"<AlarmTime>2026-01-01T12:00:00</AlarmTime>\r\n"
            f"<AlarmDescription>{description}</AlarmDescription>\r\n"
        )
        if alarm_type is not None:
            inner += f"<Info><AlarmType>{alarm_type}</AlarmType></Info>\r\n"
        return await self._message(self._xml("Notify", "Alarm", inner))

    # requests from the hub ------------------------------------------------------------
    def _respond(
        self, request: SipMessage, status: int, extra: Sequence[tuple[str, str]] = (),
        body: bytes = b"", to_tag: str | None = None,
    ) -> bytes:  # fmt: skip
        to = request.header("to")
        if status > 100 and ";tag=" not in to.lower():
            to += f";tag={to_tag or new_tag()}"
        headers = [("Via", via) for via in request.all("via")]
        headers += [
            ("From", request.header("from")),
            ("To", to),
            ("Call-ID", request.header("call-id")),
            ("CSeq", request.header("cseq")),
            ("User-Agent", USER_AGENT),
            *extra,
        ]
        data = build_message(f"SIP/2.0 {status} {REASONS.get(status, 'OK')}", headers, body)
        self._send(data)
        if request.method != "ACK":
            self._answered.setdefault(request.branch, []).append(data)
            while len(self._answered) > RESPONSE_CACHE:
                self._answered.popitem(last=False)
        return data

    def _on_request(self, request: SipMessage) -> None:
        method = request.method
        cached = self._answered.get(request.branch)
        if cached is not None and method != "ACK":
            for data in cached:
                self._send(data)
            return
        if method == "MESSAGE":
            self._on_message(request)
        elif method == "OPTIONS":
            self._respond(request, 200)
        elif method == "INVITE":
            self._spawn(self._on_invite(request), "gb-device-invite")
        elif method == "ACK":
            call = self._calls.get(request.header("call-id"))
            if call is not None and not call.acked.is_set():
                call.acked.set()
                call.task = self._spawn(self._stream(call), "gb-device-media")
        elif method == "BYE":
            call = self._calls.pop(request.header("call-id"), None)
            self._respond(request, 200 if call else 481)
            if call is not None:
                self._spawn(self._end_call(call), "gb-device-bye")
                self.byes += 1
                self._bye_event.set()
        else:
            self._respond(request, 501)

    def _on_message(self, request: SipMessage) -> None:
        root = parse_xml(request.body)
        if root is None:
            self._respond(request, 400)
            return
        cmd = (root.findtext("CmdType") or "").strip()
        sn = (root.findtext("SN") or "0").strip()
        self._respond(request, 200)
        if root.tag == "Query" and cmd == "Catalog":
            self.catalog_queries += 1
            self._spawn(self._send_catalog(sn), "gb-device-catalog")
        elif root.tag == "Query" and cmd == "DeviceInfo":
            inner = (
                f"<Result>OK</Result>\r\n<DeviceName>{self.device_id}</DeviceName>\r\n"
                "<Manufacturer>GridHub</Manufacturer>\r\n<Model>StandIn</Model>\r\n"
                "<Firmware>1.0</Firmware>\r\n"
                f"<Channel>{len(self.channels)}</Channel>\r\n"
            )
            body = self._xml("Response", "DeviceInfo", inner, sn)
            self._spawn(self._send_quiet(body), "gb-device-info")
        elif root.tag == "Control" and cmd == "DeviceControl":
            ptz = (root.findtext("PTZCmd") or "").strip()
            if ptz:
                self.ptz_commands.append(ptz)
                with contextlib.suppress(asyncio.QueueFull):
                    self._ptz_queue.put_nowait(ptz)

    async def _send_quiet(self, body: bytes) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CATALOG_ACK_TIMEOUT):
                await self._message(body)

    def _catalog_bodies(self, sn: str) -> list[bytes]:
        per = max(1, self.catalog_per_message)
        total = len(self.channels)
        bodies = []
        for start in range(0, max(total, 1), per):
            group = self.channels[start : start + per]
            items = "".join(
                f"<Item>\r\n<DeviceID>{cid}</DeviceID>\r\n<Name>{name}</Name>\r\n"
                "<Manufacturer>GridHub</Manufacturer>\r\n<Model>StandIn</Model>\r\n"
                f"<Owner>Owner</Owner>\r\n<CivilCode>{civil}</CivilCode>\r\n"
                f"<Address>{name}</Address>\r\n<Parental>0</Parental>\r\n"
                f"<ParentID>{self.device_id}</ParentID>\r\n<SafetyWay>0</SafetyWay>\r\n"
                "<RegisterWay>1</RegisterWay>\r\n<Secrecy>0</Secrecy>\r\n"
                "<Status>ON</Status>\r\n</Item>\r\n"
                for cid, name, civil in group
            )
            inner = (
                f'<SumNum>{total}</SumNum>\r\n<DeviceList Num="{len(group)}">\r\n'
                f"{items}</DeviceList>\r\n"
            )
            bodies.append(self._xml("Response", "Catalog", inner, sn))
        return bodies[: max(1, math.ceil(total / per))]

    async def _send_catalog(self, sn: str) -> None:
        for body in self._catalog_bodies(sn):
            await self._send_quiet(body)

    # media ----------------------------------------------------------------------------
    async def _load_frames(self) -> list[PsFrame]:
        if self._frames is None:
            clip = self.clip
            if clip is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="gb-device-")
                clip = Path(self._tmp.name) / "clip.mp4"
                await asyncio.to_thread(gb_clip.make_clip, clip, 50, (320, 240), self.fps)
            self._frames = await asyncio.to_thread(gb_clip.ps_frames, clip)
        return self._frames

    async def _on_invite(self, request: SipMessage) -> None:
        self._respond(request, 100)
        info = parse_offer(request.header("call-id"), decode_text(request.body), request.text)
        self.invites.append(info)
        frames = await self._load_frames()
        ssrc = int(info.ssrc) if info.ssrc.isdigit() else random.randrange(1 << 31)
        session = MediaSession(frames, self.fps, ssrc, self.media_mode)
        call = _Call(info, new_tag(), session, DISCARD_PORT)
        setup: str | None = None
        if info.transport == "udp":
            call.sender = await udp_socket(self.local_host)
            call.answer_port = int(call.sender.get_extra_info("sockname")[1])
            session.on_close(call.sender.close)
        elif info.setup == "active":  # the hub connects to us
            call.listener = TcpListener()
            call.answer_port = await call.listener.start(self.local_host)
            session.on_close(call.listener.close)
            setup = "passive"
        else:
            setup = "active"
        self._calls[info.call_id] = call
        sdp = build_answer(self.device_id, self.local_host, call.answer_port, info, setup)
        contact = ("Contact", f"<sip:{self.device_id}@{self.local_host}:{self.local_port}>")
        extra = [contact, ("Content-Type", "application/sdp")]
        data = self._respond(request, 200, extra, sdp.encode(), call.to_tag)
        if self._udp is not None:  # retransmit the 2xx until the ACK comes (RFC 3261 13.3.1.4)
            interval = T1
            for _ in range(MAX_TRIES):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.acked.wait(), interval)
                    return
                self._send(data)
                interval = min(interval * 2, T2)

    async def _stream(self, call: _Call) -> None:
        info, session = call.invite, call.session
        if info.transport == "udp":
            assert call.sender is not None
            sender = call.sender
            if self.send_from_port is not None:
                sender = await udp_socket(self.local_host, self.send_from_port)
                session.on_close(sender.close)
            sink = udp_sink(sender, info.media_host, info.media_port)
        elif call.listener is not None:
            writer = await call.listener.accept()
            sink = stream_sink(writer)
        else:
            writer = await tcp_connect(info.media_host, info.media_port, self.local_host)
            session.on_close(writer.close)
            sink = stream_sink(writer)
        waiter = self._spawn(self._mark_streaming(session), "gb-device-first-packet")
        try:
            await session.run(sink)
        except (ConnectionError, OSError):
            pass  # the hub hung up the media connection
        finally:
            waiter.cancel()

    async def _mark_streaming(self, session: MediaSession) -> None:
        await session.first_packet.wait()
        self._streaming.set()

    async def _end_call(self, call: _Call) -> None:
        if call.task is not None:
            call.task.cancel()
            await asyncio.wait([call.task], timeout=CLOSE_TIMEOUT)
        self._ended_packets += call.session.packets_sent
        call.session.packets_sent = 0
        await call.session.close()

    # waiting helpers --------------------------------------------------------------------
    @property
    def packets_sent(self) -> int:
        """RTP packets sent over all calls so far."""
        live = sum(c.session.packets_sent for c in self._calls.values())
        return live + self._ended_packets

    async def wait_streaming(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until the first media packet has been sent."""
        async with asyncio.timeout(timeout):
            await self._streaming.wait()

    async def wait_bye(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until the hub has sent a BYE."""
        async with asyncio.timeout(timeout):
            await self._bye_event.wait()

    async def next_ptz(self, timeout: float = WAIT_TIMEOUT) -> str:
        """Wait for the next PTZCmd the hub sends."""
        async with asyncio.timeout(timeout):
            return await self._ptz_queue.get()


# Self-check: a tiny hand-built registrar/upper platform, no hub needed ---------------------
SELF_CHECK_STREAM_SECONDS = 2.0
SELF_CHECK_SSRC = "0340200001"


class _FakeHub:
    """Challenges REGISTER with digest, answers MESSAGEs, sends queries/INVITE/BYE."""

    def __init__(self, domain: str, hub_id: str, password: str) -> None:
        self.domain, self.hub_id, self.password = domain, hub_id, password
        self.nonce = new_tag()
        self.cmds: list[str] = []
        self.catalog_items: list[str] = []
        self.registered = asyncio.Event()
        self.catalog_done = asyncio.Event()
        self.catalog_total = -1
        self._pending: dict[str, asyncio.Future[SipMessage]] = {}
        self._send: Callable[[bytes], None] = lambda _data: None
        self.port = 0
        self._closers: list[Callable[[], object]] = []

    async def start(self, transport: str) -> None:
        loop = asyncio.get_running_loop()
        if transport == "udp":
            hub = self

            class Proto(asyncio.DatagramProtocol):
                def connection_made(self, tr: asyncio.BaseTransport) -> None:
                    self.tr = tr

                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    hub._send = lambda out: self.tr.sendto(out, addr)  # type: ignore[attr-defined]
                    hub.on_data(data)

            udp, _ = await loop.create_datagram_endpoint(Proto, local_addr=("127.0.0.1", 0))
            self.port = int(udp.get_extra_info("sockname")[1])
            self._closers.append(udp.close)
        else:

            async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                self._send = writer.write
                self._closers.append(writer.close)
                buffer = bytearray()
                while chunk := await reader.read(MAX_MESSAGE):
                    buffer += chunk
                    while (message := frame_stream(buffer)) is not None:
                        self.on_data(message)

            server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
            self.port = int(server.sockets[0].getsockname()[1])
            self._closers.append(server.close)

    def close(self) -> None:
        for closer in self._closers:
            closer()

    def reply(
        self, request: SipMessage, status: int, extra: Sequence[tuple[str, str]] = ()
    ) -> None:
        headers = [("Via", v) for v in request.all("via")]
        headers += [(n.title(), request.header(n)) for n in ("from", "to", "call-id", "cseq")]
        self._send(build_message(f"SIP/2.0 {status} {REASONS[status]}", [*headers, *extra]))

    def on_data(self, data: bytes) -> None:
        message = parse_sip(data)
        if not message.is_request:
            future = self._pending.get(message.branch)
            if future is not None and not future.done() and message.status >= 200:
                future.set_result(message)
            return
        if message.method == "REGISTER":
            auth = message.header("authorization")
            if not auth:
                challenge = (
                    f'Digest realm="{self.domain}", nonce="{self.nonce}", qop="auth", algorithm=MD5'
                )
                self.reply(message, 401, [("WWW-Authenticate", challenge)])
                return
            ok = self._check(auth, message.method)
            self.reply(message, 200 if ok else 403)
            if ok:
                self.registered.set()
        elif message.method == "MESSAGE":
            self.reply(message, 200)
            root = parse_xml(message.body)
            if root is not None:
                self.cmds.append(f"{root.tag}/{root.findtext('CmdType')}")
                if root.findtext("CmdType") == "Catalog":
                    self.catalog_total = int(root.findtext("SumNum") or 0)
                    self.catalog_items += [i.findtext("Name") or "" for i in root.iter("Item")]
                    if len(self.catalog_items) >= self.catalog_total:
                        self.catalog_done.set()

    def _check(self, auth: str, method: str) -> bool:
        params = dict(re.findall(r'(\w+)\s*=\s*"?([^",]*)"?', auth))

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{params['username']}:{self.domain}:{self.password}")
        ha2 = md5(f"{method}:{params['uri']}")
        expected = md5(f"{ha1}:{self.nonce}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        return params.get("response") == expected

    async def request(
        self, method: str, device: GbDevice, body: bytes = b"", content_type: str = "",
        call_id: str | None = None, to_tag: str = "",
    ) -> SipMessage:  # fmt: skip
        branch = "z9hG4bK" + new_tag()
        uri = f"sip:{device.device_id}@127.0.0.1:{device.local_port}"
        kind = device.transport.upper()
        headers = [
            ("Via", f"SIP/2.0/{kind} 127.0.0.1:{self.port};branch={branch}"),
            ("From", f"<sip:{self.hub_id}@{self.domain}>;tag=hub1"),
            (
                "To",
                f"<sip:{device.device_id}@{self.domain}>" + (f";tag={to_tag}" if to_tag else ""),
            ),
            ("Call-ID", call_id or new_tag()),
            ("CSeq", f"{2 if method == 'BYE' else 1} {method}"),
            ("Max-Forwards", "70"),
        ]
        if content_type:
            headers.append(("Content-Type", content_type))
        data = build_message(f"{method} {uri} SIP/2.0", headers, body)
        if method == "ACK":
            self._send(data)
            return parse_sip(data)
        future: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        self._send(data)
        async with asyncio.timeout(WAIT_TIMEOUT):
            return await future


async def _collect_media(transport: str) -> tuple[int, list[bytes], Callable[[], object]]:
    """Open the hub-side media port; returns (port, packet list filled live, closer)."""
    packets: list[bytes] = []
    if transport == "udp":

        class Sink(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                packets.append(data)

        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
        return int(udp.get_extra_info("sockname")[1]), packets, udp.close

    writers: list[asyncio.StreamWriter] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                packets.append(await reader.readexactly(length))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)

    def close() -> None:
        server.close()
        for writer in writers:
            writer.close()

    return int(server.sockets[0].getsockname()[1]), packets, close


def _offer(port: int, transport: str) -> str:
    proto = "TCP/RTP/AVP" if transport == "tcp" else "RTP/AVP"
    lines = [
        "v=0",
        "o=34020000002000000001 0 0 IN IP4 127.0.0.1",
        "s=Play",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=video {port} {proto} 96 97 98",
        "a=recvonly",
        "a=rtpmap:96 PS/90000",
        "a=rtpmap:97 MPEG4/90000",
        "a=rtpmap:98 H264/90000",
    ]
    if transport == "tcp":
        lines += ["a=setup:passive", "a=connection:new"]
    return "\r\n".join([*lines, f"y={SELF_CHECK_SSRC}"]) + "\r\n"


async def _self_check_one(transport: str, clip: Path) -> str:
    hub = _FakeHub("3402000000", "34020000002000000001", "12345678")
    await hub.start(transport)
    try:
        async with GbDevice(hub_port=hub.port, transport=transport, clip=clip) as device:
            status = await device.register()
            alive = await device.keepalive()
            query = (
                '<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>'
                f"\r\n<SN>7</SN>\r\n<DeviceID>{device.device_id}</DeviceID>\r\n</Query>\r\n"
            ).encode("gb2312")
            q_status = (await hub.request("MESSAGE", device, query, CONTENT_TYPE)).status
            async with asyncio.timeout(WAIT_TIMEOUT):
                await hub.catalog_done.wait()
            ptz = query.replace(b"Query", b"Control").replace(b"Catalog", b"DeviceControl")
            ptz = ptz.replace(b"</DeviceID>", b"</DeviceID>\r\n<PTZCmd>A50F01021F0000D6</PTZCmd>")
            await hub.request("MESSAGE", device, ptz, CONTENT_TYPE)
            ptz_cmd = await device.next_ptz()
            options = (await hub.request("OPTIONS", device)).status
            port, packets, close_media = await _collect_media(transport)
            call_id = new_tag()
            offer = _offer(port, transport).encode()
            ok = await hub.request("INVITE", device, offer, "application/sdp", call_id)
            to_tag = re.search(r"tag=([^;>\s]+)", ok.header("to"))
            await hub.request(
                "ACK", device, call_id=call_id, to_tag=to_tag.group(1) if to_tag else ""
            )
            await device.wait_streaming()
            await asyncio.sleep(SELF_CHECK_STREAM_SECONDS)
            bye = (
                await hub.request(
                    "BYE", device, call_id=call_id, to_tag=to_tag.group(1) if to_tag else ""
                )
            ).status
            await device.wait_bye()
            close_media()
            unreg = await device.unregister()
            ssrcs = {int.from_bytes(p[8:12], "big") for p in packets}
            markers = sum(1 for p in packets if p[1] & 0x80)
            stream = b"".join(p[12:] for p in packets)
            means = await asyncio.to_thread(gb_clip.decode_ps, stream)
            info = device.invites[-1]
            return (
                f"[{transport}] REGISTER {status}, keepalive {alive}, catalog query {q_status} "
                f"→ {len(hub.catalog_items)}/{hub.catalog_total} items {hub.catalog_items}, "
                f"PTZ {ptz_cmd}, OPTIONS {options}, INVITE {ok.status} "
                f"(offer {info.transport}/{info.setup} y={info.ssrc}), BYE {bye}, "
                f"unregister {unreg}\n    RTP packets {len(packets)} (sent "
                f"{device.packets_sent}), SSRCs {ssrcs}, frames by marker {markers}, "
                f"PyAV decoded {len(means)} frames from PS; first frame mean "
                f"{tuple(round(c) for c in means[0]) if means else None}"
            )
    finally:
        hub.close()


async def _self_check() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clip = await asyncio.to_thread(gb_clip.make_clip, Path(tmp) / "clip.mp4", 50)
        for transport in ("udp", "tcp"):
            print(await _self_check_one(transport, clip))


if __name__ == "__main__":
    asyncio.run(_self_check())
