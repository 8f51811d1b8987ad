"""Tools for the location acceptance tests: phone payloads, a paho publisher for mixed
topics, waits on console clients' publications, database reads, and points inside, outside
and along the demo grids."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from hub.config import LocationSettings
from hub.db.models import LatestPosition, OutboxEvent, Position, Worker
from hub.state import Hub
from protocols.geo import Area, GridIndex, LatLon
from tests.support.clients import Recorder, next_item

WAIT = 20.0
PUBLISH_TIMEOUT = 30.0
POLL = 0.05

WORKER = "s01c01g01-worker"
GRID = "d01.s01.c01.g01"
NEIGHBOUR = "s01c01g02-worker"
NEIGHBOUR_GRID = "d01.s01.c01.g02"

# Console users of the demo directory, one per tier above the worker, and one of the
# sibling community (d01.s01.c02), who must never see the worker.
CONSOLES = {
    "grid": ("s01c01g01-worker", GRID, ["grid_worker"]),
    "community": ("s01c01-dispatcher", "d01.s01.c01", ["dispatcher"]),
    "street": ("s01-dispatcher", "d01.s01", ["dispatcher"]),
    "district": ("d01-dispatcher", "d01", ["dispatcher"]),
}
SIBLING = ("s01c02-dispatcher", "d01.s01.c02", ["dispatcher"])

WORKER_EVENTS = frozenset(
    {"worker.left_grid", "worker.entered_grid", "worker.offline", "worker.online"}
)
"""The outbox events of the pipeline (worker.position is a live push, not an outbox row)."""


def unique_mqtt(**overrides: Any) -> dict[str, Any]:
    """MQTT settings for one test: a unique client id and topic prefix, a short session
    expiry (the shared broker forgets the session soon if cleanup fails), short timers."""
    tag = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "enabled": True,
        "client_id": f"test-loc-{tag}",
        "topic_prefix": f"t{tag}/",
        "session_expiry": 300,
        "batch_interval": 0.01,
        "reconnect_max_delay": 0.5,
    }
    values.update(overrides)
    return values


# ---- payloads ------------------------------------------------------------------------------


def grid_ping(point: LatLon, ts: float, *, acc: float = 8.0, **extra: Any) -> bytes:
    """A ``grid/<id>/location`` payload."""
    return json.dumps({"lat": point.lat, "lon": point.lon, "acc": acc, "ts": ts, **extra}).encode()


def owntracks_ping(point: LatLon, tst: float, **extra: Any) -> bytes:
    """An OwnTracks ``_type: location`` payload."""
    body = {"_type": "location", "lat": point.lat, "lon": point.lon, "tst": tst, **extra}
    return json.dumps(body).encode()


def location_topic(prefix: str, worker: str = WORKER) -> str:
    """``<prefix>grid/<worker>/location``."""
    return f"{prefix}grid/{worker}/location"


# ---- publishing ----------------------------------------------------------------------------


def _publish_blocking(url: str, messages: list[tuple[str, bytes]], qos: int) -> None:
    parts = urlsplit(url)
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"phone-{uuid.uuid4().hex[:12]}",
        protocol=paho.MQTTv5,
    )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT)
            if not info.is_published():
                raise TimeoutError(f"publish {info.mid} not acknowledged by the broker")
    finally:
        client.disconnect()
        client.loop_stop()


async def publish(url: str, messages: list[tuple[str, bytes]], *, qos: int = 1) -> None:
    """Publish (topic, payload) pairs in order over one paho connection; return once the
    broker acknowledged every one (QoS 1: the broker has accepted them)."""
    await asyncio.to_thread(_publish_blocking, url, messages, qos)


# ---- console clients -----------------------------------------------------------------------


async def next_envelope(recorder: Recorder, timeout: float = WAIT) -> dict[str, Any]:
    """The next publication's envelope."""
    ctx = await next_item(recorder.publications, timeout)
    envelope: dict[str, Any] = ctx.pub.data
    return envelope


async def wait_for(
    recorder: Recorder,
    match: Callable[[dict[str, Any]], bool],
    seen: list[dict[str, Any]] | None = None,
    timeout: float = WAIT,
) -> dict[str, Any]:
    """Read publications until one matches; every envelope read goes to ``seen``."""
    async with asyncio.timeout(timeout):
        while True:
            envelope = await next_envelope(recorder)
            if seen is not None:
                seen.append(envelope)
            if match(envelope):
                return envelope


