"""Benchmark connections, one class per server kind, on top of :mod:`tests.bench.wire`.

A connection's ``ready`` future resolves once it is connected *and* subscribed (the server
confirmed it), or, for a publisher, once it may publish. Deliveries are recognised by a
marker the publisher puts in every message (:data:`MARKER`); a connection counts the
markers in each message it receives. Only *sampled* connections also parse the publisher's
timestamps to measure latency, so most connections do nothing per message but count.
"""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections.abc import Callable
from typing import ClassVar

import jwt
import orjson

from tests.bench.wire import WebSocketClient

MARKER = b"BENCH#t="
"""Starts the text of every benchmark publication; followed by the send time."""

_TIMESTAMP = re.compile(rb"BENCH#t=([0-9]+\.[0-9]+)")

HUB_CHANNEL = "org:d01"
HUB_ORG = "d01"
HUB_DEV_SECRET = "grid-hub-development-secret-change-me"
HUB_TOKEN_TTL = 6 * 3600
SOCKETIO_ROOM = "bench"

AckCallback = Callable[[int, "str | None"], None]


def publication_text(seq: int, pad_to: int) -> str:
    """The text of publication ``seq``, stamped with the current time, padded to length."""
    text = f"BENCH#t={time.time():.6f} i={seq} "
    return text + "x" * max(0, pad_to - len(text))


def publication_data(seq: int, payload_bytes: int) -> bytes:
    """The JSON object a publisher publishes: ``{"text": ...}``, about ``payload_bytes``."""
    return orjson.dumps({"text": publication_text(seq, payload_bytes - len('{"text":""}'))})


class DeliveryCounter:
    """Deliveries seen by all connections of one process."""

    __slots__ = (
        "done",
        "expected",
        "frames",
        "last_recv",
        "latencies",
        "on_complete",
        "pongs",
        "total",
    )

    def __init__(self) -> None:
        self.total = 0
        self.frames = 0
        self.pongs = 0  # application-level pings answered, over the process's lifetime
        self.expected = 0
        self.last_recv = 0.0
        self.done = False
        self.latencies = array("d")
        self.on_complete: Callable[[], None] = lambda: None

    def arm(self, expected: int) -> None:
        """Start counting towards ``expected`` deliveries from zero."""
        self.total = 0
        self.frames = 0
        self.expected = expected
        self.last_recv = 0.0
        self.done = False
        self.latencies = array("d")

    def add(self, count: int, sampled: bytes | None) -> None:
        """Record a message with ``count`` deliveries; ``sampled`` it when its latency counts."""
        now = time.time()
        self.total += count
        self.frames += 1
        self.last_recv = now
        if sampled is not None:
            for match in _TIMESTAMP.finditer(sampled):
                self.latencies.append(now - float(match.group(1)))
        if not self.done and self.expected and self.total >= self.expected:
            self.done = True
            self.on_complete()


class BenchConnection(WebSocketClient):
    """A subscriber (or, with ``subscribe=False``, a publisher) of one server kind."""

    kind: ClassVar[str] = ""

    def __init__(
        self,
        host: str,
        port: int,
        ident: int,
        counter: DeliveryCounter,
        *,
        sampled: bool = False,
        subscribe: bool = True,
    ) -> None:
        super().__init__(host, port)
        self.ident = ident
        self.counter = counter
        self.sampled = sampled
        self.subscribe = subscribe
        self.count = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_ack: AckCallback | None = None

    def deliver(self, payload: bytes) -> int:
        """Count the publications in ``payload``; return how many there were."""
        found = payload.count(MARKER)
        if found:
            self.count += found
            self.counter.add(found, payload if self.sampled else None)
        return found

    def publish(self, seq: int, data: bytes) -> None:
        """Publish ``data`` (a JSON object) as publication ``seq`` (1, 2, ...)."""
        raise NotImplementedError

    def mark_ready(self) -> None:
        """Connected and subscribed."""
        if not self.ready.done():
            self.ready.set_result(None)

    def ack(self, seq: int, error: str | None) -> None:
        """The server took publication ``seq`` (or refused it with ``error``)."""
        if self.on_ack is not None:
            self.on_ack(seq, error)

    def on_error(self, exc: Exception) -> None:
        """Fail ``ready`` with a protocol error."""
        if not self.ready.done():
            self.ready.set_exception(exc)

    def on_lost(self, exc: Exception | None) -> None:
        """Fail ``ready`` when the connection drops before it."""
        if not self.ready.done():
            self.ready.set_exception(
                ConnectionError(f"connection lost before ready: {exc or 'closed by server'}")
            )


