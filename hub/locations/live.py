"""Live ``worker.position`` pushes, coalesced: at most one per worker per interval.

A burst of pings from one phone (a queue flushed after a tunnel, a misbehaving app at
100/s) becomes one push now and, if more arrived meanwhile, one push with the newest
position when the interval has passed: browsers never see a flood, and always end with the
latest position. Live positions are a view of stored state, not records: a push the bus
could not take is superseded by the next one, and the latest position is in the database.
"""

from __future__ import annotations

import asyncio
import heapq
import time

import structlog
from pydantic import ValidationError

from hub.bus import BusUnavailable
from hub.events import WorkerPosition
from hub.locations.registry import WorkerState
from hub.metrics import LocationCounters
from hub.publisher import Publisher, channels_for_org
from hub.tasks import TaskRegistry
from protocols.geo import LatLon
from protocols.mqtt import LocationPing

log = structlog.get_logger(__name__)

SOURCE = "hub/locations"
LiveFix = tuple[LocationPing, float, LatLon]
"""A worker's newest stored fix: the ping, the hub's receive time, the WGS-84 point. The
event is built from it only when it is pushed (most fixes are superseded before that)."""
PUSH_SLACK = 0.02
"""Seconds a push that fell due may wait, so pushes falling due together go out in one
task and one timer: it never makes a push earlier, so still at most one per interval."""


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
        self._pending: dict[str, tuple[WorkerState, LiveFix]] = {}
        self._due: list[tuple[float, str]] = []  # heap: when each pending worker may go
        self._ready: list[tuple[WorkerState, LiveFix]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._send_scheduled = False

    def offer(self, state: WorkerState, fix: LiveFix) -> None:
        """A newer position of ``state``'s worker: push it now or when its interval ends.

        Constant work per call (a heap push at most): a batch offers one position per
        worker, and thousands of workers may be waiting for their interval to end.
        """
        worker_id = state.worker_id
        if worker_id in self._pending:
            self._pending[worker_id] = (state, fix)  # keeps its place in the heap
            return
        now = time.monotonic()
        due = state.last_push + self._interval
        if due <= now:
            state.last_push = now
            self._ready.append((state, fix))
            self._schedule_send()
            return
        self._pending[worker_id] = (state, fix)
        heapq.heappush(self._due, (due, worker_id))
        self._arm(due)

    def _arm(self, due: float) -> None:
        if self._timer is not None and self._timer_due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        delay = due - time.monotonic() + PUSH_SLACK
        self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = time.monotonic()
        due_list = self._due
        while due_list and due_list[0][0] <= now:
            _, worker_id = heapq.heappop(due_list)
            entry = self._pending.pop(worker_id, None)
            if entry is None:
                continue
            state = entry[0]
            due = state.last_push + self._interval
            if due > now:  # pushed meanwhile through another path: wait again
                self._pending[worker_id] = entry
                heapq.heappush(due_list, (due, worker_id))
                continue
            state.last_push = now
            self._ready.append(entry)
        if self._ready:
            self._schedule_send()
        if due_list:
            self._arm(due_list[0][0])

    def _schedule_send(self) -> None:
        # One publishing task for everything that fell due in this turn of the loop.
        if not self._send_scheduled:
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._send_scheduled = False
        ready, self._ready = self._ready, []
        if ready:
            self._counters.pushed += len(ready)
            self._tasks.spawn(self._publish(ready), name="live positions")

    def close(self) -> None:
        """Drop pending pushes and the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
        self._due.clear()
        self._ready.clear()

    async def _publish(self, ready: list[tuple[WorkerState, LiveFix]]) -> None:
        for state, (ping, received_at, point) in ready:
            try:
                position = WorkerPosition(
                    worker_id=state.worker_id,
                    lat=point.lat,
                    lon=point.lon,
                    accuracy_m=ping.accuracy_m,
                    fix_time=ping.fix_time,
                    received_at=received_at,
                    battery_pct=ping.battery_pct,
                    speed_mps=ping.speed_mps,
                    heading_deg=ping.heading_deg,
                )
            except ValidationError as err:  # stored already; one bad push must not stop the rest
                log.warning("live position not pushed", worker=state.worker_id, error=str(err))
                continue
            envelope = position.envelope(source=SOURCE, org=state.grid, subject=state.worker_id)
            try:
                await self._publisher.publish_encoded(
                    envelope.encode(), channels_for_org(state.grid)
                )
            except BusUnavailable:
                log.debug("live position not pushed: bus unavailable", worker=state.worker_id)
