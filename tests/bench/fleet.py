"""The orchestrator's side of the worker processes: the client swarms and the publisher.

A :class:`Fleet` starts workers (``spawn`` context, so they inherit nothing), sends them
commands, collects their messages into per-worker inboxes and waits, always with a
deadline, until every worker has sent a message of a given type. :meth:`Fleet.stop` ends
every worker, politely first.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from tests.bench import publisher, swarm
from tests.bench.control import Message

JOIN_TIMEOUT = 5.0
PUMP_INTERVAL = 0.5


class WorkerDied(RuntimeError):
    """A worker process exited while the orchestrator was waiting for it."""


@dataclass
class Worker:
    """One worker process, its pipe and the latest message of each type it sent."""

    name: str
    process: BaseProcess
    pipe: Connection
    inbox: dict[str, Message] = field(default_factory=dict)
    dead: bool = False

    def send(self, command: Message) -> None:
        """Send a command unless the worker is gone."""
        if not self.dead:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.pipe.send(command)


class Fleet:
    """The worker processes of one benchmark run."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self.swarms: list[Worker] = []
        self.publisher: Worker | None = None

    @property
    def workers(self) -> list[Worker]:
        """Every worker, publisher last."""
        return [*self.swarms, *([self.publisher] if self.publisher else [])]

    def _start(self, name: str, target: Callable[..., None], spec: Any) -> Worker:
        here, there = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=target, args=(there, spec), name=name, daemon=True)
        process.start()
        there.close()
        return Worker(name, process, here)

    def start_swarms(self, specs: Sequence[swarm.SwarmSpec]) -> None:
        """Start one client process per spec."""
        for spec in specs:
            self.swarms.append(self._start(f"swarm-{spec.index}", swarm.main, spec))

    def start_publisher(self, spec: publisher.PublisherSpec) -> None:
        """Start the publisher process."""
        self.publisher = self._start("publisher", publisher.main, spec)

    def pump(self, timeout: float) -> None:
        """Read whatever the workers sent within ``timeout`` seconds into their inboxes."""
        by_pipe = {worker.pipe: worker for worker in self.workers if not worker.dead}
        if not by_pipe:
            return
        for pipe in wait(list(by_pipe), timeout):
            worker = by_pipe[pipe]  # type: ignore[index]
            try:
                while worker.pipe.poll():
                    message = worker.pipe.recv()
                    worker.inbox[message["type"]] = message
            except (EOFError, OSError):
                worker.dead = True

    def wait_for(self, workers: Sequence[Worker], kind: str, deadline: float) -> bool:
        """Wait until each of ``workers`` sent a ``kind`` message; ``False`` at the deadline.

        Raises :class:`WorkerDied` when one of them exits first.
        """
        while True:
            missing = [w for w in workers if kind not in w.inbox]
            if not missing:
                return True
            dead = [w.name for w in missing if w.dead or not w.process.is_alive()]
            if dead:
                self.pump(0)  # it may have sent the message just before exiting
                if any(kind not in w.inbox for w in missing if w.name in dead):
                    raise WorkerDied(f"{', '.join(dead)} exited before sending {kind!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.pump(min(remaining, PUMP_INTERVAL))

    def request(
        self, workers: Sequence[Worker], command: Message, reply: str, timeout: float
    ) -> list[Message]:
        """Send ``command`` to each worker and return their ``reply`` messages."""
        for worker in workers:
            worker.inbox.pop(reply, None)
            worker.send(command)
        if not self.wait_for(workers, reply, time.monotonic() + timeout):
            raise TimeoutError(f"no {reply!r} from every worker within {timeout}s")
        return [worker.inbox[reply] for worker in workers]

    def stop(self) -> None:
        """Ask every worker to stop, then terminate and kill whatever is left."""
        workers = self.workers
        for worker in workers:
            worker.send({"cmd": "stop"})
        deadline = time.monotonic() + JOIN_TIMEOUT
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(JOIN_TIMEOUT)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(JOIN_TIMEOUT)
            worker.pipe.close()
        self.swarms = []
        self.publisher = None
