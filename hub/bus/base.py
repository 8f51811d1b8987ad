"""The bus interface every backend implements (memory, Redis).

Semantics, per channel: an epoch (changes when the channel's stream is lost, e.g. a Redis
restart without persistence) and a monotonically increasing offset; history capped by
length and TTL. A node asks the bus for the channels it has local subscribers on
(``add_channel``/``remove_channel``); the bus calls ``on_publication`` for each
publication on those channels, in offset order per channel as far as the backend can
tell, and ``on_reconnected`` after it had lost its live feed (the gateway then checks
every channel's position and catches up from history or tells clients to resync).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.errors import NotReadyError


class BusUnavailable(NotReadyError):
    """The bus backend cannot be reached; nothing was published."""


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """A position in a channel's stream."""

    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class Publication:
    """One publication: ``data`` is the encoded JSON envelope, never re-encoded."""

    channel: str
    offset: int
    epoch: str
    data: bytes


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """Publications (oldest first) and the channel's current position."""

    publications: list[Publication]
    position: StreamPosition


PublicationHandler = Callable[[Publication], None]
ReconnectedHandler = Callable[[], None]


class Bus(ABC):
    """A publication bus backend."""

    def __init__(self) -> None:
        self._on_publication: PublicationHandler = _ignore_publication
        self._on_reconnected: ReconnectedHandler = _ignore_reconnected

    def set_handlers(
        self, on_publication: PublicationHandler, on_reconnected: ReconnectedHandler
    ) -> None:
        """Register the node's callbacks (called on the event loop, must not block)."""
        self._on_publication = on_publication
        self._on_reconnected = on_reconnected

    @property
    @abstractmethod
    def ready(self) -> bool:
        """True while publications can be sent and the live feed is listening."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Backend name for logs and /readyz."""

    @abstractmethod
    def set_presence_ttl(self, ttl: float) -> None:
        """Seconds a presence entry lives without a refresh."""

    @abstractmethod
    async def start(self) -> None:
        """Connect; returns once ready, or raises BusUnavailable."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect. Safe to call twice."""

    @abstractmethod
    async def publish(self, channel: str, data: bytes) -> StreamPosition:
        """Append to the channel's history and deliver to every node that listens.

        Atomic inside the backend: the offset, the history entry and the live delivery
        happen together or not at all. On BusUnavailable the outcome is unknown (a
        request may have reached Redis before the connection failed): a retry may publish
        twice, which is why every consumer deduplicates by event id.
        """

    @abstractmethod
    async def history(
        self, channel: str, *, since: StreamPosition | None, limit: int
    ) -> HistoryResult:
        """Publications after ``since`` (or the latest ``limit`` when ``since`` is None).

        With ``since`` and an epoch that no longer matches, returns no publications and
        the current position: the caller sees the epoch differs. ``limit`` 0 returns
        only the position.
        """

    @abstractmethod
    async def add_channel(self, channel: str) -> None:
        """Start receiving this channel's live publications on this node."""

    @abstractmethod
    async def remove_channel(self, channel: str) -> None:
        """Stop receiving this channel's live publications on this node."""

    @abstractmethod
    async def presence_add(self, channel: str, client_id: str, info: dict[str, Any]) -> None:
        """Record (or refresh) a client's presence in a channel."""

    @abstractmethod
    async def presence_remove(self, channel: str, client_id: str) -> None:
        """Remove a client's presence from a channel."""

    @abstractmethod
    async def presence(self, channel: str) -> dict[str, dict[str, Any]]:
        """Clients present in a channel, by client id, expired entries left out."""


def _ignore_publication(_: Publication) -> None:
    return None


def _ignore_reconnected() -> None:
    return None
