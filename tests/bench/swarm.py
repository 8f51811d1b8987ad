"""A client process: holds a share of the subscriber connections and counts deliveries.

Protocol with the orchestrator (see :mod:`tests.bench.fanout`): on start the swarm
connects its connections (a bounded number of handshakes at a time, with retries) and
sends ``ready``. Then it serves ``expect`` (arm the counter for M publications per open
connection), ``progress``, ``report`` and ``stop``. When every open connection has its M
publications it sends ``done`` on its own, with the time of the last delivery.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection

from tests.bench.clients import CONNECTIONS, BenchConnection, DeliveryCounter, open_connection
from tests.bench.control import Message, cpu_times, prepare_worker, serve_commands
from tests.bench.procutil import run

RETRY_BASE_DELAY = 0.2


@dataclass(frozen=True)
class SwarmSpec:
    """What one client process connects to and how."""

    index: int
    kind: str
    host: str
    port: int
    first_ident: int
    count: int
    sample_every: int
    concurrency: int
    connect_timeout: float
    retries: int
    loop: str = "uvloop"


class Swarm:
    """The connections of one client process and their delivery counter."""

    def __init__(self, spec: SwarmSpec, pipe: Connection) -> None:
        self.spec = spec
        self.pipe = pipe
        self.counter = DeliveryCounter()
        self.counter.on_complete = self._complete
        self.conns: list[BenchConnection] = []
        self.errors: Counter[str] = Counter()
        self.cpu_mark = (0.0, 0.0)

    async def connect_all(self) -> Message:
        """Open every connection; report how many are subscribed and what failed."""
        spec = self.spec
        gate = asyncio.Semaphore(spec.concurrency)
        started = time.monotonic()

        async def one(ident: int) -> None:
            async with gate:
                for attempt in range(spec.retries + 1):
                    try:
                        conn = await open_connection(
                            CONNECTIONS[spec.kind],
                            spec.host,
                            spec.port,
                            ident,
                            self.counter,
                            sampled=ident % spec.sample_every == 0,
                            timeout=spec.connect_timeout,
                        )
                    except (OSError, TimeoutError) as exc:
                        if attempt == spec.retries:
                            self.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                        else:
                            await asyncio.sleep(RETRY_BASE_DELAY * 2**attempt)
                    else:
                        self.conns.append(conn)
                        return

        idents = range(spec.first_ident, spec.first_ident + spec.count)
        async with asyncio.TaskGroup() as group:
            for ident in idents:
                group.create_task(one(ident))
        return {
            "type": "ready",
            "index": spec.index,
            "subscribed": len(self.conns),
            "failed": spec.count - len(self.conns),
            "errors": dict(self.errors.most_common(5)),
            "connect_seconds": time.monotonic() - started,
        }

    def open_count(self) -> int:
        """Connections still open."""
        return sum(1 for conn in self.conns if not conn.closed)

    def _complete(self) -> None:
        self.pipe.send(
            {
                "type": "done",
                "index": self.spec.index,
                "total": self.counter.total,
                "last_recv": self.counter.last_recv,
            }
        )

    async def expect(self, command: Message) -> Message:
        """Count towards ``messages`` publications on each open connection."""
        for conn in self.conns:
            conn.count = 0
        self.counter.arm(self.open_count() * int(command["messages"]))
        self.cpu_mark = cpu_times()
        return {"type": "armed", "index": self.spec.index, "expected": self.counter.expected}

    async def progress(self, _command: Message) -> Message:
        """Deliveries so far."""
        return {
            "type": "progress",
            "index": self.spec.index,
            "total": self.counter.total,
            "open": self.open_count(),
        }

    async def report(self, _command: Message) -> Message:
        """Everything measured since ``expect``."""
        counts = [conn.count for conn in self.conns]
        user, system = cpu_times()
        return {
            "type": "report",
            "index": self.spec.index,
            "total": self.counter.total,
            "frames": self.counter.frames,
            "pongs": self.counter.pongs,
            "expected": self.counter.expected,
            "last_recv": self.counter.last_recv,
            "min_per_conn": min(counts, default=0),
            "max_per_conn": max(counts, default=0),
            "connections": len(self.conns),
            "open": self.open_count(),
            "latencies": self.counter.latencies,
            "cpu_user": user - self.cpu_mark[0],
            "cpu_system": system - self.cpu_mark[1],
        }

    def close(self) -> None:
        """Close every connection."""
        for conn in self.conns:
            conn.close()


async def _main(pipe: Connection, spec: SwarmSpec) -> None:
    swarm = Swarm(spec, pipe)
    try:
        pipe.send(await swarm.connect_all())
        await serve_commands(
            pipe,
            {"expect": swarm.expect, "progress": swarm.progress, "report": swarm.report},
        )
    finally:
        swarm.close()


def main(pipe: Connection, spec: SwarmSpec) -> None:
    """Process entry point (the target of a ``multiprocessing.Process``)."""
    prepare_worker()
    run(_main(pipe, spec), spec.loop)
