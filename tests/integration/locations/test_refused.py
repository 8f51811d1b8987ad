"""Garbage on the phones' topics is refused and counted by reason (in the hub's counters and
on /metrics), nothing of it is stored, and the adapter keeps serving; random topics and
payloads fed to the pipeline never raise, never store anything invalid, and every message
is accounted for."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub.db.models import Position
from hub.locations.ports import InboundMessage
from protocols.geo import LatLon
from protocols.mqtt import Ignored, LocationPing, PayloadRejected, StatusReport, parse
from tests.conftest import Backend, RunningHub
from tests.integration.locations.conftest import ConsoleFactory, HubStarter, phone_settings
from tests.integration.locations.helpers import (
    CONSOLES,
    GRID,
    NEIGHBOUR,
    WORKER,
    demo_grids,
    grid_ping,
    landmarks,
    location_topic,
    now,
    position_at,
    positions_of,
    publish,
    refused_metrics,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)

DAY = 24 * 3600.0


def garbage(prefix: str, spot: LatLon, ts: float) -> list[tuple[str, bytes, str]]:
    """(topic, payload, the reason it must be refused for)."""
    grid = location_topic(prefix)
    tracks = f"{prefix}owntracks/{WORKER}/phone"
    ok = {"lat": spot.lat, "lon": spot.lon, "acc": 8, "ts": ts}

    def body(**changes: Any) -> bytes:
        return json.dumps({**ok, **changes}).encode()

    def raw(text: str) -> bytes:
        return text.replace("LAT", str(spot.lat)).replace("TS", str(ts)).encode()

    return [
        (grid, b"lat=30.6&lon=114.3", "not_json"),
        (grid, b"\xff\xfe\x00garbage", "not_json"),
        (grid, raw('{"lat": NaN, "lon": 114.37, "acc": 8, "ts": TS}'), "not_json"),
        (grid, raw('{"lat": LAT, "lon": Infinity, "acc": 8, "ts": TS}'), "not_json"),
        (grid, raw('{"lat": LAT, "lon": 114.37, "acc": 1e999, "ts": TS}'), "not_json"),
        (grid, b"[30.6, 114.3]", "not_object"),
        (grid, b'"just a string"', "not_object"),
        (grid, body(lat=str(spot.lat)), "bad_type"),
        (grid, body(acc=True), "bad_type"),
        (grid, body(ts=[ts]), "bad_type"),
        (grid, body(lat=91.0), "out_of_range"),
        (grid, body(acc=-1), "out_of_range"),
        (grid, body(heading=720), "out_of_range"),
        (grid, body(acc=None), "missing_field"),
        (grid, json.dumps({"lat": spot.lat, "lon": spot.lon}).encode(), "missing_field"),
        (grid, body(datum="mars"), "bad_value"),
        (grid, body(ts=ts + DAY), "future"),
        (grid, body(ts=ts - 8 * DAY), "too_old"),
        (grid, body(pad="x" * 5000), "too_large"),
        (grid, b"{" + b" " * 1_000_000 + b"}", "too_large"),
        (location_topic(prefix, "nobody-here"), body(), "unknown_worker"),
        (location_topic(prefix, "bad id"), body(), "bad_topic"),
        (location_topic(prefix, "w" * 65), body(), "bad_topic"),
        (f"{prefix}owntracks/who@where/phone", body(_type="location", tst=ts), "bad_topic"),
        (tracks, json.dumps({"_type": "teleport"}).encode(), "unknown_type"),
        (
            tracks,
            json.dumps({"lat": spot.lat, "lon": spot.lon, "tst": ts}).encode(),
            "missing_field",
        ),
        (f"{prefix}grid/{WORKER}/status", b'{"state": "asleep", "ts": 1}', "bad_value"),
        # Valid on its face, but BD-09 at the pole lies past it once converted to WGS-84.
        (grid, body(lat=-90.0, lon=-180.0, datum="bd09"), "out_of_range"),
    ]


async def test_garbage_is_refused_and_counted_by_reason_and_the_adapter_keeps_serving(
    sqlite_backend: Backend,
    mosquitto: str,
    mqtt: dict[str, Any],
    hubs: HubStarter,
    consoles: ConsoleFactory,
) -> None:
    running = await hubs(phone_settings(sqlite_backend, mqtt))
    console = await consoles(running, CONSOLES["grid"], f"org:{GRID}")
    spot = landmarks(demo_grids().area(GRID)).inside
    ts = float(round(now()) - 60)
    junk = garbage(mqtt["topic_prefix"], spot, ts)
    valid = (location_topic(mqtt["topic_prefix"]), grid_ping(spot, ts))
    # One connection, in order: once the valid ping is pushed, all the garbage was seen.
    await publish(mosquitto, [(topic, payload) for topic, payload, _ in junk] + [valid])
    await wait_for(console.recorder, position_at(ts))

    expected = Counter(reason for _, _, reason in junk)
    assert running.hub.metrics.locations.rejected_by_reason == dict(expected)
    assert await refused_metrics(running.url) == {r: float(n) for r, n in expected.items()}
    assert [row.fix_time for row in await positions_of(running.hub)] == [ts]
    assert running.hub.adapters[0].ready


# ---- property: random input through the pipeline -------------------------------------------

KNOWN = (WORKER, NEIGHBOUR)
BASE = time.time()
"""Valid fix times lie well inside the accepted window during the whole run."""

junk_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
fix_times = st.one_of(
    st.sampled_from([BASE - 3600.0, BASE - 3595.0, BASE - 60.0]),  # repeats: duplicates
    st.floats(BASE - DAY, BASE - 10.0),
    st.floats(BASE - DAY, BASE - 10.0).map(lambda s: round(s * 1000)),  # milliseconds
)
bad_fix_times = st.sampled_from([BASE + DAY, BASE - 8 * DAY, 0.0, 1e16]) | junk_values
"""Outside the accepted window, or not a time at all."""
POLES = st.sampled_from([-90.0, 90.0])
DATELINE = st.sampled_from([-180.0, 180.0])
BAD_ONE_IN = 12
"""A field is bad once in this many draws: most messages get far enough to be stored, or
fail on one field only."""


def field(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """A field's value: mostly plausible, now and then bad."""
    return draw(bad) if draw(st.integers(1, BAD_ONE_IN)) == 1 else draw(good)


