"""The node: this process's connections and channels, fed by the bus.

Fan-out encodes a publication once per channel and frames it once; every local subscriber
gets the same bytes. Per channel the node tracks the last offset it delivered: a gap (a
publication lost on the way, or the bus's live feed down for a while) is filled from
history before delivery continues, and when history cannot fill it, the channel's
subscribers are told to resubscribe with recovery (or, for server-side subscriptions,
disconnected with "insufficient state") — never a silent loss.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog

from hub.bus import Bus, BusUnavailable, Publication, StreamPosition
from hub.config import GatewaySettings
from hub.gateway.connection import Connection
from hub.tasks import TaskRegistry
from protocols.client import DisconnectCode, encode_publication_push, encode_push

log = structlog.get_logger(__name__)

UNSUBSCRIBE_INSUFFICIENT_STATE = 2500
BACKLOG_SWEEP_INTERVAL = 0.5
CLOSE_TIMEOUT = 10.0


@dataclass(slots=True)
class ChannelState:
    """Local subscribers of a channel and the last position delivered to them."""

    subscribers: dict[Connection, None] = field(default_factory=dict)
    offset: int = 0
    epoch: str = ""
    ready: asyncio.Future[None] | None = None
    catching_up: bool = False
    held: list[Publication] = field(default_factory=list)


class Node:
    """Connections and channel subscriptions of one hub process."""

    def __init__(self, bus: Bus, settings: GatewaySettings, tasks: TaskRegistry) -> None:
        self.bus = bus
        self.settings = settings
        self.tasks = tasks
        self.connections: dict[Connection, None] = {}
        self.channels: dict[str, ChannelState] = {}
        self.queue_high_water = settings.queue_high_water
        self.close_timeout = CLOSE_TIMEOUT
        self.deliveries = 0
        self.publications_delivered = 0
        self.slow_disconnects = 0
        self.resyncs = 0
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self._backlogged: dict[Connection, None] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        bus.set_handlers(self.on_publication, self.on_bus_reconnected)

    # -- outbound -----------------------------------------------------------------------

    def schedule_flush(self, conn: Connection) -> None:
        """Mark a connection as having queued output; one flush pass per loop iteration."""
        self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty = self._dirty
        self._dirty = []
        frames: dict[int, tuple[bytes, bytes]] = {}
        for conn in dirty:
            conn.flush(frames)

    def on_backlog(self, conn: Connection, buffered: int) -> None:
        """A connection's outbound buffer is over the high-water mark."""
        loop = asyncio.get_running_loop()
        if buffered >= self.settings.queue_max_bytes:
            self._disconnect_slow(conn)
            return
        if conn.slow_since is None:
            conn.slow_since = loop.time()
            self._backlogged[conn] = None
            if self._sweeper is None:
                self._sweeper = loop.call_later(BACKLOG_SWEEP_INTERVAL, self._sweep_backlog)
        elif loop.time() - conn.slow_since >= self.settings.slow_timeout:
            self._disconnect_slow(conn)

    def _sweep_backlog(self) -> None:
        # A client that stopped reading gets no further flush once nothing new is sent
        # to it, so the time limit is also checked on a timer.
        self._sweeper = None
        loop = asyncio.get_running_loop()
        for conn in list(self._backlogged):
            if conn.closed:
                del self._backlogged[conn]
                continue
            if conn.transport.get_write_buffer_size() <= self.queue_high_water:
                conn.slow_since = None
                del self._backlogged[conn]
            elif conn.slow_since is not None and (
                loop.time() - conn.slow_since >= self.settings.slow_timeout
            ):
                self._disconnect_slow(conn)
        if self._backlogged:
            self._sweeper = loop.call_later(BACKLOG_SWEEP_INTERVAL, self._sweep_backlog)

    def _disconnect_slow(self, conn: Connection) -> None:
        self._backlogged.pop(conn, None)
        if not conn.closed:
            self.slow_disconnects += 1
            log.info("client too slow, disconnecting", client_id=conn.client_id)
            conn.disconnect(DisconnectCode.SLOW)

    def queued_bytes(self) -> int:
        """Bytes waiting in all connections' outbound buffers (for metrics)."""
        return sum(c.transport.get_write_buffer_size() for c in self.connections)

    # -- connections ----------------------------------------------------------------------

    def add_connection(self, conn: Connection) -> None:
        """Register a new connection."""
        self.connections[conn] = None

    def forget_connection(self, conn: Connection) -> None:
        """Drop a closed connection and its subscriptions."""
        self.connections.pop(conn, None)
        self._backlogged.pop(conn, None)
        conn.cancel_timers()
        for channel in list(conn.subs):
            self.remove_subscriber(conn, channel)

    # -- channels -------------------------------------------------------------------------

    async def add_subscriber(self, conn: Connection, channel: str) -> ChannelState:
        """Add a local subscriber; the first one makes the bus start listening. Returns
        once the node receives the channel's live publications."""
        state = self.channels.get(channel)
        if state is None:
            state = ChannelState()
            self.channels[channel] = state
            state.ready = asyncio.get_running_loop().create_future()
            state.subscribers[conn] = None
            try:
                await self.bus.add_channel(channel)
            except BaseException as err:
                state.ready.set_exception(
                    err if isinstance(err, Exception) else BusUnavailable("cancelled")
                )
                state.ready.exception()  # retrieved: waiters see it through await
                if self.channels.get(channel) is state:
                    del self.channels[channel]
                raise
            state.ready.set_result(None)
            if not state.subscribers and self.channels.get(channel) is state:
                # Everyone left while the bus was subscribing: release it again.
                del self.channels[channel]
                self.tasks.spawn(self._release_channel(channel), name=f"unlisten {channel}")
            return state
        state.subscribers[conn] = None
        if state.ready is not None and not state.ready.done():
            await asyncio.shield(state.ready)
        return state

    def remove_subscriber(self, conn: Connection, channel: str) -> None:
        """Remove a local subscriber; the last one makes the bus stop listening."""
        conn.subs.pop(channel, None)
        state = self.channels.get(channel)
        if state is None:
            return
        state.subscribers.pop(conn, None)
        if not state.subscribers and (state.ready is None or state.ready.done()):
            del self.channels[channel]
            self.tasks.spawn(self._release_channel(channel), name=f"unlisten {channel}")

    async def _release_channel(self, channel: str) -> None:
        if channel in self.channels:
            return  # a new subscriber arrived meanwhile
        try:
            await self.bus.remove_channel(channel)
        except BusUnavailable:
            log.debug("bus unavailable while releasing channel", channel=channel)

    def note_position(self, channel: str, position: StreamPosition) -> None:
        """Seed the channel's delivered position from a history read (first subscriber)."""
        state = self.channels.get(channel)
        if state is not None and not state.epoch:
            state.epoch = position.epoch
            state.offset = max(state.offset, position.offset)

    # -- inbound from the bus -------------------------------------------------------------

    def on_publication(self, pub: Publication) -> None:
        """Bus callback: deliver a publication to local subscribers, checking continuity."""
        state = self.channels.get(pub.channel)
        if state is None:
            return
        if state.catching_up:
            state.held.append(pub)
            return
        if state.epoch and pub.epoch != state.epoch:
            self._resync(pub.channel, state, "epoch changed")
            return
        if state.epoch and pub.offset <= state.offset:
            return  # already delivered
        if state.epoch and pub.offset > state.offset + 1:
            state.held.append(pub)
            self._start_catch_up(pub.channel, state)
            return
        self._deliver(pub, state)

    def _deliver(self, pub: Publication, state: ChannelState) -> None:
        state.offset = pub.offset
        state.epoch = pub.epoch
        self.publications_delivered += 1
        message = encode_publication_push(pub.channel, pub.data, pub.offset)
        for conn in state.subscribers:
            sub = conn.subs.get(pub.channel)
            if sub is None:
                continue
            if sub.buffering:
                sub.buffer.append(pub)
            else:
                conn.send(message)

    def on_bus_reconnected(self) -> None:
        """Bus callback: the live feed was down; check every channel for what it missed."""
        for channel, state in list(self.channels.items()):
            if not state.catching_up:
                self._start_catch_up(channel, state)

    def _start_catch_up(self, channel: str, state: ChannelState) -> None:
        state.catching_up = True
        self.tasks.spawn(self._catch_up(channel, state), name=f"catch up {channel}")

    async def _catch_up(self, channel: str, state: ChannelState) -> None:
        limit = self.settings.history_limit
        try:
            while True:
                since = StreamPosition(state.offset, state.epoch) if state.epoch else None
                try:
                    result = await self.bus.history(channel, since=since, limit=limit)
                except BusUnavailable:
                    # The bus is down again; on_bus_reconnected starts a new catch-up.
                    self._resync(channel, state, "bus unavailable during catch-up")
                    return
                position = result.position
                if state.epoch and position.epoch != state.epoch:
                    self._resync(channel, state, "epoch changed")
                    return
                expected = state.offset + 1
                for pub in result.publications:
                    if pub.offset != expected:
                        self._resync(channel, state, "history does not cover the gap")
                        return
                    self._deliver(pub, state)
                    expected += 1
                if state.offset >= position.offset or not result.publications:
                    break
            if state.offset < position.offset:
                self._resync(channel, state, "history does not cover the gap")
                return
        finally:
            state.catching_up = False
        held, state.held = state.held, []
        for pub in sorted(held, key=lambda p: p.offset):
            self.on_publication(pub)

    def _resync(self, channel: str, state: ChannelState, why: str) -> None:
        """Tell the channel's subscribers they missed something: client-side subscriptions
        are told to resubscribe (with recovery), server-side ones reconnect."""
        self.resyncs += 1
        log.warning("channel lost continuity, subscribers resync", channel=channel, why=why)
        state.held.clear()
        message = encode_push(
            channel,
            "unsubscribe",
            {"code": UNSUBSCRIBE_INSUFFICIENT_STATE, "reason": "insufficient state"},
        )
        for conn in list(state.subscribers):
            sub = conn.subs.get(channel)
            if sub is not None and sub.server_side:
                conn.disconnect(DisconnectCode.INSUFFICIENT_STATE)
            else:
                conn.send(message)
                self.remove_subscriber(conn, channel)
        if channel in self.channels and self.channels[channel] is state:
            state.epoch = ""
            state.offset = 0

    # -- shutdown -------------------------------------------------------------------------

    def disconnect_all(self, code: DisconnectCode) -> None:
        """Close every connection with ``code`` (shutdown: the clients reconnect)."""
        for conn in list(self.connections):
            conn.disconnect(code)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