async def wait_for_all(
    recorder: Recorder,
    matches: Iterable[Callable[[dict[str, Any]], bool]],
    seen: list[dict[str, Any]] | None = None,
    timeout: float = WAIT,
) -> list[dict[str, Any]]:
    """Read publications until each matcher has matched one (in any order); returns
    everything read."""
    pending = list(matches)
    read: list[dict[str, Any]] = [] if seen is None else seen
    async with asyncio.timeout(timeout):
        while pending:
            envelope = await next_envelope(recorder)
            read.append(envelope)
            pending = [m for m in pending if not m(envelope)]
    return read


async def read_until(
    recorder: Recorder,
    seen: list[dict[str, Any]],
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = WAIT,
) -> None:
    """Append publications to ``seen`` until ``done(seen)`` holds (checked first)."""
    async with asyncio.timeout(timeout):
        while not done(seen):
            seen.append(await next_envelope(recorder))


def count_of(event_type: str) -> Callable[[list[dict[str, Any]]], int]:
    """How many envelopes of ``event_type`` a list holds."""
    return lambda seen: sum(e["type"] == event_type for e in seen)


def position_at(fix_time: float, worker: str = WORKER) -> Callable[[dict[str, Any]], bool]:
    """Matches the worker.position of ``worker`` with this fix time."""

    def match(envelope: dict[str, Any]) -> bool:
        data = envelope["data"]
        return (
            envelope["type"] == "worker.position"
            and data["worker_id"] == worker
            and math.isclose(data["fix_time"], fix_time, rel_tol=0.0, abs_tol=1e-6)
        )

    return match


def of_type(event_type: str) -> Callable[[dict[str, Any]], bool]:
    """Matches envelopes of one type."""
    return lambda envelope: envelope["type"] == event_type


