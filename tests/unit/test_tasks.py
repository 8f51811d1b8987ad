"""Stopping background tasks: cancel_and_wait waits for a task to end without swallowing
a cancellation of its caller (a time-boxed shutdown stage running out)."""

from __future__ import annotations

import asyncio

import pytest

from hub.tasks import cancel_and_wait


async def test_a_stage_timeout_is_not_swallowed_while_a_task_ignores_its_cancel() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # clean-up that outlasts the stage

    task = asyncio.create_task(stubborn())
    await started.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # the stage's time box
            await cancel_and_wait([task])
    assert not task.done()
    release.set()
    await asyncio.wait_for(task, 5)
    assert not task.cancelled()  # it finished its clean-up and returned


async def test_it_waits_for_every_task_and_leaves_what_one_raised_on_it() -> None:
    ended: list[str] = []
    running: list[str] = []
    all_running = asyncio.Event()

    def up(name: str) -> None:
        running.append(name)
        if len(running) == 3:
            all_running.set()

    async def quiet(name: str) -> None:
        up(name)
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    async def failing() -> None:
        up("broken")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("broke while stopping") from None

    tasks = [asyncio.create_task(quiet("a")), asyncio.create_task(quiet("b"))]
    broken = asyncio.create_task(failing(), name="broken")
    await all_running.wait()
    await cancel_and_wait([*tasks, broken])
    assert sorted(ended) == ["a", "b"]
    assert all(t.done() for t in [*tasks, broken])
    assert isinstance(broken.exception(), RuntimeError)
