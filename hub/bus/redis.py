"""Redis bus: channel streams shared by every hub process, fanned out with pub/sub.

Keys, per channel, with the channel as hash tag so they share one cluster slot::

    <prefix>:{<channel>}:meta          hash: e=epoch, o=offset           TTL meta_ttl
    <prefix>:{<channel>}:stream        stream: id <offset>-1, field d     MAXLEN history_size,
                                                                          TTL history_ttl
    <prefix>:{<channel>}:presence      hash: client id -> JSON info
    <prefix>:{<channel>}:presence:exp  sorted set: client id -> expiry (ms, Redis clock)

A publication goes out on the pub/sub channel ``<prefix>:pub:<channel>`` as
``b"<offset>:<epoch>:" + data``. One Lua script appends to history and publishes, so a
publication is either in history and on the wire, or nowhere.

The live feed is one dedicated connection in subscribed mode, read by one listener task
that also pings it; when it breaks, readiness goes down, the listener reconnects with
capped, jittered backoff, resubscribes every channel and reports ``on_reconnected``.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from hub.bus.base import Bus, BusUnavailable, HistoryResult, Publication, StreamPosition
from hub.bus.redis_scripts import HISTORY_LUA, PRESENCE_ADD_LUA, PRESENCE_LUA, PUBLISH_LUA
from hub.config import BusSettings
from hub.tasks import TaskRegistry

OP_TIMEOUT = 2.5
"""Seconds any single Redis read, write or connect may take."""
FEED_PING_INTERVAL = 5.0
"""Idle seconds before the feed is pinged; the answer must come within as long again."""
RECONNECT_BASE_DELAY = 0.1
"""First reconnect delay (s); doubles per failed attempt up to reconnect_max_delay."""
SUBSCRIBE_BATCH = 256
"""Channels per SUBSCRIBE command when resubscribing after a reconnect."""
DEFAULT_PRESENCE_TTL = 60.0
STOP_TIMEOUT = 5.0
CANCEL_GRACE = 0.5
"""Seconds the feed task gets to end on its cancellation before its socket is closed."""
EPOCH_BYTES = 8
_MAX_OFFSET = 2**53  # Lua numbers are doubles: offsets stay exact below this
_MAX_OFFSET_DIGITS = 20

_CLIENT_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]")


class _FeedSilent(RedisConnectionError):
    """The feed connection stopped answering (a PING or a SUBSCRIBE)."""


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Translate Redis and socket errors into BusUnavailable."""
    try:
        yield
    except (RedisError, OSError) as err:
        raise BusUnavailable(f"redis bus: {what} failed: {err}") from err


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


