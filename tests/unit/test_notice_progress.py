"""The read-progress coalescer: the first receipt of a quiet notice is pushed at once, a
burst gives one trailing push per interval, and notices do not hold each other back."""

from __future__ import annotations

import asyncio

from hub.notices.progress import ProgressCoalescer
from hub.tasks import TaskRegistry

INTERVAL = 0.2


async def test_a_burst_gives_one_push_at_once_and_one_trailing_push() -> None:
    pushed: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def publish(notice_id: str) -> None:
        await pushed.put((notice_id, loop.time()))

    tasks = TaskRegistry()
    coalescer = ProgressCoalescer(INTERVAL, publish, tasks)
    start = loop.time()
    coalescer.touch("a")
    first = await asyncio.wait_for(pushed.get(), 5)
    assert first[0] == "a" and first[1] - start < INTERVAL / 2
    for _ in range(50):
        coalescer.touch("a")
    coalescer.touch("b")  # another notice is not held back by a's interval
    other = await asyncio.wait_for(pushed.get(), 5)
    assert other[0] == "b" and other[1] - start < INTERVAL / 2
    trailing = await asyncio.wait_for(pushed.get(), 5)
    assert trailing[0] == "a" and trailing[1] - first[1] >= INTERVAL * 0.9
    assert pushed.empty()

    coalescer.touch("a")  # a read after the trailing push gets its own, an interval later
    again = await asyncio.wait_for(pushed.get(), 5)
    assert again[0] == "a" and again[1] - trailing[1] >= INTERVAL * 0.9
    await tasks.close(1)
