"""The publisher process: one connection that publishes M messages at full speed.

Full speed means a window of unacknowledged publications: the publisher sends while fewer
than ``window`` are outstanding and each server acknowledgement lets the next one go, so
the server is never idle and never flooded beyond its own flow control. With a ``rate``
the publisher also spaces the publications evenly (still within the window), to measure a
server below saturation. Each message carries its send time for the subscribers' latency
samples.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from tests.bench.clients import (
    CONNECTIONS,
    BenchConnection,
    DeliveryCounter,
    open_connection,
    publication_data,
)
from tests.bench.control import Message, prepare_worker, serve_commands
from tests.bench.procutil import run

MAX_ERRORS_KEPT = 5


@dataclass(frozen=True)
class PublisherSpec:
    """Where the publisher connects."""

    kind: str
    host: str
    port: int
    ident: int
    connect_timeout: float
    loop: str = "uvloop"


class Publisher:
    """Publishes through one connection with a bounded window of outstanding acks."""

    def __init__(self, conn: BenchConnection) -> None:
        self.conn = conn

    async def publish(self, command: Message) -> Message:
        """Publish ``count`` messages of ``payload_bytes``, all within ``timeout`` seconds."""
        count = int(command["count"])
        rate = float(command["rate"])
        loop = asyncio.get_running_loop()
        payload_bytes = int(command["payload_bytes"])
        window = asyncio.Semaphore(int(command["window"]))
        all_acked = asyncio.Event()
        acked = 0
        errors: list[str] = []

        def on_ack(_seq: int, error: str | None) -> None:
            nonlocal acked
            acked += 1
            if error is not None and len(errors) < MAX_ERRORS_KEPT:
                errors.append(error)
            window.release()
            if acked >= count:
                all_acked.set()

        def on_lost(_future: object) -> None:
            # Wake a sender blocked on the window; it sees the loss and stops.
            window.release()
            all_acked.set()

        self.conn.on_ack = on_ack
        self.conn.lost.add_done_callback(on_lost)
        first = last_send = time.time()
        started = loop.time()
        try:
            async with asyncio.timeout(float(command["timeout"])):
                for seq in range(1, count + 1):
                    if rate > 0:
                        # Pacing: this publication's slot on an even schedule.
                        await asyncio.sleep(started + (seq - 1) / rate - loop.time())
                    await window.acquire()
                    if self.conn.closed:
                        break
                    self.conn.publish(seq, publication_data(seq, payload_bytes))
                last_send = time.time()
                await all_acked.wait()
        except TimeoutError:
            errors.append(f"timed out: {acked} of {count} acknowledged")
        finally:
            self.conn.lost.remove_done_callback(on_lost)
        if self.conn.closed:
            errors.append(f"publisher connection lost after {acked} acknowledgements")
        return {
            "type": "published",
            "first": first,
            "last_send": last_send,
            "acked": acked,
            "errors": errors,
        }


async def _main(pipe: Connection, spec: PublisherSpec) -> None:
    try:
        conn = await open_connection(
            CONNECTIONS[spec.kind],
            spec.host,
            spec.port,
            spec.ident,
            DeliveryCounter(),
            subscribe=False,
            timeout=spec.connect_timeout,
        )
    except (OSError, TimeoutError) as exc:
        pipe.send({"type": "ready", "error": f"{type(exc).__name__}: {exc}"})
        return
    pipe.send({"type": "ready", "error": None})
    try:
        await serve_commands(pipe, {"publish": Publisher(conn).publish})
    finally:
        conn.close()


def main(pipe: Connection, spec: PublisherSpec) -> None:
    """Process entry point (the target of a ``multiprocessing.Process``)."""
    prepare_worker()
    run(_main(pipe, spec), spec.loop)
