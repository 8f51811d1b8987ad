"""Time limits and supervision alerts (限时办结, 督办): the deadline sweeper.

Deadlines live in the database (``warn_at``, ``due_at``), not in timers, so a restart loses
none. Each sweep claims the cases whose yellow or red moment has passed with a conditional
UPDATE that only one process (and one sweep) can win, and writes the alert's timeline row
and event in the same transaction: each alert fires exactly once per deadline, across
restarts and hub processes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hub.cases.lifecycle import TIMED
from hub.cases.service import HUB_ACTOR, CaseService
from hub.db.models import Case, utcnow

log = structlog.get_logger(__name__)

SWEEP_BATCH = 200
"""Cases claimed per transaction."""
ALERTS: tuple[tuple[str, InstrumentedAttribute[datetime | None], str], ...] = (
    ("due_soon", Case.warn_at, "due_soon_raised_at"),
    ("overdue", Case.due_at, "overdue_raised_at"),
)
_TIMED = [state.value for state in TIMED]


class DeadlineSweeper:
    """Raises ``case.due_soon`` and ``case.overdue`` once each per deadline."""

    def __init__(self, cases: CaseService, interval: float) -> None:
        self._cases = cases
        self._interval = interval
        self.raised = {"due_soon": 0, "overdue": 0}
        self.healthy = True

    async def run(self) -> None:
        """Sweep forever (cancel to stop); a failed sweep is logged once and retried."""
        while True:
            try:
                await self.sweep()
            except Exception:
                if self.healthy:
                    log.exception("deadline sweep failed; retrying")
                    self.healthy = False
            else:
                if not self.healthy:
                    log.info("deadline sweeps recovered")
                    self.healthy = True
            await asyncio.sleep(self._interval)

    async def sweep(self, now: datetime | None = None) -> int:
        """Raise every alert that has fallen due; returns how many were raised."""
        now = now or utcnow()
        total = 0
        for kind, moment, flag in ALERTS:
            while True:
                async with self._cases.sessions() as session, session.begin():
                    raised = await self._claim(session, kind, moment, flag, now)
                total += raised
                self.raised[kind] += raised
                if raised:
                    self._cases.relay.notify()
                if raised < SWEEP_BATCH:
                    break
        return total

    async def _claim(
        self,
        session: AsyncSession,
        kind: str,
        moment: InstrumentedAttribute[datetime | None],
        flag: str,
        now: datetime,
    ) -> int:
        flag_column = getattr(Case, flag)
        due = (Case.state.in_(_TIMED), moment.is_not(None), moment <= now, flag_column.is_(None))
        ids = list(await session.scalars(select(Case.id).where(*due).limit(SWEEP_BATCH)))
        if not ids:
            return 0
        claimed = list(
            await session.scalars(
                update(Case)
                .where(Case.id.in_(ids), *due)
                .values({flag: now})
                .returning(Case.id)
                .execution_options(synchronize_session=False)
            )
        )
        cases = await session.scalars(select(Case).where(Case.id.in_(claimed)).order_by(Case.id))
        for case in cases:
            assert case.due_at is not None
            note = f"deadline {case.due_at.isoformat()}"
            await self._cases.record(
                session, case, kind, HUB_ACTOR, note=note, from_state=case.state, now=now
            )
        if claimed:
            log.info("deadline alerts raised", kind=kind, cases=len(claimed))
        return len(claimed)
