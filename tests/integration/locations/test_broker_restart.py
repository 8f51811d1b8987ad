"""Mosquitto restarted under a running hub: the MQTT adapter turns not ready and ready again
(/readyz), resumes its persistent session, and every ping the broker accepted is stored
exactly once — pings it had delivered but the hub had not acknowledged when it went down,
and pings it queued for the hub while the hub was still away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from hub.locations.ports import InboundMessage
from tests.conftest import Backend
from tests.integration.locations.conftest import ConsoleFactory, HubStarter, phone_settings
from tests.integration.locations.helpers import (
    CONSOLES,
    GRID,
    demo_grids,
    grid_ping,
    landmarks,
    location_topic,
    now,
    position_at,
    positions_of,
    publish,
    unique_mqtt,
    until_ready,
    wait_for,
)
from tests.support.mosquitto import MosquittoServer, private_mosquitto

pytestmark = pytest.mark.timeout(60)

RELAY_CHUNK = 65536


class ShutterRelay:
    """A TCP relay in front of the broker that the test can shut: while shut it accepts
    and closes at once, so the hub stays away from a broker that is up for everyone else."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.open = True
        self.port = 0

    @property
    def url(self) -> str:
        """The broker URL through the relay."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if not self.open:
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
            except OSError:
                return
            self._writers.add(up_writer)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                self._writers.discard(up_writer)
                up_writer.close()
        finally:
            self._writers.discard(writer)
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await reader.read(RELAY_CHUNK):
            writer.write(chunk)
            await writer.drain()
    writer.close()


class HeldIngest:
    """Wraps the location service's ``ingest`` so the test can hold batches at the sink
    (the adapter acknowledges nothing until ingest returns)."""

    def __init__(self, ingest: Callable[[Sequence[InboundMessage]], Awaitable[None]]) -> None:
        self._ingest = ingest
        self.released = asyncio.Event()
        self.released.set()
        self.entered = asyncio.Event()

    async def __call__(self, batch: Sequence[InboundMessage]) -> None:
        self.entered.set()
        await self.released.wait()
        await self._ingest(batch)


@pytest.fixture
async def broker() -> AsyncIterator[MosquittoServer]:
    """A private Mosquitto that keeps sessions and queued messages across a graceful
    restart (the shared one must never be restarted by a test)."""
    async with private_mosquitto(persistence=True) as server:
        yield server


@pytest.fixture
async def relay(broker: MosquittoServer) -> AsyncIterator[ShutterRelay]:
    shutter = ShutterRelay(broker.port)
    await shutter.start()
    yield shutter
    await shutter.close()


async def test_a_broker_restart_loses_nothing_it_accepted_and_stores_each_ping_once(
    backend: Backend,
    broker: MosquittoServer,
    relay: ShutterRelay,
    hubs: HubStarter,
    consoles: ConsoleFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mqtt = unique_mqtt()
    running = await hubs(phone_settings(backend, mqtt, relay.url))
    await until_ready(running.url, ready=True)
    console = await consoles(running, CONSOLES["grid"], f"org:{GRID}")
    held = HeldIngest(running.hub.locations.ingest)
    monkeypatch.setattr(running.hub.locations, "ingest", held)
    spot = landmarks(demo_grids().area(GRID)).inside
    topic = location_topic(mqtt["topic_prefix"])
    clock = iter(range(10_000))
    t0 = float(round(now()) - 10_000)

    def pings(count: int) -> tuple[list[float], list[tuple[str, bytes]]]:
        times = [t0 + next(clock) for _ in range(count)]
        return times, [(topic, grid_ping(spot, ts)) for ts in times]

    before, messages = pings(200)
    await publish(broker.url, messages)
    await wait_for(console.recorder, position_at(before[-1]))

    # Delivered to the hub but not acknowledged (held at the sink) when the broker stops:
    # the broker saves them with the session and must deliver them again.
    held.released.clear()
    held.entered.clear()
    burst, messages = pings(300)
    await publish(broker.url, messages)
    await held.entered.wait()
    await broker.stop()  # SIGTERM: Mosquitto writes its persistence file
    checks = await until_ready(running.url, ready=False)
    assert checks["adapter:mqtt"] == "not ready"
    held.released.set()  # stored now; their acks have no connection to go out on

    relay.open = False
    await broker.start()
    # The hub cannot reach the restarted broker yet: these wait in its restored session.
    during, messages = pings(100)
    await publish(broker.url, messages)
    assert not running.hub.adapters[0].ready
    relay.open = True
    await until_ready(running.url, ready=True)

    after, messages = pings(100)
    await publish(broker.url, messages)
    await wait_for(console.recorder, position_at(after[-1]))

    stored = [row.fix_time for row in await positions_of(running.hub)]
    assert stored == [*before, *burst, *during, *after]  # all there, each once
    # The burst really came twice (the broker's saved copy) and was deduplicated.
    assert running.hub.metrics.locations.duplicates >= len(burst)
