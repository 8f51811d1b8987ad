"""Grid phones end to end on both backends: real MQTT clients publish to the real Mosquitto,
the hub stores each fix once, keeps the latest position and pushes it to the consoles of
the worker's grid and every tier above it, never to a sibling community; OwnTracks pings
work the same; pings queued by the broker while the hub was down arrive once each."""

from __future__ import annotations

from typing import Any

import pytest

from protocols.envelope import Envelope
from protocols.geo import LatLon
from tests.conftest import Backend
from tests.integration.locations.conftest import ConsoleFactory, HubStarter, phone_settings
from tests.integration.locations.helpers import (
    CONSOLES,
    GRID,
    SIBLING,
    WORKER,
    count_of,
    demo_grids,
    grid_ping,
    landmarks,
    latest_of,
    location_topic,
    next_envelope,
    now,
    of_type,
    owntracks_ping,
    position_at,
    positions_of,
    publish,
    read_until,
    wait_for,
    wait_for_all,
    worker_events,
    worker_row,
)
from tests.integration.mqtt.helpers import mosquitto_pub

pytestmark = pytest.mark.timeout(60)

RESTART_PINGS = 1000
"""Exactly the shared Mosquitto's default ``max_queued_messages`` for an offline client."""


async def test_a_ping_from_real_clients_is_stored_and_reaches_every_tier_but_no_sibling(
    backend: Backend,
    mosquitto: str,
    mqtt: dict[str, Any],
    hubs: HubStarter,
    consoles: ConsoleFactory,
) -> None:
    running = await hubs(phone_settings(backend, mqtt))
    adapter = next(a for a in running.hub.adapters if a.name == "mqtt")
    assert adapter.ready
    tiers = {tier: await consoles(running, u, f"org:{u[1]}") for tier, u in CONSOLES.items()}
    sibling = await consoles(running, SIBLING, f"org:{SIBLING[1]}")
    spot = landmarks(demo_grids().area(GRID)).inside
    topic = location_topic(mqtt["topic_prefix"])
    t0 = float(round(now()) - 60)

    # The mosquitto_pub CLI, as a shell script on a phone gateway would publish.
    sent = await mosquitto_pub(mosquitto, topic, grid_ping(spot, t0, acc=6.5, batt=80))
    assert sent, "the mosquitto_pub CLI is required (apt-get install mosquitto-clients)"
    for tier, console in tiers.items():
        pushed = await wait_for(console.recorder, position_at(t0))
        assert pushed["org"] == GRID, tier
        assert pushed["subject"] == WORKER
        assert pushed["data"]["lat"] == spot.lat and pushed["data"]["lon"] == spot.lon
        assert pushed["data"]["accuracy_m"] == 6.5 and pushed["data"]["battery_pct"] == 80

    # paho, with every optional field; a few metres further and five seconds later.
    moved = LatLon(spot.lat + 0.00005, spot.lon + 0.00005)
    extra = {"alt": 21.5, "speed": 1.2, "heading": 270, "created_at": t0 + 6}
    await publish(mosquitto, [(topic, grid_ping(moved, t0 + 5, batt=79, **extra))])
    for console in tiers.values():
        # Coalesced: it may come up to live_interval later. worker.online (outbox) too.
        await wait_for_all(console.recorder, [position_at(t0 + 5), of_type("worker.online")])

    rows = await positions_of(running.hub)
    assert [row.fix_time for row in rows] == [t0, t0 + 5]
    last = rows[1]
    assert (last.lat, last.lon) == (moved.lat, moved.lon)
    assert (last.altitude_m, last.speed_mps, last.heading_deg) == (21.5, 1.2, 270.0)
    assert (last.battery_pct, last.sent_time, last.source_datum) == (79.0, t0 + 6, "wgs84")
    assert last.outside is False
    assert now() - 60 < last.received_at <= now()
    latest = await latest_of(running.hub)
    assert latest is not None
    assert (latest.fix_time, latest.lat, latest.lon) == (t0 + 5, moved.lat, moved.lon)
    worker = await worker_row(running.hub)
    assert worker is not None and worker.online

    # Everything about the worker has been published by now; a marker on the sibling
    # community's channel must be the first thing its console receives.
    marker = Envelope(type="alert.raised", source="test/locations", org=SIBLING[1],
                      data={"title": "marker"})  # fmt: skip
    await running.hub.publisher.publish_encoded(marker.encode(), [f"org:{SIBLING[1]}"])
    assert (await next_envelope(sibling.recorder))["id"] == marker.id


