"""Named background tasks held by strong reference, failures logged with where they began."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class TaskRegistry:
    """Spawns and tracks background tasks; ``close`` cancels and awaits what is left."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start ``coro`` as a named task; an exception it raises is logged with the
        stack of the place that spawned it."""
        origin = "".join(traceback.format_stack(limit=4)[:-1])
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, origin))
        return task

    def _done(self, task: asyncio.Task[Any], origin: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error(
                "background task failed",
                task=task.get_name(),
                spawned_at=origin,
                exc_info=(type(exc), exc, exc.__traceback__),
            )

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self, timeout: float) -> None:
        """Cancel every task and wait up to ``timeout`` seconds for them to finish."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
