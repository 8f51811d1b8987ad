"""Connected PTZ clients, one per camera, reused for a while; and a per-camera move rate.

Signing in to a camera takes several round trips, so a connection is kept and reused
until it has been idle for ``ttl`` seconds, its endpoint or credentials change, or the
camera stops answering. ``close()`` (at hub shutdown) closes them all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from adapters.onvif.client import OnvifEndpoint, PtzClient, PtzTimeouts
from hub.errors import HubError

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_CONNECTIONS = 256
"""Cameras with a kept connection; past it the least recently used one is closed."""
DROP_ON = ("camera.ptz_unavailable", "camera.ptz_auth_failed")
"""After these the connection is not trusted any more: the next call signs in afresh."""


@dataclass
class _Entry:
    client: PtzClient
    last_used: float


@dataclass
class _Bucket:
    tokens: float
    at: float


class PtzPool:
    """PTZ connections by camera id."""

    def __init__(
        self,
        timeouts: PtzTimeouts,
        ttl: float,
        max_moves_per_second: float,
        max_connections: int = MAX_CONNECTIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeouts = timeouts
        self.ttl = ttl
        self.max_moves_per_second = max_moves_per_second
        self.max_connections = max_connections
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self,
        camera_id: str,
        endpoint: OnvifEndpoint,
        action: Callable[[PtzClient], Awaitable[T]],
    ) -> T:
        """``action`` on the camera's connected client (connecting first if needed)."""
        client = await self._client(camera_id, endpoint)
        try:
            return await action(client)
        except HubError as err:
            if err.code in DROP_ON:
                await self._drop(camera_id, client)
            raise

    def take_move(self, camera_id: str) -> None:
        """Count one move of the camera; HubError ``camera.ptz_rate_limited`` (429) past
        ``max_moves_per_second`` (a token bucket of one second's worth)."""
        now = self.clock()
        rate = self.max_moves_per_second
        bucket = self._buckets.get(camera_id)
        if bucket is None:
            bucket = self._buckets[camera_id] = _Bucket(tokens=rate, at=now)
        bucket.tokens = min(rate, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1:
            raise HubError(
                "camera.ptz_rate_limited", f"at most {rate:g} moves a second per camera", 429
            )
        bucket.tokens -= 1

    async def forget(self, camera_id: str) -> None:
        """Close the camera's connection (after an edit or a delete)."""
        entry = self._entries.pop(camera_id, None)
        self._buckets.pop(camera_id, None)
        if entry is not None:
            await entry.client.close()

    async def close(self) -> None:
        """Close every connection; later calls fail with ``camera.ptz_unavailable``."""
        self._closed = True
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            await entry.client.close()

    async def _client(self, camera_id: str, endpoint: OnvifEndpoint) -> PtzClient:
        if self._closed:
            raise HubError("camera.ptz_unavailable", "the hub is shutting down", 503)
        await self._sweep()
        lock = self._locks.setdefault(camera_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(camera_id)
            if entry is not None and entry.client.endpoint != endpoint:
                await self.forget(camera_id)
                entry = None
            if entry is None:
                client = PtzClient(endpoint, self.timeouts)
                await client.connect()
                if self._closed:
                    await client.close()
                    raise HubError("camera.ptz_unavailable", "the hub is shutting down", 503)
                log.info("ONVIF PTZ connected", camera_id=camera_id,
                         profile=client.profile_token)  # fmt: skip
                entry = self._entries[camera_id] = _Entry(client, self.clock())
                await self._evict_over_limit()
            entry.last_used = self.clock()
            return entry.client

    async def _drop(self, camera_id: str, client: PtzClient) -> None:
        entry = self._entries.get(camera_id)
        if entry is not None and entry.client is client:
            del self._entries[camera_id]
        await client.close()

    async def _sweep(self) -> None:
        """Close connections idle for longer than ``ttl``; forget stale rate buckets."""
        now = self.clock()
        idle = [cid for cid, e in self._entries.items() if now - e.last_used > self.ttl]
        for camera_id in idle:
            entry = self._entries.pop(camera_id)
            await entry.client.close()
        for camera_id in [c for c, b in self._buckets.items() if now - b.at > 1.0]:
            del self._buckets[camera_id]
        for camera_id in [c for c, lock in self._locks.items()
                          if not lock.locked() and c not in self._entries]:  # fmt: skip
            del self._locks[camera_id]

    async def _evict_over_limit(self) -> None:
        while len(self._entries) > self.max_connections:
            oldest = min(self._entries, key=lambda c: self._entries[c].last_used)
            entry = self._entries.pop(oldest)
            await entry.client.close()
