"""Protocol-level WebSocket clients for gateway tests.

``RawClient`` speaks the Centrifugo JSON protocol over aiohttp's WebSocket client with no
SDK in between: tests send exact frames (several commands per frame, malformed ones,
binary ones) and see every reply, push, server ping and the close code.

``SocketClient`` is a WebSocket over a bare non-blocking socket with a small receive
buffer and a hand-made handshake: it reads only when the test tells it to, so a test can
make a client that stops reading (slow consumer) and later drain what the hub sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

WAIT = 15.0
PING_REPLY = b"{}"

Message = dict[str, Any]


class ConnectionClosed(Exception):
    """The server closed the connection while the test waited for a message."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"connection closed with code {code}")
        self.code = code


class RawClient:
    """A client that sends raw protocol frames and records everything the hub sends."""

    def __init__(
        self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, auto_pong: bool
    ) -> None:
        self._session = session
        self._ws = ws
        self.auto_pong = auto_pong
        self.pings = 0
        self.received: list[Message] = []
        """Every message (reply or push, not pings) in arrival order."""
        self.frames = 0
        self.close_code: int | None = None
        self._next_id = 1
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._backlog: list[Message] = []
        self._ping_waiters: list[asyncio.Future[None]] = []
        self._closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="raw ws reader")

    @classmethod
    async def open(cls, ws_url: str, *, auto_pong: bool = True) -> RawClient:
        """Open a WebSocket to the hub (no command sent yet)."""
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                ws_url,
                autoping=True,
                max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WAIT),
            )
        except BaseException:
            await session.close()
            raise
        return cls(session, ws, auto_pong)

    @classmethod
    async def connected(
        cls, ws_url: str, token: str, *, auto_pong: bool = True, **connect: Any
    ) -> tuple[RawClient, Message]:
        """Open and send ``connect``; returns the client and the connect result."""
        client = await cls.open(ws_url, auto_pong=auto_pong)
        try:
            reply = await client.call("connect", {"token": token, **connect})
        except BaseException:
            await client.close()
            raise
        assert "connect" in reply, reply
        return client, reply["connect"]

    # -- sending ---------------------------------------------------------------------------

    def new_id(self) -> int:
        """A command id not used before on this connection."""
        cmd_id = self._next_id
        self._next_id += 1
        return cmd_id

    async def send_text(self, text: str | bytes) -> None:
        """Send one text frame as is."""
        await self._ws.send_str(text.decode() if isinstance(text, bytes) else text)

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame."""
        await self._ws.send_bytes(data)

    async def send(self, *commands: Message) -> list[int]:
        """Send commands in one frame (newline-separated); a command without ``id`` gets
        a fresh one. Returns the ids in order."""
        ids = []
        lines = []
        for command in commands:
            if "id" not in command:
                command = {"id": self.new_id(), **command}
            ids.append(command["id"])
            lines.append(orjson.dumps(command))
        await self.send_text(b"\n".join(lines))
        return ids

    async def call(self, method: str, params: Message | None = None) -> Message:
        """Send one command and return its reply (``{"id":…, method: …}`` or an error)."""
        (cmd_id,) = await self.send({method: params if params is not None else {}})
        return await self.reply(cmd_id)

    async def result(self, method: str, params: Message | None = None) -> Message:
        """Like ``call`` but the reply must be a success: returns its result."""
        reply = await self.call(method, params)
        assert "error" not in reply, reply
        return reply[method]  # type: ignore[no-any-return]

    async def error(self, method: str, params: Message | None = None) -> int:
        """Like ``call`` but the reply must be an error: returns its code."""
        reply = await self.call(method, params)
        assert "error" in reply, reply
        return int(reply["error"]["code"])

    # -- receiving -------------------------------------------------------------------------

    async def next_message(
        self, predicate: Callable[[Message], bool] = lambda _: True, timeout: float = WAIT
    ) -> Message:
        """The next message matching ``predicate`` (others are kept for later calls).
        Raises ConnectionClosed if the connection closes first."""
        for i, kept in enumerate(self._backlog):
            if predicate(kept):
                return self._backlog.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                message = await self._queue.get()
                if message is None:
                    self._queue.put_nowait(None)  # later waiters see the close too
                    raise ConnectionClosed(self.close_code)
                if predicate(message):
                    return message
                self._backlog.append(message)

    async def reply(self, cmd_id: int, timeout: float = WAIT) -> Message:
        """The reply to command ``cmd_id``."""
        return await self.next_message(lambda m: m.get("id") == cmd_id, timeout)

    async def push(
        self, predicate: Callable[[Message], bool] = lambda _: True, timeout: float = WAIT
    ) -> Message:
        """The next push (``{"push": …}``) matching ``predicate`` on its body."""
        message = await self.next_message(lambda m: "push" in m and predicate(m["push"]), timeout)
        push: Message = message["push"]
        return push

    async def publication(self, channel: str | None = None, timeout: float = WAIT) -> Message:
        """The next publication push (on ``channel``): ``{"channel", "pub": {data, offset}}``."""
        return await self.push(
            lambda p: "pub" in p and (channel is None or p["channel"] == channel), timeout
        )

    def pending(self) -> list[Message]:
        """Messages received and not consumed yet (for asserting that nothing came)."""
        while not self._queue.empty():
            message = self._queue.get_nowait()
            if message is None:
                self._queue.put_nowait(None)
                break
            self._backlog.append(message)
        return list(self._backlog)

    def discard(self, predicate: Callable[[Message], bool]) -> int:
        """Forget received, unconsumed messages matching ``predicate``; how many."""
        self.pending()
        kept = [m for m in self._backlog if not predicate(m)]
        dropped = len(self._backlog) - len(kept)
        self._backlog[:] = kept
        return dropped

    async def next_ping(self, timeout: float = WAIT) -> None:
        """Wait for a server ping that arrives after this call."""
        waiter = asyncio.get_running_loop().create_future()
        self._ping_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        finally:
            if waiter in self._ping_waiters:
                self._ping_waiters.remove(waiter)

    async def closed(self, timeout: float = WAIT) -> int | None:
        """Wait for the connection to close; returns the close code."""
        return await asyncio.wait_for(asyncio.shield(self._closed), timeout)

    @property
    def is_closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed.done()

    async def close(self) -> None:
        """Close the connection (if still open) and the HTTP session."""
        with contextlib.suppress(Exception):
            await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        await self._session.close()

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.frames += 1
                    for line in msg.data.split("\n"):
                        if not line.strip():
                            continue
                        message = orjson.loads(line)
                        if message == {}:
                            await self._on_ping()
                            continue
                        self.received.append(message)
                        self._queue.put_nowait(message)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    raise AssertionError("the hub sent a binary frame on the JSON protocol")
        finally:
            self.close_code = self._ws.close_code
            if not self._closed.done():
                self._closed.set_result(self.close_code)
            self._queue.put_nowait(None)

    async def _on_ping(self) -> None:
        self.pings += 1
        if self.auto_pong:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_str(PING_REPLY.decode())
        waiters, self._ping_waiters = self._ping_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


# -- a WebSocket over a bare socket -------------------------------------------------------

OP_TEXT = 0x1
OP_CLOSE = 0x8


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (RFC 6455 §5.2)."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", length)
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", length)
    key = os.urandom(4)
    repeated = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big"
    )
    return header + key + masked


class FrameParser:
    """Incremental parser of unmasked server frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add bytes; return the complete frames (opcode, payload) now available."""
        self._buf += data
        frames: list[tuple[int, bytes]] = []
        while True:
            buf = self._buf
            if len(buf) < 2:
                return frames
            opcode, length, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if buf[1] & 0x80:
                raise AssertionError("server frames must not be masked")
            if length == 126:
                if len(buf) < 4:
                    return frames
                (length,) = struct.unpack_from("!H", buf, 2)
                pos = 4
            elif length == 127:
                if len(buf) < 10:
                    return frames
                (length,) = struct.unpack_from("!Q", buf, 2)
                pos = 10
            if len(buf) < pos + length:
                return frames
            frames.append((opcode, bytes(buf[pos : pos + length])))
            del buf[: pos + length]


class SocketClient:
    """A WebSocket client on a non-blocking socket that reads only when asked to."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = FrameParser()
        self._loop = asyncio.get_running_loop()
        self._frames: list[tuple[int, bytes]] = []

    @classmethod
    async def open(cls, ws_url: str, *, rcvbuf: int = 4096) -> SocketClient:
        """Connect with a small receive buffer (set before connecting, so the TCP window
        stays small) and do the HTTP upgrade by hand."""
        url = urlsplit(ws_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(sock, (host, port))
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET {url.path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            )
            await loop.sock_sendall(sock, request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 4096), WAIT)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                head += chunk
        except BaseException:
            sock.close()
            raise
        status, _, rest = head.partition(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            sock.close()
            raise ConnectionError(f"upgrade refused: {status[:200]!r}")
        client = cls(sock)
        client._frames.extend(client.parser.feed(rest))
        return client

    async def send_json(self, obj: Message) -> None:
        """Send one command as a text frame."""
        await self.send_text(orjson.dumps(obj))

    async def send_text(self, payload: bytes) -> None:
        """Send one text frame."""
        await self._loop.sock_sendall(self.sock, client_frame(OP_TEXT, payload))

    async def next_frame(self, timeout: float = WAIT) -> tuple[int, bytes]:
        """Read until one complete frame is available."""
        async with asyncio.timeout(timeout):
            while not self._frames:
                chunk = await self._loop.sock_recv(self.sock, 65536)
                if not chunk:
                    raise ConnectionClosed(None)
                self._frames.extend(self.parser.feed(chunk))
        return self._frames.pop(0)

    async def reply(self, cmd_id: int, timeout: float = WAIT) -> Message:
        """Read frames until the reply to ``cmd_id`` (other messages are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                opcode, payload = await self.next_frame()
                if opcode == OP_CLOSE:
                    raise ConnectionClosed(struct.unpack("!H", payload[:2])[0])
                for line in payload.split(b"\n"):
                    if line.strip():
                        message = orjson.loads(line)
                        if message.get("id") == cmd_id:
                            return message  # type: ignore[no-any-return]

    async def drain(self, timeout: float = WAIT) -> tuple[list[bytes], int | None]:
        """Read everything until the server closes: the text payloads in order and the
        close code of the close frame (None if the socket ended without one)."""
        texts: list[bytes] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    opcode, payload = await self.next_frame()
                except (ConnectionClosed, ConnectionResetError):
                    return texts, None
                if opcode == OP_CLOSE:
                    return texts, struct.unpack("!H", payload[:2])[0]
                if opcode == OP_TEXT:
                    texts.append(payload)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait until ``predicate()`` holds: for hub-internal state that has no event to await
    (the hub's own timers or socket callbacks change it). Checked every 10 ms."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)