@st.composite
def location_objects(draw: st.DrawFn, *, owntracks: bool) -> dict[str, Any]:
    """A location object in either format, every field possibly bad or missing."""
    obj: dict[str, Any] = {
        # In the demo grids, anywhere, or at the poles and the antimeridian.
        "lat": field(draw, st.floats(30.60, 30.67) | st.floats(-90.0, 90.0) | POLES, junk_values),
        "lon": field(
            draw, st.floats(114.35, 114.4) | st.floats(-180.0, 180.0) | DATELINE, junk_values
        ),
        "acc": field(draw, st.floats(0.0, 60.0), junk_values),
        "tst" if owntracks else "ts": field(draw, fix_times, bad_fix_times),
    }
    optional = {
        "alt": st.floats(-100.0, 500.0),
        "batt": st.integers(0, 100),
        "created_at": fix_times,
        "datum": st.sampled_from(["wgs84", "gcj02", "bd09", "WGS-84", "BD_09"]),
        ("vel" if owntracks else "speed"): st.floats(0.0, 50.0),
        ("cog" if owntracks else "heading"): st.floats(0.0, 360.0),
    }
    if owntracks:
        optional["tid"] = st.text(min_size=1, max_size=3)
    for key, good in optional.items():
        if draw(st.booleans()):
            obj[key] = field(draw, good, bad_fix_times if key == "created_at" else junk_values)
    if owntracks:
        kinds = st.sampled_from(["location", "location", "location", "lwt", "card"])
        obj["_type"] = field(draw, kinds, st.just("teleport") | junk_values)
    if draw(st.integers(1, BAD_ONE_IN)) == 1:
        del obj[draw(st.sampled_from(sorted(obj)))]
    return obj


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


