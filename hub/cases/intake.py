"""Group commit of new cases: reports arriving together are written in one transaction.

Each report on its own would cost a transaction of a dozen round trips and hold the
district's number counter locked until its commit, so concurrent reports would queue
behind each other. The intake instead takes whatever reports are waiting (up to a batch),
writes them with a handful of statements in one transaction (hub/cases/service.py
``new_cases``) and answers each caller once that commits: nothing is acknowledged before
it is stored, and a report the service refuses fails alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog

from hub.cases.lifecycle import Actor
from hub.cases.models import CaseReport, ExternalRef
from hub.cases.service import CaseError, CaseService, Report
from hub.db.models import Case, utcnow

log = structlog.get_logger(__name__)

MAX_BATCH = 200
"""Reports written per transaction at most."""
QUEUE_MAX = 5000
"""Reports waiting at most; callers beyond it wait for room (back-pressure)."""


@dataclass
class _Waiting:
    report: Report
    answer: asyncio.Future[Case] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CaseIntake:
    """Writes reports in batches; ``run`` is its task."""

    def __init__(self, cases: CaseService, *, max_batch: int = MAX_BATCH) -> None:
        self._cases = cases
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue(QUEUE_MAX)
        self.batches = 0
        self.written = 0

    async def submit(
        self, actor: Actor, spec: CaseReport, external: ExternalRef | None = None
    ) -> Case:
        """Queue a report; the stored case once its batch has committed."""
        waiting = _Waiting(Report(actor, spec, external))
        await self._queue.put(waiting)
        return await asyncio.shield(waiting.answer)

    async def run(self) -> None:
        """Write batches forever (cancel to stop: reports still queued are refused)."""
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                await self._write(batch)
        finally:
            while not self._queue.empty():
                self._queue.get_nowait().answer.set_exception(
                    CaseError(503, "service.unavailable", "the hub is stopping; report again")
                )

    async def _write(self, batch: list[_Waiting]) -> None:
        try:
            async with self._cases.sessions() as session, session.begin():
                outcomes = await self._cases.new_cases(
                    session, [w.report for w in batch], utcnow(), bulk=True
                )
        except Exception as err:
            log.warning("case batch not stored", reports=len(batch), error=repr(err))
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(err)
            return
        self._cases.relay.notify()
        self.batches += 1
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.answer.done():
                continue  # its caller gave up; the case is stored all the same
            if isinstance(outcome, CaseError):
                waiting.answer.set_exception(outcome)
            else:
                self.written += 1
                waiting.answer.set_result(outcome)
