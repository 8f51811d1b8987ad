"""Commands from the orchestrator to a worker process, over a multiprocessing pipe.

A worker (a client swarm or the publisher) serves commands on its event loop: the pipe's
file descriptor is watched with ``add_reader``, so waiting for a command costs nothing
while the connections are busy. End of file on the pipe means the orchestrator is gone,
and the worker stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

from tests.bench.procutil import die_with_parent, raise_nofile_limit

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[Message | None]]


def prepare_worker() -> None:
    """Process setup shared by workers: limits, parent death, Ctrl-C left to the parent."""
    die_with_parent()
    raise_nofile_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def cpu_times() -> tuple[float, float]:
    """User and system CPU seconds of this process so far."""
    times = os.times()
    return times.user, times.system


async def serve_commands(pipe: Connection, handlers: dict[str, Handler]) -> None:
    """Run handlers for commands until ``stop`` or end of file; replies go back on the pipe.

    Each command is a dict with a ``cmd`` key; a handler's non-``None`` result is sent back.
    """
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Message | None] = asyncio.Queue()

    def readable() -> None:
        try:
            while pipe.poll():
                inbox.put_nowait(pipe.recv())
        except (EOFError, OSError):
            loop.remove_reader(pipe.fileno())
            inbox.put_nowait(None)

    loop.add_reader(pipe.fileno(), readable)
    try:
        while (command := await inbox.get()) is not None:
            name = command["cmd"]
            if name == "stop":
                return
            reply = await handlers[name](command)
            if reply is not None:
                pipe.send(reply)
    finally:
        if not pipe.closed:
            loop.remove_reader(pipe.fileno())