class RedisBus(Bus):
    """Channel streams in Redis, live fan-out through Redis pub/sub."""

    def __init__(
        self,
        url: str,
        settings: BusSettings,
        *,
        node: str,
        op_timeout: float = OP_TIMEOUT,
        ping_interval: float = FEED_PING_INTERVAL,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._node = node
        self._op_timeout = op_timeout
        self._ping_interval = ping_interval
        self._prefix = settings.redis_prefix
        self._pub_prefix = f"{self._prefix}:pub:".encode()
        self._log = structlog.get_logger(__name__).bind(bus="redis", node=node)
        # URL query options may tune timeouts; never retrying is forced: a retried publish
        # could be applied twice, and the caller (outbox relay) owns retries anyway.
        options: dict[str, Any] = {
            "socket_timeout": op_timeout,
            "socket_connect_timeout": op_timeout,
            **parse_url(url),
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        name = _CLIENT_NAME_UNSAFE.sub("_", f"{self._prefix}:{node}")
        self._redis = Redis.from_pool(ConnectionPool(**{**options, "client_name": f"{name}:cmd"}))
        # The feed speaks RESP2 so subscribed-mode frames are plain arrays.
        self._feed_pool = ConnectionPool(
            **{**options, "protocol": 2, "client_name": f"{name}:feed"}
        )
        self._publish_script = self._redis.register_script(PUBLISH_LUA)
        self._history_script = self._redis.register_script(HISTORY_LUA)
        self._presence_add_script = self._redis.register_script(PRESENCE_ADD_LUA)
        self._presence_script = self._redis.register_script(PRESENCE_LUA)
        self._presence_ttl = DEFAULT_PRESENCE_TTL
        self._channels: set[str] = set()
        self._feed: AbstractConnection | None = None  # live and subscribed, else None
        self._feed_lock = asyncio.Lock()  # serialises writes and closes on the feed
        self._sub_waiters: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._tasks = TaskRegistry()
        self._feed_task: asyncio.Task[Any] | None = None
        self._ready = False
        self._broken = False
        self._closed = False
        self._stopping = False
        self.malformed_messages = 0
        """Pub/sub payloads dropped because they could not be parsed."""

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def name(self) -> str:
        return "redis"

    def set_presence_ttl(self, ttl: float) -> None:
        """Seconds a presence entry lives without a refresh."""
        self._presence_ttl = ttl

    # -- keys -----------------------------------------------------------------------------

    def _key(self, channel: str, suffix: str) -> str:
        return f"{self._prefix}:{{{channel}}}:{suffix}"

    def _pub_name(self, channel: str) -> bytes:
        return self._pub_prefix + channel.encode()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and start the live feed; raises BusUnavailable if Redis is unreachable."""
        if self._feed_task is not None:
            return
        try:
            with _unavailable("start"):
                await self._redis.ping()
                conn = await self._open_feed()
        except BusUnavailable:
            # Drop half-open sockets but stay usable: the hub retries start() on this object.
            await self._redis.connection_pool.disconnect()
            raise
        self._go_live(conn)
        self._feed_task = self._tasks.spawn(
            self._run_feed(conn), name=f"redis-bus feed {self._node}"
        )
        self._log.info("redis bus: started")

    async def stop(self) -> None:
        """Stop the feed and close every connection. Safe to call twice."""
        self._ready = False
        self._stopping = True
        task, self._feed_task = self._feed_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=CANCEL_GRACE)
            if not task.done() and self._feed is not None:
                # redis-py's read_response can swallow the cancellation (the pump then
                # reads on until the next PING): closing the socket ends it at once.
                await self._discard(self._feed)
            await asyncio.gather(task, return_exceptions=True)
        await self._tasks.close(STOP_TIMEOUT)
        conn, self._feed = self._feed, None
        if conn is not None:
            await self._discard(conn, graceful=True)
        self._fail_waiters()
        await self._close_clients()

    async def _close_clients(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._redis.aclose()
        await self._feed_pool.aclose()

    # -- publish and history ---------------------------------------------------------------

    async def publish(self, channel: str, data: bytes) -> StreamPosition:
        with _unavailable("publish"):
            result = await self._publish_script(
                keys=[self._key(channel, "meta"), self._key(channel, "stream")],
                args=[
                    data,
                    secrets.token_hex(EPOCH_BYTES),
                    self._settings.history_size,
                    self._settings.history_ttl,
                    self._settings.meta_ttl,
                    self._pub_name(channel),
                ],
            )
        return StreamPosition(int(result[0]), _text(result[1]))

    async def history(
        self, channel: str, *, since: StreamPosition | None, limit: int
    ) -> HistoryResult:
        if since is None:
            first, known_epoch = "", ""
        else:
            first = f"{min(max(since.offset, 0), _MAX_OFFSET) + 1}-0"
            known_epoch = since.epoch
        with _unavailable("history"):
            offset, epoch, entries = await self._history_script(
                keys=[self._key(channel, "meta"), self._key(channel, "stream")],
                args=[
                    secrets.token_hex(EPOCH_BYTES),
                    self._settings.meta_ttl,
                    max(limit, 0),
                    first,
                    known_epoch,
                ],
            )
        position = StreamPosition(int(offset), _text(epoch))
        pubs = [self._entry(channel, position.epoch, entry) for entry in entries]
        if since is None:
            pubs.reverse()  # XREVRANGE gave newest first
        return HistoryResult(pubs, position)

    @staticmethod
    def _entry(channel: str, epoch: str, entry: list[Any]) -> Publication:
        entry_id, fields = entry
        offset = int(bytes(entry_id).split(b"-", 1)[0])
        values = dict(zip(fields[::2], fields[1::2], strict=True))
        return Publication(channel=channel, offset=offset, epoch=epoch, data=values[b"d"])

    # -- presence ---------------------------------------------------------------------------

    async def presence_add(self, channel: str, client_id: str, info: dict[str, Any]) -> None:
        ttl_ms = max(int(self._presence_ttl * 1000), 1)
        with _unavailable("presence_add"):
            await self._presence_add_script(
                keys=[self._key(channel, "presence"), self._key(channel, "presence:exp")],
                args=[client_id, orjson.dumps(info), ttl_ms],
            )

    async def presence_remove(self, channel: str, client_id: str) -> None:
        with _unavailable("presence_remove"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._key(channel, "presence"), client_id)
                pipe.zrem(self._key(channel, "presence:exp"), client_id)
                await pipe.execute()

    async def presence(self, channel: str) -> dict[str, dict[str, Any]]:
        with _unavailable("presence"):
            flat = await self._presence_script(
                keys=[self._key(channel, "presence"), self._key(channel, "presence:exp")]
            )
        clients: dict[str, dict[str, Any]] = {}
        for raw_id, raw_info in zip(flat[::2], flat[1::2], strict=True):
            try:
                info = orjson.loads(raw_info)
                client_id = bytes(raw_id).decode("utf-8")
            except ValueError as err:
                self._log.warning("redis bus: bad presence entry", channel=channel, error=str(err))
                continue
            if isinstance(info, dict):
                clients[client_id] = info
        return clients

    # -- channels -----------------------------------------------------------------------------

    async def add_channel(self, channel: str) -> None:
        """Subscribe; returns once Redis confirmed, else raises BusUnavailable."""
        if channel in self._channels:
            return
        conn = self._feed
        if conn is None or not self._ready:
            raise BusUnavailable("redis bus: live feed is down")
        self._channels.add(channel)
        name = self._pub_name(channel)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Redis confirms SUBSCRIBEs in the order they were sent: first waiter, first answer.
        waiters = self._sub_waiters.setdefault(name, deque())
        waiters.append(waiter)
        confirmed = False
        try:
            async with asyncio.timeout(self._op_timeout):
                await self._send(conn, b"SUBSCRIBE", name)
                await waiter
            confirmed = True
        except (RedisError, OSError) as err:  # TimeoutError is an OSError
            # An unconfirmed SUBSCRIBE leaves the feed in an unknown state: start afresh.
            await self._discard(conn)
            raise BusUnavailable(f"redis bus: subscribe failed: {err}") from err
        finally:
            if not confirmed:
                # The caller counts the channel as not added (also when cancelled); a
                # SUBSCRIBE that went through anyway is filtered out on delivery.
                self._channels.discard(channel)
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._sub_waiters.get(name) is waiters:
                del self._sub_waiters[name]

    async def remove_channel(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        conn = self._feed
        if conn is None:
            return  # the next feed subscribes only what is still in the set
        try:
            await self._send(conn, b"UNSUBSCRIBE", self._pub_name(channel))
        except (RedisError, OSError) as err:
            # The listener sees the broken connection; delivery is filtered by the set.
            self._log.debug("redis bus: unsubscribe failed", channel=channel, error=str(err))

    # -- the live feed ---------------------------------------------------------------------

    async def _send(self, conn: AbstractConnection, *args: bytes) -> None:
        async with self._feed_lock:
            # Checked under the lock: send_command would silently reconnect a closed
            # connection, which would then be subscribed to nothing.
            if not conn.is_connected:
                raise ConnectionError("feed connection closed")
            await conn.send_command(*args, check_health=False)

    async def _discard(self, conn: AbstractConnection, *, graceful: bool = False) -> None:
        async with self._feed_lock:
            try:
                await conn.disconnect(nowait=not graceful)
            except (RedisError, OSError) as err:
                self._log.debug("redis bus: feed close failed", error=str(err))

    async def _open_feed(self) -> AbstractConnection:
        """Connect a feed connection and subscribe every channel in the set."""
        # redis-py leaves these two untyped.
        conn: AbstractConnection = self._feed_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            await self._subscribe_all(conn)
        except BaseException:
            await self._discard(conn)
            raise
        return conn

    async def _subscribe_all(self, conn: AbstractConnection) -> None:
        # add_channel refuses while the feed is down, so the set can only shrink meanwhile.
        channels = set(self._channels)
        names = [self._pub_name(ch) for ch in sorted(channels)]
        for i in range(0, len(names), SUBSCRIBE_BATCH):
            await self._send(conn, b"SUBSCRIBE", *names[i : i + SUBSCRIBE_BATCH])
        expected = set(names)
        while expected:
            # Publications arriving meanwhile are delivered as usual.
            frame = await conn.read_response(timeout=self._op_timeout, disconnect_on_error=False)
            if frame is None:
                raise _FeedSilent("SUBSCRIBE not confirmed in time")
            confirmed = self._handle_frame(frame)
            if confirmed is not None:
                expected.discard(confirmed)
        stale = [self._pub_name(ch) for ch in channels - self._channels]
        if stale:
            await self._send(conn, b"UNSUBSCRIBE", *stale)

    def _go_live(self, conn: AbstractConnection) -> None:
        self._feed = conn
        self._ready = True

    async def _run_feed(self, conn: AbstractConnection) -> None:
        """Pump the feed; on failure reconnect, resubscribe and report the recovery."""
        while True:
            try:
                await self._pump(conn)
            except Exception as err:
                if self._stopping:
                    return
                self._feed_lost(err)
            finally:
                self._ready = False
                self._feed = None
                self._fail_waiters()
                await self._discard(conn)
            conn = await self._reconnect()
            self._go_live(conn)
            self._broken = False
            self._log.info("redis bus: live feed recovered", channels=len(self._channels))
            try:
                self._on_reconnected()
            except Exception:
                self._log.exception("redis bus: reconnected handler failed")

    def _feed_lost(self, err: Exception) -> None:
        self._ready = False
        if self._broken:
            return
        self._broken = True
        expected = isinstance(err, RedisError | OSError | _FeedSilent)
        self._log.warning(
            "redis bus: live feed lost", error=repr(err), exc_info=None if expected else err
        )

    async def _reconnect(self) -> AbstractConnection:
        attempt = 0
        while True:
            attempt += 1
            await asyncio.sleep(self._backoff(attempt))
            try:
                return await self._open_feed()
            except Exception as err:
                self._log.debug("redis bus: reconnect failed", attempt=attempt, error=repr(err))

    def _backoff(self, attempt: int) -> float:
        cap = self._settings.reconnect_max_delay
        delay = min(cap, RECONNECT_BASE_DELAY * 2 ** min(attempt - 1, 30))
        return random.uniform(delay / 2, delay)  # jitter: nodes do not reconnect in step

    async def _pump(self, conn: AbstractConnection) -> None:
        """Read the feed until it fails; ping it when idle to catch a silent death."""
        ping_outstanding = False
        while True:
            frame = await conn.read_response(timeout=self._ping_interval, disconnect_on_error=False)
            if frame is not None:
                ping_outstanding = False  # any frame proves the connection alive
                self._handle_frame(frame)
                continue
            if ping_outstanding:
                raise _FeedSilent(f"no answer to PING within {self._ping_interval}s")
            await self._send(conn, b"PING")
            ping_outstanding = True

    def _handle_frame(self, frame: Any) -> bytes | None:
        """Dispatch one subscribed-mode frame; returns the channel a SUBSCRIBE confirmed."""
        if not isinstance(frame, list) or len(frame) < 2:
            self._log.debug("redis bus: unexpected feed frame", frame=repr(frame)[:200])
            return None
        kind = frame[0]
        if kind == b"message" and len(frame) == 3:
            self._deliver(frame[1], frame[2])
        elif kind == b"subscribe":
            waiters = self._sub_waiters.get(frame[1])
            if waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
            return bytes(frame[1])
        return None  # unsubscribe confirmations and PONGs

    def _deliver(self, name: Any, payload: Any) -> None:
        try:
            pub = self._parse(name, payload)
        except ValueError as err:
            self.malformed_messages += 1
            self._log.warning(
                "redis bus: malformed publication dropped",
                pubsub_channel=repr(name)[:200],
                error=str(err),
            )
            return
        if pub.channel not in self._channels:
            return  # a SUBSCRIBE still being undone
        try:
            self._on_publication(pub)
        except Exception:
            self._log.exception("redis bus: publication handler failed", channel=pub.channel)

    def _parse(self, name: Any, payload: Any) -> Publication:
        if not isinstance(name, bytes) or not name.startswith(self._pub_prefix):
            raise ValueError("not a bus channel")
        if not isinstance(payload, bytes):
            raise ValueError("payload is not bytes")
        channel = name[len(self._pub_prefix) :].decode("utf-8")
        raw_offset, sep, rest = payload.partition(b":")
        raw_epoch, sep2, data = rest.partition(b":")
        if not sep or not sep2:
            raise ValueError("payload has no offset:epoch: header")
        if not raw_offset.isdigit() or len(raw_offset) > _MAX_OFFSET_DIGITS:
            raise ValueError("bad offset")
        offset = int(raw_offset)
        if offset <= 0 or not raw_epoch.isalnum():
            raise ValueError("bad offset or epoch")
        return Publication(
            channel=channel, offset=offset, epoch=raw_epoch.decode("ascii"), data=data
        )

    def _fail_waiters(self) -> None:
        error = ConnectionError("feed connection lost")
        for waiters in self._sub_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
        self._sub_waiters.clear()