def with_id(event_id: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the envelope with this id."""
    return lambda envelope: envelope["id"] == event_id


# ---- database ------------------------------------------------------------------------------


async def positions_of(hub: Hub, worker: str = WORKER) -> list[Position]:
    """Every stored position of a worker, by fix time."""
    async with hub.sessions() as session:
        query = select(Position).where(Position.worker_id == worker).order_by(Position.fix_time)
        return list((await session.scalars(query)).all())


async def latest_of(hub: Hub, worker: str = WORKER) -> LatestPosition | None:
    """A worker's latest position row."""
    async with hub.sessions() as session:
        return await session.get(LatestPosition, worker)


async def worker_row(hub: Hub, worker: str = WORKER) -> Worker | None:
    """A worker's row."""
    async with hub.sessions() as session:
        return await session.get(Worker, worker)


async def worker_events(hub: Hub, worker: str | None = WORKER) -> list[dict[str, Any]]:
    """The pipeline's outbox events (of one worker, or all), in commit order."""
    async with hub.sessions() as session:
        query = (
            select(OutboxEvent).where(OutboxEvent.type.in_(WORKER_EVENTS)).order_by(OutboxEvent.id)
        )
        rows = (await session.scalars(query)).all()
    events = [json.loads(row.payload) for row in rows]
    return [e for e in events if worker is None or e["data"]["worker_id"] == worker]


# ---- HTTP ----------------------------------------------------------------------------------


async def readiness(base_url: str) -> tuple[int, dict[str, Any]]:
    """``GET /readyz``: status and body."""
    async with aiohttp.ClientSession() as http, http.get(base_url + "/readyz") as resp:
        return resp.status, await resp.json()


async def until_ready(base_url: str, ready: bool, timeout: float = WAIT) -> dict[str, Any]:
    """Poll /readyz (readiness has no event to wait on) until the MQTT adapter's check is
    ok (``ready``) or not; returns the checks."""
    async with asyncio.timeout(timeout):
        while True:
            _, body = await readiness(base_url)
            if (body["checks"].get("adapter:mqtt") == "ok") is ready:
                return dict(body["checks"])
            await asyncio.sleep(POLL)


REFUSED = re.compile(r'^hub_phone_messages_refused_total\{reason="([^"]+)"\} (\S+)$', re.M)


async def refused_metrics(base_url: str) -> dict[str, float]:
    """``hub_phone_messages_refused_total`` by reason from ``/metrics``."""
    async with aiohttp.ClientSession() as http, http.get(base_url + "/metrics") as resp:
        text = await resp.text()
    return {reason: float(value) for reason, value in REFUSED.findall(text)}


# ---- geometry ------------------------------------------------------------------------------


def demo_grids() -> GridIndex:
    """The demo grid polygons the hub loads by default."""
    path = LocationSettings().grids_file
    return GridIndex.from_geojson(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Landmarks:
    """A point well inside a grid and one well outside it (metres from the boundary)."""

    inside: LatLon
    outside: LatLon
    inside_m: float
    outside_m: float


def landmarks(area: Area, *, outside_between: tuple[float, float] = (150.0, 400.0)) -> Landmarks:
    """The deepest inside point of a lattice over the grid, and a lattice point outside it
    at a distance in ``outside_between``."""
    box = area.bbox
    pad = 0.005
    steps = 40
    best_in: tuple[float, LatLon] | None = None
    best_out: tuple[float, LatLon] | None = None
    lo, hi = outside_between
    for i in range(steps + 1):
        for j in range(steps + 1):
            point = LatLon(
                box.min_lat - pad + (box.max_lat - box.min_lat + 2 * pad) * i / steps,
                box.min_lon - pad + (box.max_lon - box.min_lon + 2 * pad) * j / steps,
            )
            d = area.signed_distance_m(point)
            if best_in is None or d < best_in[0]:
                best_in = (d, point)
            if lo <= d <= hi and (best_out is None or abs(d - (lo + hi) / 2) < best_out[0]):
                best_out = (abs(d - (lo + hi) / 2), point)
    assert best_in is not None and best_in[0] < -100, "no point deep inside the grid"
    assert best_out is not None, "no lattice point at the wanted distance outside"
    return Landmarks(best_in[1], best_out[1], -best_in[0], area.signed_distance_m(best_out[1]))


def boundary_walk(
    area: Area,
    *,
    seed: int,
    speed_mps: float = 1.4,
    every_s: float = 5.0,
    sigma_m: float = 8.0,
    rho: float = 0.8,
    accuracy_m: float = 10.0,
) -> list[tuple[LatLon, float, float]]:
    """Fixes of a worker walking exactly along the grid's outer boundary, once around:
    (noisy point, accuracy, seconds since the start). The noise is GPS-like: each axis an
    AR(1) process (it wanders rather than jitters) with stationary σ = ``sigma_m``; the
    reported accuracy scatters around ``accuracy_m``."""
    rng = random.Random(seed)
    ring = area.polygons[0].exterior
    ref = LatLon(ring[0][1], ring[0][0])
    kx = 111_195.0 * math.cos(math.radians(ref.lat))
    ky = 111_195.0
    pts = [((lon - ref.lon) * kx, (lat - ref.lat) * ky) for lon, lat in ring]
    step = speed_mps * every_s
    innovation = sigma_m * math.sqrt(1 - rho * rho)
    nx = rng.gauss(0, sigma_m)
    ny = rng.gauss(0, sigma_m)
    fixes: list[tuple[LatLon, float, float]] = []
    carry = 0.0
    t = 0.0
    for (ax, ay), (bx, by) in itertools.pairwise(pts):
        length = math.hypot(bx - ax, by - ay)
        s = carry
        while s < length:
            x = ax + (bx - ax) * s / length + nx
            y = ay + (by - ay) * s / length + ny
            acc = max(3.0, rng.gauss(accuracy_m, 3.0))
            fixes.append((LatLon(ref.lat + y / ky, ref.lon + x / kx), acc, t))
            t += every_s
            nx = rho * nx + rng.gauss(0, innovation)
            ny = rho * ny + rng.gauss(0, innovation)
            s += step
        carry = s - length
    return fixes


def flips(flags: Iterable[bool | None]) -> int:
    """How often a sequence of inside/outside flags changes value."""
    values = [f for f in flags if f is not None]
    return sum(1 for a, b in itertools.pairwise(values) if a != b)


def now() -> float:
    """Wall-clock time (Unix seconds)."""
    return time.time()
