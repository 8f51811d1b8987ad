"""The gateway service: the aiohttp WebSocket endpoint, server pings, presence refresh and
graceful close, around one Node and one Dispatcher."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import WSMsgType, web

from hub.auth.tokens import TokenVerifier
from hub.bus import Bus
from hub.config import GatewaySettings
from hub.gateway.commands import ChannelGuard, Disconnect, Dispatcher, RpcHandler
from hub.gateway.connection import Connection
from hub.gateway.node import Node
from hub.publisher import Publisher
from hub.tasks import TaskRegistry
from protocols.client import PING, DisconnectCode, ProtocolError, decode_frame

log = structlog.get_logger(__name__)


class Gateway:
    """Accepts WebSocket clients at ``/connection/websocket``."""

    def __init__(
        self,
        bus: Bus,
        settings: GatewaySettings,
        verifier: TokenVerifier,
        publisher: Publisher,
        tasks: TaskRegistry,
    ) -> None:
        self.settings = settings
        self.tasks = tasks
        self.node = Node(bus, settings, tasks)
        self.rpc_methods: dict[str, RpcHandler] = {}
        self.channel_guards: dict[str, ChannelGuard] = {}
        self.dispatcher = Dispatcher(
            self.node, verifier, publisher, self.rpc_methods, self.channel_guards
        )
        self.accepting = False
        self.protocol_errors = 0
        self._timers: list[asyncio.Task[None]] = []

    def register_rpc(self, method: str, handler: RpcHandler) -> None:
        """Make ``method`` callable by clients through the rpc command."""
        self.rpc_methods[method] = handler

    def register_channel_guard(self, kind: str, guard: ChannelGuard) -> None:
        """Let ``guard`` decide who may subscribe to (and read) channels ``<kind>:<key>``."""
        self.channel_guards[kind] = guard

    async def start(self) -> None:
        """Start accepting clients and the ping and presence timers."""
        self.accepting = True
        self._timers = [
            self.tasks.spawn(self._ping_loop(), name="gateway pings"),
            self.tasks.spawn(self._presence_loop(), name="gateway presence refresh"),
        ]

    async def close_clients(self, timeout: float) -> None:
        """Shutdown stage: refuse new clients, close every socket with the reconnect
        advice (``shutdown``), wait up to ``timeout`` for the sockets to close."""
        self.accepting = False
        for timer in self._timers:
            timer.cancel()
        transports = [c.transport for c in self.node.connections]
        self.node.disconnect_all(DisconnectCode.SHUTDOWN)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, self.node.close_timeout)
        while any(not t.is_closing() or t.get_write_buffer_size() for t in transports):
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.05)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket endpoint."""
        if not self.accepting:
            raise web.HTTPServiceUnavailable(text="shutting down")
        if len(self.node.connections) >= self.settings.max_connections:
            raise web.HTTPServiceUnavailable(text="connection limit reached")
        ws = web.WebSocketResponse(
            max_msg_size=self.settings.max_frame_bytes,
            compress=False,
            autoping=True,
            timeout=self.node.close_timeout,
        )
        await ws.prepare(request)
        transport = request.transport
        if transport is None:
            return ws
        conn = Connection(
            self.node, transport, request.remote or "", on_closed=lambda: self._closed(conn)
        )
        self.node.add_connection(conn)
        loop = asyncio.get_running_loop()
        conn.stale_handle = loop.call_later(
            self.settings.stale_timeout, conn.disconnect, DisconnectCode.STALE
        )
        try:
            await self._read(ws, conn)
        finally:
            conn.abort()
        return ws

    async def _read(self, ws: web.WebSocketResponse, conn: Connection) -> None:
        dispatcher = self.dispatcher
        high_water = self.settings.queue_high_water
        async for msg in ws:
            if conn.closed:
                return
            if msg.type is not WSMsgType.TEXT:
                if msg.type is WSMsgType.BINARY:
                    self._protocol_error(conn, "binary frame on the JSON protocol")
                return  # ERROR: aiohttp already closed with the code (1009 oversize)
            conn.ping_outstanding = False
            try:
                commands = decode_frame(msg.data)
            except ProtocolError as err:
                self._protocol_error(conn, str(err))
                return
            for cmd in commands:
                if conn.pending_bytes > high_water:
                    # Let the flush run before the next command: the outbound limit then
                    # applies within a frame of many large replies, not only after it.
                    await asyncio.sleep(0)
                    if conn.closed:
                        return
                try:
                    await dispatcher.execute(conn, cmd)
                except Disconnect as exc:
                    if exc.code in (DisconnectCode.BAD_REQUEST, DisconnectCode.INVALID_TOKEN):
                        self.protocol_errors += 1
                    conn.disconnect(exc.code)
                except Exception:
                    log.exception("command failed", client_id=conn.client_id, cmd=cmd.method)
                    conn.disconnect(DisconnectCode.SERVER_ERROR)
                if conn.closed:
                    return

    def _protocol_error(self, conn: Connection, why: str) -> None:
        self.protocol_errors += 1
        log.info("protocol error, disconnecting", client_id=conn.client_id, why=why)
        conn.disconnect(DisconnectCode.BAD_REQUEST)

    def _closed(self, conn: Connection) -> None:
        channels = list(conn.subs)
        self.node.forget_connection(conn)
        if channels and conn.authenticated:
            self.tasks.spawn(self._presence_leave(conn.client_id, channels), name="presence")

    async def _presence_leave(self, client_id: str, channels: list[str]) -> None:
        with contextlib.suppress(Exception):
            for channel in channels:
                await self.node.bus.presence_remove(channel, client_id)

    async def _ping_loop(self) -> None:
        interval, timeout = self.settings.ping_interval, self.settings.pong_timeout
        while True:
            await asyncio.sleep(interval)
            pinged = []
            for conn in list(self.node.connections):
                if conn.authenticated and not conn.closed:
                    conn.ping_outstanding = True
                    conn.send(PING)
                    pinged.append(conn)
            await asyncio.sleep(timeout)
            for conn in pinged:
                if conn.ping_outstanding and not conn.closed:
                    conn.disconnect(DisconnectCode.NO_PONG)

    async def _presence_loop(self) -> None:
        interval = self.settings.presence_ttl / 3
        bus = self.node.bus
        while True:
            await asyncio.sleep(interval)
            for conn in list(self.node.connections):
                if conn.closed or conn.identity is None:
                    continue
                info = {"client": conn.client_id, "user": conn.identity.user}
                for channel in list(conn.subs):
                    try:
                        await bus.presence_add(channel, conn.client_id, info)
                    except Exception:
                        log.debug("presence refresh failed", channel=channel)
                        break
