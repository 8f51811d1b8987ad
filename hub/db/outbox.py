"""The transactional outbox: events are written in the transaction of the state change
that caused them; the relay publishes them in order and marks them.

A crash between commit and publish loses nothing (the row is still unpublished); a crash
between publish and mark publishes the row again after restart, and consumers deduplicate
by event id. On PostgreSQL several hub processes may run the relay: rows are claimed with
``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Iterable
from datetime import timedelta
from typing import cast

import structlog
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.bus import BusUnavailable
from hub.config import OutboxSettings
from hub.db.models import OutboxEvent, utcnow
from hub.publisher import Publisher, channels_for
from protocols.envelope import Envelope

log = structlog.get_logger(__name__)

RETENTION = timedelta(days=1)
CLEANUP_EVERY = 600.0
OUTBOX = cast(Table, OutboxEvent.__table__)
# Test-only fault injection: exit the process right after publishing, before marking.
CRASH_AFTER_PUBLISH_ENV = "HUB_TEST_CRASH_AFTER_PUBLISH"


def add_event(session: AsyncSession, envelope: Envelope, extra: Iterable[str] = ()) -> None:
    """Stage an event in the caller's transaction (routed to its org channels + extra)."""
    add_personal_event(session, envelope, channels_for(envelope, extra))


class OutboxRelay:
    """Publishes committed outbox rows to the bus."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        settings: OutboxSettings,
        *,
        skip_locked: bool,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._settings = settings
        self._skip_locked = skip_locked
        self._wake = asyncio.Event()
        self.published = 0
        self.failures = 0
        self.healthy = True

    def notify(self) -> None:
        """Called after a commit that added events: publish now rather than at the poll."""
        self._wake.set()

    async def run(self) -> None:
        """Relay forever (cancel to stop)."""
        delay = self._settings.poll_interval
        last_cleanup = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                more = await self.relay_once()
            except BusUnavailable:
                self.failures += 1
                if self.healthy:
                    log.warning("outbox relay paused: bus unavailable")
                    self.healthy = False
                delay = min(delay * 2, self._settings.retry_max_delay)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                continue
            except Exception:
                self.failures += 1
                if self.healthy:
                    log.exception("outbox relay failed; retrying")
                    self.healthy = False
                delay = min(delay * 2, self._settings.retry_max_delay)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                continue
            if not self.healthy:
                log.info("outbox relay recovered")
                self.healthy = True
            delay = self._settings.poll_interval
            if loop.time() - last_cleanup > CLEANUP_EVERY:
                last_cleanup = loop.time()
                await self._cleanup()
            if more:
                continue
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                async with asyncio.timeout(self._settings.poll_interval):
                    await self._wake.wait()

    async def relay_once(self) -> bool:
        """Publish one batch; True when more rows may be waiting."""
        async with self._sessions() as session, session.begin():
            # Columns, not entities, and plain UPDATEs: the sweep reads each row once and
            # never changes it through the session, so the identity map and the ORM's
            # bookkeeping would be pure cost on the path of every event.
            query = (
                select(OutboxEvent.id, OutboxEvent.payload, OutboxEvent.channels)
                .where(OutboxEvent.published_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(self._settings.batch_size)
            )
            if self._skip_locked:
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.execute(query)).all())
            if not rows:
                return False
            done: list[int] = []
            error: BusUnavailable | None = None
            for row in rows:
                try:
                    await self._publisher.publish_encoded(row.payload.encode(), row.channels)
                except BusUnavailable as err:
                    error = err
                    break
                if os.environ.get(CRASH_AFTER_PUBLISH_ENV):
                    os._exit(70)
                done.append(row.id)
            if done:
                await session.execute(
                    update(OUTBOX).where(OUTBOX.c.id.in_(done)).values(published_at=utcnow())
                )
            if error is not None:
                await session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id == rows[len(done)].id)
                    .values(attempts=OUTBOX.c.attempts + 1)
                )
        self.published += len(done)
        if error is not None:
            raise error
        return len(rows) == self._settings.batch_size

    async def pending(self) -> int:
        """Rows not yet published (for metrics)."""
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None))
            )
            return int(count or 0)

    async def _cleanup(self) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(OutboxEvent).where(OutboxEvent.published_at < utcnow() - RETENTION)
            )


def add_personal_event(session: AsyncSession, envelope: Envelope, channels: Iterable[str]) -> None:
    """Stage an event for ``channels`` only, not its org channels: a notice or a receipt
    is news for the people it names, not for everyone watching the sender's org."""
    session.add(outbox_row(envelope, channels))


def outbox_row(envelope: Envelope, channels: Iterable[str]) -> OutboxEvent:
    """The outbox row of an event for exactly ``channels`` (not yet added anywhere)."""
    return OutboxEvent(
        event_id=envelope.id,
        type=envelope.type,
        channels=list(channels),
        payload=envelope.encode().decode(),
    )
