"""The grid workers the hub knows, in memory: each one's grid, datum, boundary tracker and
liveness. Loaded from the database at start; an id not in memory is looked up once (a worker
created through another hub process), and an unknown id is not looked up again for a while,
so garbage on the topics cannot turn into a query per message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.db.models import LatestPosition, Worker
from protocols.geo import Datum, GridIndex, GridTracker, HysteresisConfig, Presence, parse_datum

log = structlog.get_logger(__name__)

NEGATIVE_CACHE_MAX = 10_000
"""Unknown ids remembered at most; past it the cache starts afresh (bounded memory)."""


@dataclass(slots=True)
class WorkerState:
    """What the pipeline keeps per worker between batches."""

    worker_id: str
    grid: str
    datum: Datum
    tracker: GridTracker | None
    duty: str = "unknown"
    online: bool = False
    last_seen: float | None = None
    """Server receive time of the newest message (Unix seconds)."""
    last_fix: float = 0.0
    """Fix time of the newest stored position."""
    last_push: float = field(default=-1e18)
    """Monotonic time of the last live push."""


class WorkerRegistry:
    """Worker id → :class:`WorkerState`, backed by the ``workers`` table."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        grids: GridIndex,
        hysteresis: HysteresisConfig,
        *,
        recheck_after: float,
    ) -> None:
        self._sessions = sessions
        self._grids = grids
        self._hysteresis = hysteresis
        self._recheck_after = recheck_after
        self._states: dict[str, WorkerState] = {}
        self._unknown: dict[str, float] = {}
        self._warned_grids: set[str] = set()

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[WorkerState]:
        return iter(list(self._states.values()))

    def get(self, worker_id: str) -> WorkerState | None:
        """The worker's state if it is in memory."""
        return self._states.get(worker_id)

    @property
    def grids(self) -> GridIndex:
        """The grid polygons."""
        return self._grids

    async def load(self) -> int:
        """Read every active worker (and its last position) from the database."""
        self._states.clear()
        await self._fetch(None)
        return len(self._states)

    async def resolve(self, ids: Iterable[str]) -> None:
        """Load the given ids that are not in memory (one query), unless they were looked up
        and found missing within ``recheck_after`` seconds."""
        now = time.monotonic()
        wanted = {
            i
            for i in ids
            if i not in self._states and now - self._unknown.get(i, -1e18) > self._recheck_after
        }
        if not wanted:
            return
        wanted -= await self._fetch(wanted)
        if len(self._unknown) + len(wanted) > NEGATIVE_CACHE_MAX:
            self._unknown.clear()
        for worker_id in wanted:
            self._unknown[worker_id] = now

    async def _fetch(self, ids: set[str] | None) -> set[str]:
        """Put the active workers among ``ids`` (None: all) in memory, each with its last
        position; returns the ids found."""
        stmt = (
            select(Worker, LatestPosition)
            .outerjoin(LatestPosition, LatestPosition.worker_id == Worker.id)
            .where(Worker.active)
        )
        if ids is not None:
            stmt = stmt.where(Worker.id.in_(ids))
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        for worker, latest in rows:
            self._put(worker, latest)
        return {worker.id for worker, _ in rows}

    def upsert(self, worker: Worker) -> None:
        """Take a created or changed worker into memory (keeping its liveness)."""
        self._unknown.pop(worker.id, None)
        old = self._states.get(worker.id)
        if not worker.active:
            self._states.pop(worker.id, None)
            return
        state = self._put(worker, None)
        if old is not None:
            state.online, state.last_seen = old.online, old.last_seen
            state.last_fix, state.last_push = old.last_fix, old.last_push
            if old.grid == state.grid and old.tracker is not None:
                state.tracker = old.tracker

    def _put(self, worker: Worker, latest: LatestPosition | None) -> WorkerState:
        presence = Presence(latest.in_grid) if latest is not None else Presence.UNKNOWN
        tracker = None
        if worker.grid in self._grids:
            tracker = GridTracker(
                self._grids.area(worker.grid), config=self._hysteresis, state=presence
            )
        elif worker.grid not in self._warned_grids:
            self._warned_grids.add(worker.grid)
            log.warning("grid has no polygon: no boundary events for its workers", grid=worker.grid)
        state = WorkerState(
            worker_id=worker.id,
            grid=worker.grid,
            datum=parse_datum(worker.datum),
            tracker=tracker,
            duty=worker.duty,
            online=worker.online,
            last_seen=latest.received_at if latest is not None else None,
            last_fix=latest.fix_time if latest is not None else 0.0,
        )
        self._states[worker.id] = state
        return state
