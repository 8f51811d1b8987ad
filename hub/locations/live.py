"""Live ``worker.position`` pushes, coalesced: at most one per worker per interval.

A burst of pings from one phone (a queue flushed after a tunnel, a misbehaving app at
100/s) becomes one push now and, if more arrived meanwhile, one push with the newest
position when the interval has passed: browsers never see a flood, and always end with the
latest position. Live positions are a view of stored state, not records: a push the bus
could not take is superseded by the next one, and the latest position is in the database.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from hub.bus import BusUnavailable
from hub.events import WorkerPosition
from hub.locations.registry import WorkerState
from hub.metrics import LocationCounters
from hub.publisher import Publisher, channels_for_org
from hub.tasks import TaskRegistry

log = structlog.get_logger(__name__)

SOURCE = "hub/locations"


class LivePositions:
    """Coalesces and publishes live positions to the org channels of each worker's grid."""

    def __init__(
        self,
        publisher: Publisher,
        tasks: TaskRegistry,
        counters: LocationCounters,
        *,
        interval: float,
    ) -> None:
        self._publisher = publisher
        self._tasks = tasks
        self._counters = counters
        self._interval = interval
        self._pending: dict[str, tuple[WorkerState, WorkerPosition]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0

    def offer(self, state: WorkerState, position: WorkerPosition) -> None:
        """A newer position of ``state``'s worker: push it now or when its interval ends."""
        self._pending[state.worker_id] = (state, position)
        self._flush()

    def _flush(self) -> None:
        now = time.monotonic()
        wait: float | None = None
        ready: list[tuple[WorkerState, WorkerPosition]] = []
        for worker_id, (state, position) in list(self._pending.items()):
            due = state.last_push + self._interval - now
            if due > 0:
                wait = due if wait is None else min(wait, due)
                continue
            del self._pending[worker_id]
            state.last_push = now
            ready.append((state, position))
        if ready:
            self._counters.pushed += len(ready)
            self._tasks.spawn(self._publish(ready), name="live positions")
        if wait is not None:
            due_at = now + wait
            if self._timer is None or due_at < self._timer_due:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer_due = due_at
                self._timer = asyncio.get_running_loop().call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._flush()

    def close(self) -> None:
        """Drop pending pushes and the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()

    async def _publish(self, ready: list[tuple[WorkerState, WorkerPosition]]) -> None:
        for state, position in ready:
            envelope = position.envelope(source=SOURCE, org=state.grid, subject=state.worker_id)
            try:
                await self._publisher.publish_encoded(
                    envelope.encode(), channels_for_org(state.grid)
                )
            except BusUnavailable:
                log.debug("live position not pushed: bus unavailable", worker=state.worker_id)