def hub_token(ident: int, secret: str = HUB_DEV_SECRET) -> str:
    """An HS256 user token for ``bench-<ident>``, a dispatcher of the benchmark's org."""
    claims = {
        "sub": f"bench-{ident}",
        "org": HUB_ORG,
        "roles": ["dispatcher"],
        "exp": int(time.time()) + HUB_TOKEN_TTL,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class HubConnection(BenchConnection):
    """Centrifugo bidirectional protocol, JSON encoding, as Grid Hub speaks it."""

    kind = "hub"
    path = "/connection/websocket"
    _CONNECT_ID = 1
    _SUBSCRIBE_ID = 2
    _PUBLISH_BASE = 1000

    def on_open(self) -> None:
        """Send connect."""
        command = {"id": self._CONNECT_ID, "connect": {"token": hub_token(self.ident)}}
        self.send_text(orjson.dumps(command))

    def on_message(self, payload: bytes) -> None:
        """Count pushes; answer pings; follow connect → subscribe; collect publish acks."""
        if self.deliver(payload):
            if b"{}" in payload:
                self._lines(payload, pings_only=True)
            return
        self._lines(payload, pings_only=False)

    def _lines(self, payload: bytes, *, pings_only: bool) -> None:
        # Several replies and pushes may share one frame, one per line.
        for line in payload.split(b"\n"):
            if line == b"{}":
                self.send_text(b"{}")
                self.counter.pongs += 1
            elif line and not pings_only:
                self._reply(orjson.loads(line))

    def _reply(self, message: dict[str, object]) -> None:
        reply_id = message.get("id")
        if not isinstance(reply_id, int) or not reply_id:
            return
        error = message.get("error")
        if reply_id >= self._PUBLISH_BASE:
            self.ack(reply_id - self._PUBLISH_BASE, None if error is None else str(error))
        elif error is not None:
            step = "connect" if reply_id == self._CONNECT_ID else "subscribe"
            self.fail(ConnectionError(f"hub refused {step}: {error}"))
        elif reply_id == self._CONNECT_ID and self.subscribe:
            command = {"id": self._SUBSCRIBE_ID, "subscribe": {"channel": HUB_CHANNEL}}
            self.send_text(orjson.dumps(command))
        else:
            self.mark_ready()

    def publish(self, seq: int, data: bytes) -> None:
        """Send a publish command to the benchmark channel."""
        self.send_text(
            b'{"id":%d,"publish":{"channel":"%s","data":%s}}'
            % (self._PUBLISH_BASE + seq, HUB_CHANNEL.encode(), data)
        )


class SocketIOConnection(BenchConnection):
    """Socket.IO v5 over Engine.IO v4, WebSocket transport only, default namespace."""

    kind = "socketio"
    path = "/socket.io/?EIO=4&transport=websocket"
    _JOIN = b'420["join","%s"]' % SOCKETIO_ROOM.encode()

    def on_message(self, payload: bytes) -> None:
        """Count events; answer pings; open → namespace connect → join with ack."""
        if payload.startswith(b"42"):
            self.deliver(payload)
        elif payload == b"2":
            self.send_text(b"3")
            self.counter.pongs += 1
        elif payload.startswith(b"43"):
            ack_id = int(payload[2 : payload.index(b"[")])
            if ack_id == 0:
                self.mark_ready()
            else:
                self.ack(ack_id, None if payload.endswith(b"[true]") else payload.decode())
        elif payload.startswith(b"40"):
            if self.subscribe:
                self.send_text(self._JOIN)
            else:
                self.mark_ready()
        elif payload.startswith(b"0"):
            self.send_text(b"40")
        elif payload.startswith(b"44"):
            self.fail(ConnectionError(f"socket.io connect refused: {payload.decode()}"))
        elif payload.startswith(b"1"):
            self.close()

    def publish(self, seq: int, data: bytes) -> None:
        """Emit ``publish`` with an ack id; the server emits ``pub`` to the room."""
        self.send_text(b'42%d["publish",%s]' % (seq, data))


class BareConnection(BenchConnection):
    """The bare aiohttp peer: plain text frames, ``ok`` once registered or published."""

    kind = "bare"

    def __init__(
        self,
        host: str,
        port: int,
        ident: int,
        counter: DeliveryCounter,
        *,
        sampled: bool = False,
        subscribe: bool = True,
    ) -> None:
        super().__init__(host, port, ident, counter, sampled=sampled, subscribe=subscribe)
        self.path = "/ws" if subscribe else "/publish"
        self._acked = 0

    def on_message(self, payload: bytes) -> None:
        """Count messages; the first ``ok`` means registered, later ones are publish acks."""
        if self.deliver(payload) or payload != b"ok":
            return
        if not self.ready.done():
            self.mark_ready()
        else:
            self._acked += 1
            self.ack(self._acked, None)

    def publish(self, seq: int, data: bytes) -> None:
        """Send the message itself; the server fans it out verbatim."""
        self.send_text(data)


CONNECTIONS: dict[str, type[BenchConnection]] = {
    cls.kind: cls for cls in (HubConnection, SocketIOConnection, BareConnection)
}


async def open_connection(
    cls: type[BenchConnection],
    host: str,
    port: int,
    ident: int,
    counter: DeliveryCounter,
    *,
    sampled: bool = False,
    subscribe: bool = True,
    timeout: float = 30.0,
) -> BenchConnection:
    """Connect, upgrade and subscribe one connection, or raise."""
    loop = asyncio.get_running_loop()
    conn: BenchConnection | None = None

    def factory() -> BenchConnection:
        nonlocal conn
        conn = cls(host, port, ident, counter, sampled=sampled, subscribe=subscribe)
        return conn

    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(factory, host, port)
            assert conn is not None
            await conn.ready
    except BaseException:
        if conn is not None and conn.transport is not None:
            conn.transport.abort()
        raise
    return conn
