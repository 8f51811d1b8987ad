"""Coalescing read-progress pushes: at most one per notice per interval, the trailing one
always sent, the counts read when it goes out (so it is never stale)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hub.tasks import TaskRegistry

PRUNE_ABOVE = 1000
"""Forget old per-notice timestamps once this many are kept."""


class ProgressCoalescer:
    """``touch(notice_id)`` after each first read; ``publish(notice_id)`` runs at most once
    per ``interval`` per notice, and once more after the last touch of a burst."""

    def __init__(
        self,
        interval: float,
        publish: Callable[[str], Awaitable[None]],
        tasks: TaskRegistry,
    ) -> None:
        self._interval = interval
        self._publish = publish
        self._tasks = tasks
        self._last: dict[str, float] = {}
        self._scheduled: set[str] = set()

    def touch(self, notice_id: str) -> None:
        """A receipt was stored: schedule a push unless one is already due."""
        if notice_id in self._scheduled:
            return  # the scheduled push reads the counts when it runs: it includes this one
        now = asyncio.get_running_loop().time()
        if len(self._last) > PRUNE_ABOVE:
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        last = self._last.get(notice_id)
        delay = 0.0 if last is None else max(0.0, last + self._interval - now)
        self._scheduled.add(notice_id)
        self._tasks.spawn(self._fire(notice_id, delay), name="notice read progress")

    async def _fire(self, notice_id: str, delay: float) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            # Reads from here on schedule the next push (the trailing one of a burst).
            self._scheduled.discard(notice_id)
        self._last[notice_id] = asyncio.get_running_loop().time()
        await self._publish(notice_id)