def encoded(obj: Any) -> bytes:
    """JSON as Python writes it, NaN and Infinity included."""
    return json.dumps(obj, allow_nan=True).encode()


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """One (topic, payload): mostly near-valid phone messages, some pure noise."""
    kind = draw(st.sampled_from(["grid", "grid", "grid", "owntracks", "status", "noise"]))
    worker = field(draw, st.sampled_from(KNOWN), st.just("nobody-here") | st.text(max_size=70))
    if kind == "grid":
        topic = f"grid/{worker}/location"
        payload = encoded(draw(location_objects(owntracks=False)))
    elif kind == "owntracks":
        device = field(draw, st.just("phone"), st.sampled_from(["p@d", "x" * 65]))
        topic = f"owntracks/{worker}/{device}"
        payload = encoded(draw(location_objects(owntracks=True)))
    elif kind == "status":
        topic = f"grid/{worker}/status"
        states = st.sampled_from(["on_duty", "off_duty", "offline"])
        state = field(draw, states, junk_values)
        payload = encoded({"state": state, "ts": field(draw, fix_times, bad_fix_times)})
    else:
        topic = draw(st.text(max_size=40) | st.sampled_from(["grid/x/location", "owntracks/a/b"]))
        payload = draw(st.binary(max_size=64) | st.builds(encoded, json_values))
    if draw(st.integers(1, 2 * BAD_ONE_IN)) == 1:
        payload = payload + b" " * 5000  # over max_payload_bytes
    return topic, payload


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(messages(), min_size=1, max_size=12))
async def test_random_phone_messages_never_raise_store_nothing_invalid_and_add_up(
    sqlite_hub: RunningHub, batch: list[tuple[str, bytes]]
) -> None:
    hub = sqlite_hub.hub
    service = hub.locations
    limits = hub.settings.locations
    counters = hub.metrics.locations
    rejected_before = Counter(counters.rejected_by_reason)
    stored_before, duplicates_before = counters.stored, counters.duplicates
    expected_rows = await stored_rows(sqlite_hub)

    reasons: Counter[str] = Counter()
    pings = statuses = ignored = 0
    clock = time.time()
    for topic, payload in batch:
        try:
            message = parse(
                topic,
                payload,
                now=clock,
                max_skew=limits.max_skew,
                max_age=limits.max_age,
                max_bytes=limits.max_payload_bytes,
            )
        except PayloadRejected as err:
            reasons[str(err.reason)] += 1
            continue
        if isinstance(message, Ignored):
            ignored += 1
        elif service.registry.get(message.worker_id) is None:
            reasons["unknown_worker"] += 1
        elif isinstance(message, StatusReport):
            statuses += 1
        else:
            assert isinstance(message, LocationPing)
            point = message.wgs84()
            if abs(point.lat) > 90 or abs(point.lon) > 180:
                reasons["out_of_range"] += 1
                continue
            pings += 1
            expected_rows.setdefault((message.worker_id, message.fix_time), point)

    await service.ingest([InboundMessage(t, p, time.time()) for t, p in batch])

    rejected = Counter(counters.rejected_by_reason)
    rejected.subtract(rejected_before)
    assert +rejected == reasons
    stored = counters.stored - stored_before
    duplicates = counters.duplicates - duplicates_before
    assert stored + duplicates == pings
    assert sum(reasons.values()) + ignored + statuses + pings == len(batch)
    rows = await stored_rows(sqlite_hub)
    assert rows == expected_rows  # only valid fixes, each once, as sent (in WGS-84)
    assert len(rows) == counters.stored


async def stored_rows(running: RunningHub) -> dict[tuple[str, float], LatLon]:
    """Every stored position: (worker, fix time) → point; checks each row is sane."""
    async with running.hub.sessions() as session:
        rows = (await session.scalars(select(Position))).all()
    out: dict[tuple[str, float], LatLon] = {}
    for row in rows:
        assert row.worker_id in KNOWN
        assert math.isfinite(row.lat) and -90 <= row.lat <= 90
        assert math.isfinite(row.lon) and -180 <= row.lon <= 180
        assert math.isfinite(row.accuracy_m) and row.accuracy_m >= 0
        out[(row.worker_id, row.fix_time)] = LatLon(row.lat, row.lon)
    return out
