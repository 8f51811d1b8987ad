"""The position pipeline: validate phone messages, store each fix once, keep the latest
position per worker, raise grid-boundary and online/offline events through the outbox, and
push live positions coalesced to at most one per worker per interval.

Transport adapters (MQTT) call :meth:`LocationService.ingest` with raw batches and
acknowledge them to the broker only after it returned (hub/locations/ports.py). A batch is
one transaction: positions, latest positions, worker state and events commit together, and
the in-memory state (boundary trackers, liveness) changes only once the commit succeeded,
so a batch retried after a database outage yields the same events, once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import FromClause, bindparam, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from hub.config import LocationSettings
from hub.db.models import LatestPosition, Position, Worker
from hub.db.outbox import OutboxRelay, add_event
from hub.errors import NotReadyError
from hub.events import (
    EventData,
    WorkerEnteredGrid,
    WorkerLeftGrid,
    WorkerOffline,
    WorkerOnline,
)
from hub.locations.live import LivePositions
from hub.locations.ports import InboundMessage
from hub.locations.registry import WorkerRegistry, WorkerState
from hub.metrics import LocationCounters
from protocols.geo import GridTracker, LatLon, TransitionKind
from protocols.mqtt import (
    Ignored,
    LocationPing,
    PayloadRejected,
    RejectReason,
    StatusReport,
    parse,
)
from protocols.mqtt import (
    WorkerState as Duty,
)

log = structlog.get_logger(__name__)

SOURCE = "hub/locations"
REJECT_LOG_INTERVAL = 10.0
"""Seconds between log lines about rejected phone messages (counts are always kept)."""
LATEST_FIELDS = (
    "fix_time", "received_at", "lat", "lon", "accuracy_m", "battery_pct", "in_grid",
)  # fmt: skip
"""The columns of ``latest_positions`` an upsert overwrites."""
SLICE = 500
"""Messages validated or planned between two yields to the event loop: a batch of thousands
must not hold up the loop's other work (WebSockets, room media) for tens of milliseconds."""


@dataclass(slots=True)
class _Change:
    """A worker's state as this batch leaves it; applied to memory after commit."""

    state: WorkerState
    tracker: GridTracker | None
    online: bool
    duty: str
    last_seen: float | None
    persist_worker: bool = False
    newest: tuple[LocationPing, float, LatLon] | None = None


@dataclass(slots=True)
class _Batch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, _Change] = field(default_factory=dict)
    events: list[tuple[EventData, str, str]] = field(default_factory=list)


