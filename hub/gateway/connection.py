"""One client connection: its identity, subscriptions and outbound path.

Outbound messages are queued as already-encoded protocol messages and written in one
WebSocket frame per connection per event-loop pass (several messages joined by newlines,
as the protocol allows). The outbound queue is the transport's write buffer; it is bounded
in bytes and in the time spent over a high-water mark, past which the client is
disconnected as slow.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.auth.tokens import Identity
from hub.bus import Publication
from protocols.client import DISCONNECT_REASONS, DisconnectCode
from protocols.websocket import close_frame, text_frame

if TYPE_CHECKING:
    from hub.gateway.node import Node


@dataclass(slots=True)
class Subscription:
    """A channel a connection is subscribed to. While ``buffering`` (a subscribe with
    recovery is reading history), live publications wait in ``buffer``."""

    channel: str
    server_side: bool = False
    buffering: bool = True
    buffer: list[Publication] = field(default_factory=list)


class Connection:
    """A connected WebSocket client."""

    __slots__ = (
        "_close_handle",
        "_on_closed",
        "authenticated",
        "client_id",
        "closed",
        "expire_handle",
        "identity",
        "last_seen",
        "node",
        "pending",
        "pending_bytes",
        "ping_outstanding",
        "remote",
        "scheduled",
        "slow_since",
        "stale_handle",
        "subs",
        "transport",
    )

    def __init__(
        self,
        node: Node,
        transport: asyncio.Transport,
        remote: str,
        on_closed: Callable[[], None],
    ) -> None:
        self.node = node
        self.transport = transport
        self.remote = remote
        self.client_id = secrets.token_hex(8)
        self.identity: Identity | None = None
        self.authenticated = False
        self.subs: dict[str, Subscription] = {}
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.scheduled = False
        self.closed = False
        self.slow_since: float | None = None
        self.ping_outstanding = False
        self.last_seen = 0.0
        self.stale_handle: asyncio.TimerHandle | None = None
        self.expire_handle: asyncio.TimerHandle | None = None
        self._close_handle: asyncio.TimerHandle | None = None
        self._on_closed = on_closed

    def send(self, message: bytes) -> None:
        """Queue one encoded protocol message; written on the next flush."""
        if self.closed:
            return
        self.pending.append(message)
        self.pending_bytes += len(message)
        if not self.scheduled:
            self.scheduled = True
            self.node.schedule_flush(self)

    def flush(self, frames: dict[int, tuple[bytes, bytes]]) -> None:
        """Write queued messages as one frame. ``frames`` caches the frame of a message
        shared by many connections in this pass (keyed by the message object's id)."""
        self.scheduled = False
        self.pending_bytes = 0
        if self.closed or not self.pending:
            self.pending.clear()
            return
        messages = self.pending
        self.pending = []
        if len(messages) == 1:
            message = messages[0]
            cached = frames.get(id(message))
            if cached is None:
                data = text_frame(message)
                frames[id(message)] = (message, data)
            else:
                data = cached[1]
        else:
            data = text_frame(b"\n".join(messages))
        transport = self.transport
        if transport.is_closing():
            self.abort()
            return
        transport.write(data)
        self.node.deliveries += len(messages)
        buffered = transport.get_write_buffer_size()
        if buffered > self.node.queue_high_water:
            self.node.on_backlog(self, buffered)
        elif self.slow_since is not None:
            self.slow_since = None

    def disconnect(self, code: DisconnectCode, reason: str | None = None) -> None:
        """Close with a protocol disconnect code. What is already queued is still written
        (so the client sees the code after it), new messages are dropped, and the socket
        is aborted if the client does not read it within the close timeout."""
        if self.closed:
            return
        if self.pending and not self.transport.is_closing():
            # Mark closing first: a flush over the byte limit must not start a second,
            # nested disconnect with another code.
            messages, self.pending = self.pending, []
            self.pending_bytes = 0
            self.transport.write(text_frame(b"\n".join(messages)))
            self.node.deliveries += len(messages)
        self.closed = True
        self.pending.clear()
        self._on_closed()
        transport = self.transport
        if not transport.is_closing():
            transport.write(close_frame(int(code), reason or DISCONNECT_REASONS[code]))
            transport.close()
            self._close_handle = asyncio.get_running_loop().call_later(
                self.node.close_timeout, transport.abort
            )

    def abort(self) -> None:
        """The socket is gone: forget the connection without writing anything."""
        if self.closed:
            return
        self.closed = True
        self.pending.clear()
        self._on_closed()

    def cancel_timers(self) -> None:
        """Cancel per-connection timers (stale, expiry); the abort timer stays armed."""
        for handle in (self.stale_handle, self.expire_handle):
            if handle is not None:
                handle.cancel()
        self.stale_handle = self.expire_handle = None
