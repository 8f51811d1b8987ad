"""Liveness and live pushes: silence raises exactly one worker.offline and the next ping a
worker.online (both backends); a burst of 100 pings a second is pushed to consoles at most
once a second per worker, ending on the newest position."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from hub.locations.ports import InboundMessage
from protocols.geo import LatLon
from tests.conftest import Backend
from tests.integration.locations.conftest import ConsoleFactory, HubStarter, phone_settings
from tests.integration.locations.helpers import (
    CONSOLES,
    GRID,
    NEIGHBOUR,
    NEIGHBOUR_GRID,
    WORKER,
    demo_grids,
    grid_ping,
    landmarks,
    latest_of,
    location_topic,
    now,
    of_type,
    position_at,
    positions_of,
    wait_for,
    wait_for_all,
    with_id,
    worker_events,
    worker_row,
)
from tests.support.clients import alert, post_event

pytestmark = pytest.mark.timeout(60)

OFFLINE_AFTER = 1.0
BURST_RATE = 100  # pings per second per worker
BURST_SECONDS = 3.0
LIVE_INTERVAL = 1.0  # the default live_interval
GAP_TOLERANCE = 0.1
"""Scheduling slack between two pushes (the hub times them on the monotonic clock; the
envelope's time is taken a moment later, when the push task runs)."""


def ping(worker: str, point: LatLon, ts: float) -> InboundMessage:
    """One grid-format ping as the MQTT adapter hands it over."""
    return InboundMessage(location_topic("", worker), grid_ping(point, ts), now())


def pushed_at(envelope: dict[str, Any]) -> float:
    """When the hub built a live push (the envelope's time), Unix seconds."""
    return datetime.fromisoformat(envelope["time"]).timestamp()


async def test_silence_raises_one_offline_and_the_next_ping_brings_the_worker_online(
    backend: Backend, hubs: HubStarter, consoles: ConsoleFactory
) -> None:
    locations = {"offline_after": OFFLINE_AFTER, "offline_check_interval": 0.1}
    running = await hubs(phone_settings(backend, None, locations=locations))
    console = await consoles(running, CONSOLES["grid"], f"org:{GRID}")
    service = running.hub.locations
    spot = landmarks(demo_grids().area(GRID)).inside
    t0 = float(round(now()) - 60)

    first = ping(WORKER, spot, t0)
    await service.ingest([first])
    seen: list[dict[str, Any]] = []
    await wait_for(console.recorder, of_type("worker.online"), seen)
    offline = await wait_for(console.recorder, of_type("worker.offline"), seen)
    assert offline["data"]["reason"] == "silent"
    assert offline["data"]["last_seen"] == pytest.approx(first.received_at)
    assert now() - first.received_at >= OFFLINE_AFTER
    row = await worker_row(running.hub)
    assert row is not None and not row.online
    # However long the silence lasts, the worker is not reported offline again.
    assert await service.check_silence(now() + 3600) == 0

    await service.ingest([ping(WORKER, spot, t0 + 5)])
    online = await wait_for(console.recorder, of_type("worker.online"), seen)
    assert online["data"]["offline_since"] == pytest.approx(first.received_at)
    status, body = await post_event(running.url, alert(GRID, "marker"))
    assert status == 202, body
    await wait_for(console.recorder, with_id(body["id"]), seen)

    expected = ["worker.online", "worker.offline", "worker.online"]
    assert [e["type"] for e in seen if e["type"] in {"worker.online", "worker.offline"}] == expected
    assert [e["type"] for e in await worker_events(running.hub)] == expected
    row = await worker_row(running.hub)
    assert row is not None and row.online


async def test_a_burst_of_100_pings_a_second_is_pushed_at_most_once_a_second_per_worker(
    sqlite_backend: Backend, hubs: HubStarter, consoles: ConsoleFactory
) -> None:
    running = await hubs(phone_settings(sqlite_backend, None))
    console = await consoles(running, CONSOLES["community"], "org:d01.s01.c01")
    service = running.hub.locations
    grids = demo_grids()
    starts = {
        WORKER: landmarks(grids.area(GRID)).inside,
        NEIGHBOUR: landmarks(grids.area(NEIGHBOUR_GRID)).inside,
    }
    count = int(BURST_RATE * BURST_SECONDS)
    t0 = float(round(now()) - 60)
    newest: dict[str, tuple[LatLon, float]] = {}

    loop = asyncio.get_running_loop()
    began = loop.time()
    for i in range(count):
        # Pace the phones (this is the load, not a wait for the hub).
        await asyncio.sleep(max(0.0, began + i / BURST_RATE - loop.time()))
        batch = []
        for worker, start in starts.items():
            point = LatLon(start.lat + i * 1e-6, start.lon + i * 1e-6)
            ts = t0 + i / BURST_RATE
            batch.append(ping(worker, point, ts))
            newest[worker] = (point, ts)
        await service.ingest(batch)
    elapsed = loop.time() - began

    seen: list[dict[str, Any]] = []
    finals = [position_at(ts, worker) for worker, (_, ts) in newest.items()]
    await wait_for_all(console.recorder, finals, seen)
    for worker, (point, ts) in newest.items():
        pushes = [
            e for e in seen if e["type"] == "worker.position" and e["data"]["worker_id"] == worker
        ]
        times = [pushed_at(e) for e in pushes]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= LIVE_INTERVAL - GAP_TOLERANCE for gap in gaps), (worker, gaps)
        # Grouped by second (counted from the first push): never two in one second.
        per_second = Counter(round(t - times[0]) for t in times)
        assert max(per_second.values()) == 1, (worker, per_second)
        assert 2 <= len(pushes) <= math.ceil(elapsed / LIVE_INTERVAL) + 1, (worker, times)
        last = pushes[-1]["data"]
        assert (last["lat"], last["lon"], last["fix_time"]) == (point.lat, point.lon, ts)
        latest = await latest_of(running.hub, worker)
        assert latest is not None and (latest.lat, latest.lon) == (point.lat, point.lon)
        assert len(await positions_of(running.hub, worker)) == count
    assert running.hub.metrics.locations.pushed == sum(e["type"] == "worker.position" for e in seen)