class LocationService:
    """Implements hub.locations.ports.LocationSink, and watches for silent workers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: WorkerRegistry,
        live: LivePositions,
        relay: OutboxRelay,
        settings: LocationSettings,
        counters: LocationCounters,
        *,
        dialect: str,
        topic_prefix: str = "",
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._live = live
        self._relay = relay
        self._settings = settings
        self._counters = counters
        self._postgres = dialect == "postgresql"
        # SQLite's statements; PostgreSQL takes a batch as arrays (_PG_POSITIONS, _PG_LATEST).
        self._store_positions = (
            sqlite.insert(Position).on_conflict_do_nothing().returning(Position.id)
        )
        upsert = sqlite.insert(LatestPosition)
        self._store_latest = upsert.on_conflict_do_update(
            index_elements=[LatestPosition.worker_id],
            set_={name: upsert.excluded[name] for name in LATEST_FIELDS},
        )
        self._store_workers = (
            update(Worker)
            .where(Worker.id == bindparam("b_id"))
            .values(online=bindparam("b_online"), duty=bindparam("b_duty"))
        )
        self._prefix = topic_prefix.rstrip("/")
        self._lock = asyncio.Lock()
        self._started = time.time()
        self._last_reject_log = 0.0

    def close(self) -> None:
        """Stop pending live pushes (shutdown)."""
        self._live.close()

    @property
    def registry(self) -> WorkerRegistry:
        """The workers in memory."""
        return self._registry

    # ---- ingest -------------------------------------------------------------------------

    def _reject(self, reason: str, detail: str) -> None:
        self._counters.rejected(reason)
        now = time.monotonic()
        if now - self._last_reject_log > REJECT_LOG_INTERVAL:
            self._last_reject_log = now
            log.info("phone message refused", reason=reason, detail=detail[:200])

    def _parse(self, batch: Sequence[InboundMessage]) -> list[tuple[Any, InboundMessage]]:
        now = time.time()
        parsed: list[tuple[Any, InboundMessage]] = []
        s = self._settings
        for message in batch:
            try:
                result = parse(
                    message.topic,
                    message.payload,
                    now=now,
                    max_skew=s.max_skew,
                    max_age=s.max_age,
                    max_bytes=s.max_payload_bytes,
                    prefix=self._prefix,
                )
            except PayloadRejected as err:
                self._reject(str(err.reason), str(err))
                continue
            if isinstance(result, Ignored):
                continue
            parsed.append((result, message))
        return parsed

    async def ingest(self, batch: Sequence[InboundMessage]) -> None:
        """Validate, store and publish a batch; see hub/locations/ports.py."""
        parsed: list[tuple[Any, InboundMessage]] = []
        for start in range(0, len(batch), SLICE):
            if start:
                await asyncio.sleep(0)
            parsed += self._parse(batch[start : start + SLICE])
        if not parsed:
            return
        try:
            await self._registry.resolve({p.worker_id for p, _ in parsed})
        except Exception as err:
            raise NotReadyError(f"worker registry unavailable: {err}") from err
        async with self._lock:
            plan = await self._plan(parsed)
            if plan.rows or plan.changes:
                await self._commit(plan)
                self._apply(plan)

    def _change(self, plan: _Batch, state: WorkerState) -> _Change:
        change = plan.changes.get(state.worker_id)
        if change is None:
            change = _Change(
                state=state,
                tracker=state.tracker.clone() if state.tracker is not None else None,
                online=state.online,
                duty=state.duty,
                last_seen=state.last_seen,
            )
            plan.changes[state.worker_id] = change
        return change

    def _seen(self, plan: _Batch, change: _Change, received_at: float) -> None:
        if not change.online:
            change.online = True
            change.persist_worker = True
            online = WorkerOnline(
                worker_id=change.state.worker_id,
                grid=change.state.grid,
                offline_since=change.last_seen,
            )
            plan.events.append((online, change.state.grid, change.state.worker_id))
        change.last_seen = max(change.last_seen or 0.0, received_at)

    async def _plan(self, parsed: list[tuple[Any, InboundMessage]]) -> _Batch:
        plan = _Batch()
        seen: set[tuple[str, float]] = set()
        pings: list[tuple[LocationPing, InboundMessage, _Change, LatLon]] = []
        for count, (item, message) in enumerate(parsed, start=1):
            if count % SLICE == 0:
                await asyncio.sleep(0)
            state = self._registry.get(item.worker_id)
            if state is None:
                self._reject(str(RejectReason.UNKNOWN_WORKER), item.worker_id)
                continue
            change = self._change(plan, state)
            if isinstance(item, StatusReport):
                self._status(plan, change, item, message)
                continue
            point = item.wgs84(state.datum)
            if not _on_the_globe(point):
                # A valid BD-09 (or GCJ-02) fix near a pole or the antimeridian converts to
                # a point past it; stored, it would fail the live push after the commit.
                self._reject(str(RejectReason.OUT_OF_RANGE), f"{item.worker_id}: {point}")
                continue
            key = (item.worker_id, item.fix_time)
            if key in seen:
                self._counters.duplicates += 1
                continue
            seen.add(key)
            self._seen(plan, change, message.received_at)
            pings.append((item, message, change, point))
        pings.sort(key=lambda p: p[0].fix_time)
        for count, (ping, message, change, point) in enumerate(pings, start=1):
            if count % SLICE == 0:
                await asyncio.sleep(0)
            self._position(plan, change, ping, message, point)
        return plan

    def _status(
        self, plan: _Batch, change: _Change, report: StatusReport, message: InboundMessage
    ) -> None:
        worker = change.state
        if report.state is Duty.OFFLINE:
            if change.online:
                change.online = False
                change.persist_worker = True
                offline = WorkerOffline(
                    worker_id=worker.worker_id,
                    grid=worker.grid,
                    reason="last_will",
                    last_seen=change.last_seen,
                )
                plan.events.append((offline, worker.grid, worker.worker_id))
            return
        self._seen(plan, change, message.received_at)
        duty = str(report.state)
        if duty != change.duty:
            change.duty = duty
            change.persist_worker = True

    def _position(
        self,
        plan: _Batch,
        change: _Change,
        ping: LocationPing,
        message: InboundMessage,
        point: LatLon,
    ) -> None:
        worker = change.state
        outside: bool | None = None
        tracker = change.tracker
        if tracker is not None:
            outside = not tracker.area.contains(point)
            transition = tracker.observe(point, ping.accuracy_m, ping.fix_time, inside=not outside)
            if transition is not None:
                cls = (
                    WorkerLeftGrid if transition.kind is TransitionKind.LEFT else WorkerEnteredGrid
                )
                event = cls(
                    worker_id=worker.worker_id,
                    grid=worker.grid,
                    since=transition.since,
                    lat=point.lat,
                    lon=point.lon,
                )
                plan.events.append((event, worker.grid, worker.worker_id))
        plan.rows.append(
            {
                "worker_id": ping.worker_id,
                "fix_time": ping.fix_time,
                "sent_time": ping.sent_time,
                "received_at": message.received_at,
                "lat": point.lat,
                "lon": point.lon,
                "accuracy_m": ping.accuracy_m,
                "altitude_m": ping.altitude_m,
                "speed_mps": ping.speed_mps,
                "heading_deg": ping.heading_deg,
                "battery_pct": ping.battery_pct,
                "source_datum": str(ping.resolved_datum(worker.datum)),
                "outside": outside,
            }
        )
        newest_time = change.newest[0].fix_time if change.newest else worker.last_fix
        if ping.fix_time > newest_time:
            change.newest = (ping, message.received_at, point)

    async def _commit(self, plan: _Batch) -> None:
        # Core statements built once and run with one parameter list each (executemany):
        # a batch costs three statements, not one per worker.
        workers = [
            {"b_id": change.state.worker_id, "b_online": change.online, "b_duty": change.duty}
            for change in plan.changes.values()
            if change.persist_worker
        ]
        # In worker order, so hubs sharing a subscription lock the rows in the same order.
        latest = [_latest_row(c) for _, c in sorted(plan.changes.items()) if c.newest]
        try:
            async with self._sessions() as session, session.begin():
                conn = await session.connection()
                stored = 0
                if self._postgres:
                    if plan.rows:
                        stored = await _pg_store_positions(conn, plan.rows)
                    if latest:
                        await _pg_store_latest(conn, latest)
                else:
                    if plan.rows:
                        result = await conn.execute(self._store_positions, plan.rows)
                        stored = len(result.all())
                    if latest:
                        await conn.execute(self._store_latest, latest)
                if workers:
                    await conn.execute(self._store_workers, workers)
                for event, grid, subject in plan.events:
                    add_event(session, event.envelope(source=SOURCE, org=grid, subject=subject))
        except Exception as err:
            raise NotReadyError(f"positions not stored: {type(err).__name__}: {err}") from err
        self._counters.stored += stored
        self._counters.duplicates += len(plan.rows) - stored

    def _apply(self, plan: _Batch) -> None:
        """Bring memory in line with the committed batch. Nothing here may raise: the batch
        is committed, and an error would make the adapter retry it (events twice)."""
        offers = []
        for change in plan.changes.values():
            state = change.state
            state.tracker = change.tracker
            state.online = change.online
            state.duty = change.duty
            state.last_seen = change.last_seen
            if change.newest is not None:
                state.last_fix = change.newest[0].fix_time
                offers.append((state, change.newest))
        if plan.events:
            self._counters.events += len(plan.events)
            self._relay.notify()
        for state, newest in offers:
            try:
                self._live.offer(state, newest)
            except Exception:
                # A live push is a view of stored state; the next fix supersedes it.
                log.warning("live position not offered", worker=state.worker_id, exc_info=True)

    # ---- silence ------------------------------------------------------------------------

    async def check_silence(self, now: float | None = None) -> int:
        """Raise ``worker.offline`` once for each online worker, not off duty, silent for
        ``offline_after`` seconds (time the hub itself was down does not count). Returns
        how many went offline."""
        now = time.time() if now is None else now
        limit = self._settings.offline_after
        async with self._lock:
            silent = [
                state
                for state in self._registry
                if state.online
                and state.duty != Duty.OFF_DUTY
                and now - max(state.last_seen or 0.0, self._started) > limit
            ]
            if not silent:
                return 0
            try:
                async with self._sessions() as session, session.begin():
                    for state in silent:
                        await session.execute(
                            update(Worker).where(Worker.id == state.worker_id).values(online=False)
                        )
                        event = WorkerOffline(
                            worker_id=state.worker_id,
                            grid=state.grid,
                            reason="silent",
                            last_seen=state.last_seen,
                        )
                        add_event(
                            session,
                            event.envelope(source=SOURCE, org=state.grid, subject=state.worker_id),
                        )
            except Exception as err:
                log.warning("offline check not stored; retrying", error=str(err))
                return 0
            for state in silent:
                state.online = False
            self._counters.events += len(silent)
        self._relay.notify()
        return len(silent)

    async def watch_silence(self) -> None:
        """Run :meth:`check_silence` forever (a background task)."""
        while True:
            await asyncio.sleep(self._settings.offline_check_interval)
            await self.check_silence()


def _on_the_globe(point: LatLon) -> bool:
    """True for a WGS-84 point within ±90° latitude and ±180° longitude (NaN is not)."""
    return -90.0 <= point.lat <= 90.0 and -180.0 <= point.lon <= 180.0


_PG_ARRAY = {str: "text[]", float: "float8[]", bool: "boolean[]", int: "bigint[]"}
"""Array casts without length or precision: a value too long for its column fails the
insert, as it would bound on its own, instead of being cut short by the cast."""


def _unnest_insert(table: FromClause, columns: Sequence[str], tail: str) -> str:
    """``INSERT INTO table (columns) SELECT * FROM unnest($1::type[], …) <tail>``: a whole
    batch as one array per column, one statement whatever its size."""
    arrays = ", ".join(
        f"${n}::{_PG_ARRAY[table.c[name].type.python_type]}"
        for n, name in enumerate(columns, start=1)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {tail}"


_POSITION_COLUMNS = tuple(c.name for c in Position.__table__.c if c.name != "id")
_PG_POSITIONS = (
    "WITH stored AS ("
    + _unnest_insert(
        Position.__table__,
        _POSITION_COLUMNS,
        "ON CONFLICT (worker_id, fix_time) DO NOTHING RETURNING 1",
    )
    + ") SELECT count(*) FROM stored"
)
_LATEST_COLUMNS = ("worker_id", *LATEST_FIELDS)
_PG_LATEST = _unnest_insert(
    LatestPosition.__table__,
    _LATEST_COLUMNS,
    "ON CONFLICT (worker_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in LATEST_FIELDS),
)


def _columns(rows: list[dict[str, Any]], names: Sequence[str]) -> tuple[list[Any], ...]:
    return tuple([row[name] for row in rows] for name in names)


async def _pg_store_positions(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """PostgreSQL: the batch's positions in one statement (SQLAlchemy's executemany would
    send pages of multi-row VALUES, binding every value of every row separately); returns
    how many were new."""
    result = await conn.exec_driver_sql(_PG_POSITIONS, _columns(rows, _POSITION_COLUMNS))
    return int(result.scalar_one())


async def _pg_store_latest(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.exec_driver_sql(_PG_LATEST, _columns(rows, _LATEST_COLUMNS))


def _latest_row(change: _Change) -> dict[str, Any]:
    """The ``latest_positions`` row of a worker whose newest fix this batch brought."""
    assert change.newest is not None
    ping, received_at, point = change.newest
    in_grid = change.tracker.state if change.tracker is not None else "unknown"
    return {
        "worker_id": change.state.worker_id,
        "fix_time": ping.fix_time,
        "received_at": received_at,
        "lat": point.lat,
        "lon": point.lon,
        "accuracy_m": ping.accuracy_m,
        "battery_pct": ping.battery_pct,
        "in_grid": str(in_grid),
    }
