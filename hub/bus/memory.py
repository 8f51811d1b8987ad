"""In-process bus: the embedded default. Same semantics as Redis, for one hub process."""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hub.bus.base import Bus, HistoryResult, Publication, StreamPosition
from hub.config import BusSettings


@dataclass(slots=True)
class _Stream:
    epoch: str
    offset: int = 0
    touched: float = field(default_factory=time.monotonic)
    items: deque[Publication] = field(default_factory=deque)


class MemoryBus(Bus):
    """Channel streams in a dict; history capped by length and TTL."""

    def __init__(self, settings: BusSettings) -> None:
        super().__init__()
        self._settings = settings
        self._streams: dict[str, _Stream] = {}
        self._listening: set[str] = set()
        self._presence: dict[str, dict[str, tuple[float, dict[str, Any]]]] = {}
        self._presence_ttl = 60.0
        self._started = False

    @property
    def ready(self) -> bool:
        return self._started

    @property
    def name(self) -> str:
        return "memory"

    def set_presence_ttl(self, ttl: float) -> None:
        """Seconds a presence entry lives without a refresh."""
        self._presence_ttl = ttl

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    def _stream(self, channel: str) -> _Stream:
        stream = self._streams.get(channel)
        now = time.monotonic()
        if stream is not None and now - stream.touched > self._settings.meta_ttl:
            stream = None  # forgotten, as a Redis key with a TTL would be
        if stream is None:
            stream = _Stream(epoch=secrets.token_hex(4))
            self._streams[channel] = stream
        return stream

    def _trim(self, stream: _Stream, now: float) -> None:
        # As in Redis: the whole history expires history_ttl after the last publication.
        if now - stream.touched > self._settings.history_ttl:
            stream.items.clear()
        while len(stream.items) > self._settings.history_size:
            stream.items.popleft()

    async def publish(self, channel: str, data: bytes) -> StreamPosition:
        stream = self._stream(channel)
        now = time.monotonic()
        self._trim(stream, now)
        stream.offset += 1
        stream.touched = now
        pub = Publication(channel=channel, offset=stream.offset, epoch=stream.epoch, data=data)
        stream.items.append(pub)
        self._trim(stream, now)
        if channel in self._listening:
            self._on_publication(pub)
        return StreamPosition(stream.offset, stream.epoch)

    async def history(
        self, channel: str, *, since: StreamPosition | None, limit: int
    ) -> HistoryResult:
        stream = self._stream(channel)
        self._trim(stream, time.monotonic())
        position = StreamPosition(stream.offset, stream.epoch)
        if limit <= 0:
            return HistoryResult([], position)
        if since is None:
            pubs = list(stream.items)[-limit:]
        elif since.epoch != stream.epoch:
            pubs = []
        else:
            pubs = [pub for pub in stream.items if pub.offset > since.offset][:limit]
        return HistoryResult(pubs, position)

    async def add_channel(self, channel: str) -> None:
        self._listening.add(channel)

    async def remove_channel(self, channel: str) -> None:
        self._listening.discard(channel)

    async def presence_add(self, channel: str, client_id: str, info: dict[str, Any]) -> None:
        self._presence.setdefault(channel, {})[client_id] = (
            time.monotonic() + self._presence_ttl,
            info,
        )

    async def presence_remove(self, channel: str, client_id: str) -> None:
        entries = self._presence.get(channel)
        if entries is not None:
            entries.pop(client_id, None)
            if not entries:
                del self._presence[channel]

    async def presence(self, channel: str) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        entries = self._presence.get(channel, {})
        for client_id in [cid for cid, (exp, _) in entries.items() if exp < now]:
            del entries[client_id]
        return {cid: info for cid, (_, info) in entries.items()}