async def test_owntracks_pings_work_the_same_with_the_user_as_worker_id(
    backend: Backend,
    mosquitto: str,
    mqtt: dict[str, Any],
    hubs: HubStarter,
    consoles: ConsoleFactory,
) -> None:
    running = await hubs(phone_settings(backend, mqtt))
    console = await consoles(running, CONSOLES["community"], "org:d01.s01.c01")
    spot = landmarks(demo_grids().area(GRID)).inside
    topic = f"{mqtt['topic_prefix']}owntracks/{WORKER}/phone"
    t0 = float(round(now()) - 120)
    fields = {"acc": 12, "batt": 64, "vel": 18, "tid": "w1", "alt": 30, "cog": 90}
    await publish(
        mosquitto,
        [
            (topic, owntracks_ping(spot, t0, **fields)),
            # Region transitions are OwnTracks' own geofencing: ignored, not refused.
            (topic, b'{"_type":"transition","event":"leave","tst":%d}' % t0),
            # The broker publishes the phone's Last Will when it drops off.
            (topic, b'{"_type":"lwt","tst":%d}' % t0),
            (topic, owntracks_ping(spot, t0 + 10, **fields)),
        ],
    )
    seen: list[dict[str, Any]] = []
    pushed = await wait_for(console.recorder, position_at(t0 + 10), seen)
    assert pushed["data"]["speed_mps"] == pytest.approx(5.0)  # 18 km/h
    assert pushed["data"]["heading_deg"] == 90 and pushed["data"]["battery_pct"] == 64
    assert pushed["data"]["accuracy_m"] == 12

    rows = await positions_of(running.hub)
    assert [row.fix_time for row in rows] == [t0, t0 + 10]
    assert all(row.speed_mps == pytest.approx(5.0) and row.altitude_m == 30 for row in rows)
    latest = await latest_of(running.hub)
    assert latest is not None and latest.fix_time == t0 + 10 and latest.battery_pct == 64

    expected = [("worker.online", None), ("worker.offline", "last_will"), ("worker.online", None)]
    events = await worker_events(running.hub)
    assert [(e["type"], e["data"].get("reason")) for e in events] == expected
    await read_until(console.recorder, seen, lambda s: count_of("worker.online")(s) == 2)
    assert [e["type"] for e in seen if e["type"] != "worker.position"] == [t for t, _ in expected]
    assert running.hub.metrics.locations.rejected_by_reason == {}


async def test_pings_queued_while_the_hub_was_down_are_stored_exactly_once_after_restart(
    backend: Backend,
    mosquitto: str,
    mqtt: dict[str, Any],
    hubs: HubStarter,
    consoles: ConsoleFactory,
) -> None:
    settings = phone_settings(backend, mqtt)
    first = await hubs(settings)
    assert first.hub.adapters[0].ready  # the persistent session and its subscriptions exist
    await first.server.close()  # DISCONNECT: the broker keeps the session and queues for it

    spot = landmarks(demo_grids().area(GRID)).inside
    topic = location_topic(mqtt["topic_prefix"])
    t0 = float(round(now()) - 2 * RESTART_PINGS)
    times = [t0 + i for i in range(RESTART_PINGS)]
    await publish(mosquitto, [(topic, grid_ping(spot, ts)) for ts in times])

    second = await hubs(settings)  # same client id: resumes the session
    console = await consoles(second, CONSOLES["grid"], f"org:{GRID}")
    # Published after the queue: once its push arrives, everything before it is stored.
    marker = t0 + RESTART_PINGS
    await publish(mosquitto, [(topic, grid_ping(spot, marker))])
    await wait_for(console.recorder, position_at(marker))

    stored = [row.fix_time for row in await positions_of(second.hub)]
    assert len(stored) == RESTART_PINGS + 1
    assert stored == [*times, marker]  # each once, none missing
    counters = second.hub.metrics.locations
    assert counters.stored == RESTART_PINGS + 1
    latest = await latest_of(second.hub)
    assert latest is not None and latest.fix_time == marker
