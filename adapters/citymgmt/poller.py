"""Polling mode, for systems that cannot push: read their ``requests.json`` and
``servicerequestupdates.json`` by date window and apply what they hold exactly as pushes
are applied (so overlapping windows and repeats change nothing).

Each feed's cursor (the end of the last window read completely) is stored, so a restarted
hub goes on where it stopped; each window starts ``POLL_OVERLAP`` before the cursor to
catch records whose times were written late on their side.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.citymgmt.client import DeliveryError, Open311Client
from adapters.citymgmt.inbound import RequestApplier
from adapters.citymgmt.metrics import CitymgmtCounters
from adapters.citymgmt.models import CitymgmtCursor
from hub.db.models import utcnow
from protocols.citymgmt import CitymgmtError

log = structlog.get_logger(__name__)

FIRST_LOOKBACK = timedelta(days=1)
"""How far back the first poll of a feed reads."""
POLL_OVERLAP = timedelta(minutes=5)
FEEDS = ("requests", "updates")


class FeedPoller:
    """Polls both feeds every ``poll_interval`` seconds."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: Open311Client,
        applier: RequestApplier,
        counters: CitymgmtCounters,
        interval: float,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._applier = applier
        self._counters = counters
        self._interval = interval
        self._wake = asyncio.Event()

    def poll_now(self) -> None:
        """Poll at once rather than at the next interval."""
        self._wake.set()

    async def run(self) -> None:
        """Poll forever (cancel to stop); a failure is logged once, until it recovers."""
        healthy = True
        while True:
            self._wake.clear()
            try:
                for feed in FEEDS:
                    await self.poll_feed(feed)
            except (DeliveryError, CitymgmtError) as err:
                self._counters.poll("failed")
                if healthy:
                    log.warning("city-management feed poll failed", error=str(err))
                    healthy = False
            except Exception:
                self._counters.poll("failed")
                if healthy:
                    log.exception("city-management feed poll failed")
                    healthy = False
            else:
                if not healthy:
                    log.info("city-management feed polls recovered")
                    healthy = True
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()

    async def poll_feed(self, feed: str) -> int:
        """Read one window of ``feed`` and apply it; returns how many records it held."""
        end = utcnow()
        async with self._sessions() as session:
            cursor = await session.get(CitymgmtCursor, feed)
            since = cursor.polled_until if cursor is not None else None
        start = (since or end - FIRST_LOOKBACK) - POLL_OVERLAP
        count = await self._apply(feed, start, end)
        async with self._sessions() as session, session.begin():
            row = await session.get(CitymgmtCursor, feed, with_for_update=True)
            if row is None:
                session.add(CitymgmtCursor(feed=feed, polled_until=end))
            else:
                row.polled_until = max(row.polled_until or end, end)
        self._counters.poll("ok")
        return count

    async def _apply(self, feed: str, start: datetime, end: datetime) -> int:
        if feed == "requests":
            requests = await self._client.requests(start, end)
            for request in sorted(requests, key=lambda r: r.version or start):
                await self._applier.apply_request(request)
            return len(requests)
        updates = await self._client.updates(start, end)
        for update in sorted(updates, key=lambda u: u.updated_datetime):
            await self._applier.apply_update(update)
        return len(updates)
