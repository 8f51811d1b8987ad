"""Named background tasks held by strong reference, failures logged with where they began."""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

RECANCEL_INTERVAL = 1.0
"""Seconds between two cancellations of a task that has not ended yet (close)."""


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
        """Cancel every task and wait up to ``timeout`` seconds for them to finish. A task
        still running a second later is cancelled again: a library it was awaiting in may
        have swallowed the first cancellation (asyncpg resetting a connection does)."""
        pending = set(self._tasks)
        deadline = asyncio.get_running_loop().time() + timeout
        while pending:
            for task in pending:
                task.cancel()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            _, pending = await asyncio.wait(pending, timeout=min(left, RECANCEL_INTERVAL))


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until they have ended. Unlike ``await task`` inside
    ``suppress(CancelledError)``, a cancellation of the caller itself (a time-boxed
    shutdown stage running out) is not swallowed. What a task raised is logged."""
    running = [task for task in tasks if task is not asyncio.current_task()]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    for task in running:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("task failed while stopping", task=task.get_name(), error=repr(exc))


async def drain_forever(
    name: str, step: Callable[[], Awaitable[int]], wake: asyncio.Event, idle: float
) -> None:
    """Run ``step`` (one batch of a persistent queue; returns how much it took) forever:
    again at once while it finds work, else after ``wake`` is set or ``idle`` seconds. A
    failing step is logged once when it breaks and once when it recovers."""
    healthy = True
    while True:
        wake.clear()
        try:
            taken = await step()
        except Exception:
            if healthy:
                log.exception(f"{name} failed; retrying")
                healthy = False
            taken = 0
        else:
            if not healthy:
                log.info(f"{name} recovered")
                healthy = True
        if taken:
            continue
        with contextlib.suppress(TimeoutError):
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            async with asyncio.timeout(idle):
                await wake.wait()
