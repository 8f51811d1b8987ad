"""Grid boundaries: leaving and coming back raises exactly one worker.left_grid and one
worker.entered_grid (end to end over MQTT, on both backends); a worker walking along the
boundary with realistic GPS noise raises none."""

from __future__ import annotations

from typing import Any

import pytest

from hub.locations.ports import InboundMessage
from tests.conftest import Backend
from tests.integration.locations.conftest import ConsoleFactory, HubStarter, phone_settings
from tests.integration.locations.helpers import (
    CONSOLES,
    GRID,
    WORKER,
    boundary_walk,
    demo_grids,
    flips,
    grid_ping,
    landmarks,
    latest_of,
    location_topic,
    now,
    position_at,
    positions_of,
    publish,
    wait_for,
    with_id,
    worker_events,
)
from tests.support.clients import alert, post_event

pytestmark = pytest.mark.timeout(60)

PING_EVERY = 5.0
WALK_SEED = 20240611
WALK_BATCH = 6
"""Fixes per ingest call in the walk (30 s of pings, as a phone's queue might flush)."""


async def test_leaving_and_reentering_the_grid_raises_one_left_and_one_entered_event(
    backend: Backend,
    mosquitto: str,
    mqtt: dict[str, Any],
    hubs: HubStarter,
    consoles: ConsoleFactory,
) -> None:
    running = await hubs(phone_settings(backend, mqtt))
    console = await consoles(running, CONSOLES["grid"], f"org:{GRID}")
    spots = landmarks(demo_grids().area(GRID))
    topic = location_topic(mqtt["topic_prefix"])
    t0 = float(round(now()) - 600)
    route = [spots.inside] * 4 + [spots.outside] * 4 + [spots.inside] * 5
    times = [t0 + i * PING_EVERY for i in range(len(route))]
    pings = [(topic, grid_ping(p, ts)) for p, ts in zip(route, times, strict=True)]
    await publish(mosquitto, pings)
    seen: list[dict[str, Any]] = []
    await wait_for(console.recorder, position_at(times[-1]), seen)

    # Every batch is committed by now; an event pushed through the outbox after them
    # arrives after every event they raised.
    status, body = await post_event(running.url, alert(GRID, "marker"))
    assert status == 202, body
    await wait_for(console.recorder, with_id(body["id"]), seen)
    raised = [e for e in seen if e["type"].startswith("worker.") and e["type"] != "worker.position"]
    assert [e["type"] for e in raised] == [
        "worker.online",
        "worker.left_grid",
        "worker.entered_grid",
    ]
    left, entered = raised[1]["data"], raised[2]["data"]
    assert (left["worker_id"], left["grid"], left["since"]) == (WORKER, GRID, times[4])
    assert (left["lat"], left["lon"]) == (spots.outside.lat, spots.outside.lon)
    assert (entered["since"], entered["lat"]) == (times[8], spots.inside.lat)
    stored = [e["type"] for e in await worker_events(running.hub)]
    assert stored == ["worker.online", "worker.left_grid", "worker.entered_grid"]

    rows = await positions_of(running.hub)
    assert [row.outside for row in rows] == [False] * 4 + [True] * 4 + [False] * 5
    latest = await latest_of(running.hub)
    assert latest is not None and latest.in_grid == "inside"


async def test_walking_along_the_boundary_with_gps_noise_raises_no_boundary_event(
    sqlite_backend: Backend, hubs: HubStarter
) -> None:
    running = await hubs(phone_settings(sqlite_backend, None))
    service = running.hub.locations
    area = demo_grids().area(GRID)
    spots = landmarks(area)
    topic = location_topic("")
    walk = boundary_walk(area, seed=WALK_SEED, sigma_m=8.0, accuracy_m=10.0)
    t0 = float(round(now()) - walk[-1][2] - 3600)

    def message(point: Any, ts: float, acc: float) -> InboundMessage:
        return InboundMessage(topic, grid_ping(point, ts, acc=acc), now())

    # A minute at the grid's heart: the hub learns the worker is inside.
    await service.ingest([message(spots.inside, t0 + i * PING_EVERY, 8.0) for i in range(12)])
    start = t0 + 120
    for i in range(0, len(walk), WALK_BATCH):
        chunk = walk[i : i + WALK_BATCH]
        await service.ingest([message(p, start + t, acc) for p, acc, t in chunk])

    events = [e["type"] for e in await worker_events(running.hub)]
    assert events == ["worker.online"]
    latest = await latest_of(running.hub)
    assert latest is not None and latest.in_grid == "inside"
    walked = [row.outside for row in await positions_of(running.hub)][12:]
    assert len(walked) == len(walk)
    # The walk really straddled the edge: taken at face value it would flap constantly.
    assert walked.count(True) > len(walk) // 5 and walked.count(False) > len(walk) // 5
    assert flips(walked) > 20

    # The same tracker still sees a real departure.
    end = start + walk[-1][2] + 60
    away = [message(spots.outside, end + i * PING_EVERY, 8.0) for i in range(4)]
    await service.ingest(away)
    events = [e["type"] for e in await worker_events(running.hub)]
    assert events == ["worker.online", "worker.left_grid"]
