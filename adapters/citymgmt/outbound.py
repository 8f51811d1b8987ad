"""The persistent queue of status updates we owe the city-management system.

Enqueue. ``on_change`` runs inside the case service's transaction (CaseService.on_change):
a state change of a case it owns, made by anyone but the system itself, adds one delivery
row that commits with the change or not at all. ``update_id`` is the row's id, fixed once
written, so the receiver can drop a re-send; ``seq`` is the case's version at the change.

Order. A row is due only when every earlier row of its case (lower ``seq``) is delivered:
update N+1 of a case is never sent before N is acknowledged. A dead-lettered update blocks
its case's later updates until it is retried (POST .../retry) — sending them past it would
leave the receiver with the wrong final status.

Sending. The sender claims due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
hubs share the queue), marks them ``sending`` with the claim time and attempt number
*before* it sends, then records ``delivered`` or a failure guarded by that attempt number.
A temporary failure (5xx, 408/429, timeout, no connection) re-queues the row with a capped,
jittered exponential back-off; a permanent one (other 4xx) or the last allowed attempt
dead-letters it.

Crash safety. A row left ``sending`` by a dead process is claimed again once its lease
(``LEASE_TIMEOUTS`` request timeouts) has run out and sent again with the same update_id.
So a hub killed after the receiver took an update but before the acknowledgement was
committed sends that update twice (at-least-once, same update_id); nothing is lost, and
the order per case holds because the later updates wait for the re-sent one.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, event, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from adapters.citymgmt.client import DeliveryError, Open311Client
from adapters.citymgmt.mapping import SYSTEM
from adapters.citymgmt.metrics import CitymgmtCounters
from adapters.citymgmt.models import CitymgmtDelivery
from hub.config import CitymgmtSettings
from hub.db.models import Case, CaseEntry, utcnow
from hub.tasks import drain_forever
from protocols.citymgmt import RequestUpdate, status_for
from protocols.envelope import new_event_id

log = structlog.get_logger(__name__)

PUSHED_ACTIONS = frozenset({
    "register", "reject", "assign", "start", "feed_back", "close", "return", "evaluate",
    "escalate",
})  # fmt: skip
"""Timeline actions that change where the case stands for them."""
BATCH_SIZE = 50
"""Rows claimed per sweep (at most one per case, so up to this many cases in parallel)."""
LEASE_TIMEOUTS = 3
"""A claimed row is taken over after this many request timeouts without an outcome."""
IDLE_SWEEP_MAX = 1.0
"""Longest wait between sweeps when nothing woke the sender (rows due for a retry)."""
MAX_ERROR_CHARS = 500
_WAKE_KEY = "citymgmt_wake"


def backoff(attempt: int, low: float, high: float) -> float:
    """Delay before the next attempt: exponential from ``low``, capped at ``high``, with
    full jitter in its upper half so many rows do not retry in step."""
    delay = min(high, low * 2 ** (attempt - 1))
    return random.uniform(delay / 2, delay)


def update_of(row: CitymgmtDelivery) -> RequestUpdate:
    """The wire update a delivery row carries."""
    return RequestUpdate(
        update_id=row.id,
        service_request_id=row.service_request_id,
        status=row.status,
        updated_datetime=row.updated_datetime,
        description=row.description,
        external_status_code=row.external_status_code,
    )


class DeliveryQueue:
    """Fills the queue from case changes and drains it to the city-management system."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: CitymgmtSettings,
        counters: CitymgmtCounters,
        *,
        skip_locked: bool,
    ) -> None:
        self._sessions = sessions
        self.settings = settings
        self.counters = counters
        self._skip_locked = skip_locked
        self._wake = asyncio.Event()
        self.client: Open311Client | None = None

    def notify(self) -> None:
        """Sweep now rather than at the next idle timeout."""
        self._wake.set()

    # -- enqueue (inside the case service's transaction) ----------------------------------

    async def on_change(self, session: AsyncSession, case: Case, entry: CaseEntry) -> None:
        """CaseService hook: queue a status update for a change of a case it owns."""
        if case.external_system != SYSTEM or case.external_id is None:
            return
        if entry.action not in PUSHED_ACTIONS or (
            entry.actor_kind == "system" and entry.actor_id == SYSTEM
        ):
            return
        session.add(
            CitymgmtDelivery(
                id=new_event_id(),
                case_id=case.id,
                seq=case.version,
                service_request_id=case.external_id,
                status=status_for(case.state),
                external_status_code=case.state,
                description=entry.note,
                updated_datetime=entry.at,
                state="queued",
                attempts=0,
                next_attempt_at=entry.at,
            )
        )
        if not session.info.get(_WAKE_KEY):
            session.info[_WAKE_KEY] = True
            event.listen(session.sync_session, "after_commit", self._committed, once=True)

    def _committed(self, session: Any) -> None:
        session.info.pop(_WAKE_KEY, None)
        self._wake.set()

    # -- sending --------------------------------------------------------------------------

    async def run(self) -> None:
        """Send forever (cancel to stop)."""
        idle = min(IDLE_SWEEP_MAX, self.settings.retry_min_delay)
        await drain_forever("city-management sender", self.send_once, self._wake, idle)

    async def send_once(self) -> int:
        """Claim one batch of due rows and deliver them; returns how many were claimed."""
        client = self.client
        if client is None:
            return 0
        claimed = await self._claim()
        results = await asyncio.gather(
            *(self._deliver(client, row, attempt) for row, attempt in claimed),
            return_exceptions=True,
        )
        for (row, _), result in zip(claimed, results, strict=True):
            if isinstance(result, Exception):
                log.error("city-management attempt not recorded", update_id=row.id,
                          exc_info=(type(result), result, result.__traceback__))  # fmt: skip
            elif isinstance(result, BaseException):
                raise result
        return len(claimed)

    async def _claim(self) -> list[tuple[CitymgmtDelivery, int]]:
        now = utcnow()
        stale = now - timedelta(seconds=LEASE_TIMEOUTS * self.settings.timeout)
        row = CitymgmtDelivery
        earlier = aliased(CitymgmtDelivery)
        blocked = exists().where(
            earlier.case_id == row.case_id, earlier.seq < row.seq, earlier.state != "delivered"
        )
        query = (
            select(row)
            .where(
                or_(
                    and_(row.state == "queued", row.next_attempt_at <= now),
                    and_(row.state == "sending", row.claimed_at < stale),
                ),
                ~blocked,
            )
            .order_by(row.next_attempt_at, row.id)
            .limit(BATCH_SIZE)
        )
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True, of=row)
        claimed: list[tuple[CitymgmtDelivery, int]] = []
        async with self._sessions() as session, session.begin():
            for found in (await session.scalars(query)).all():
                if found.state == "sending":
                    self.counters.reclaimed += 1
                    log.warning("city-management update sent again after an unfinished "
                                "attempt", update_id=found.id, attempt=found.attempts)  # fmt: skip
                found.state = "sending"
                found.attempts += 1
                found.claimed_at = now
                claimed.append((found, found.attempts))
        return claimed

    async def _deliver(self, client: Open311Client, row: CitymgmtDelivery, attempt: int) -> None:
        try:
            await client.post_update(update_of(row))
        except DeliveryError as err:
            self.counters.attempt_failed(err.reason)
            await self._record_failure(row, attempt, err)
            return
        guard = _guard(row.id, attempt)
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(CitymgmtDelivery)
                .where(*guard)
                .values(state="delivered", delivered_at=utcnow(), last_error=None)
            )
        if _rowcount(result) == 1:
            self.counters.delivered += 1
            self._wake.set()  # the case's next update is due now
        else:
            log.warning("city-management claim lost before recording", update_id=row.id)

    async def _record_failure(
        self, row: CitymgmtDelivery, attempt: int, err: DeliveryError
    ) -> None:
        error = err.message[:MAX_ERROR_CHARS]
        s = self.settings
        give_up = not err.temporary or attempt >= s.max_attempts
        values: dict[str, Any]
        if give_up:
            values = {"state": "dead", "last_error": error}
        else:
            delay = backoff(attempt, s.retry_min_delay, s.retry_max_delay)
            values = {
                "state": "queued",
                "last_error": error,
                "next_attempt_at": utcnow() + timedelta(seconds=delay),
            }
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(CitymgmtDelivery).where(*_guard(row.id, attempt)).values(**values)
            )
        if give_up and _rowcount(result) == 1:
            self.counters.dead += 1
            log.warning("city-management update dead-lettered", update_id=row.id,
                        case_id=row.case_id, attempts=attempt, error=error)  # fmt: skip

    # -- the API's view -------------------------------------------------------------------

    async def rows(
        self, state: str | None, case_id: str | None, limit: int
    ) -> list[CitymgmtDelivery]:
        """Delivery rows, newest first, optionally of one state or one case."""
        query = select(CitymgmtDelivery).order_by(CitymgmtDelivery.id.desc()).limit(limit)
        if state is not None:
            query = query.where(CitymgmtDelivery.state == state)
        if case_id is not None:
            query = query.where(CitymgmtDelivery.case_id == case_id)
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def since(self, start: datetime, end: datetime, limit: int) -> list[CitymgmtDelivery]:
        """Updates whose time falls in [start, end], oldest first (the served feed)."""
        query = (
            select(CitymgmtDelivery)
            .where(
                CitymgmtDelivery.updated_datetime >= start.astimezone(UTC),
                CitymgmtDelivery.updated_datetime <= end.astimezone(UTC),
            )
            .order_by(CitymgmtDelivery.updated_datetime, CitymgmtDelivery.seq)
            .limit(limit)
        )
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())

    async def retry(self, delivery_id: str) -> CitymgmtDelivery | None:
        """Put a dead-lettered row back in the queue with fresh attempts; None if there
        is no such row, the row unchanged if it is not dead."""
        async with self._sessions() as session, session.begin():
            row = await session.get(CitymgmtDelivery, delivery_id, with_for_update=True)
            if row is None or row.state != "dead":
                return row
            row.state = "queued"
            row.attempts = 0
            row.next_attempt_at = utcnow()
        self._wake.set()
        return row

    async def refresh_counts(self) -> None:
        """Read the number of rows per state into the queue gauge."""
        query = select(CitymgmtDelivery.state, func.count()).group_by(CitymgmtDelivery.state)
        async with self._sessions() as session:
            counts = {state: int(n) for state, n in (await session.execute(query)).all()}
        for state in self.counters.queue:
            self.counters.queue[state] = counts.get(state, 0)


def _guard(delivery_id: str, attempt: int) -> tuple[Any, ...]:
    return (
        CitymgmtDelivery.id == delivery_id,
        CitymgmtDelivery.state == "sending",
        CitymgmtDelivery.attempts == attempt,
    )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
