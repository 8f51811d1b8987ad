"""Grid-worker REST on both backends: the registry (scoping, validation, a new worker's
pings accepted at once), latest positions in WGS-84, track playback and grid polygons.

Pings enter through the location service's ingest, as the MQTT adapter hands them over;
the MQTT path itself is proven in tests/integration/locations.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import func, select

from hub.db.models import Position
from hub.state import Hub
from protocols.geo import LatLon, gcj02_to_wgs84, haversine_m, wgs84_to_gcj02
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.support.hubs import token
from tests.support.phones import inside, location

ADMIN = token("admin", "d01", ["admin"])
STREET_ADMIN = token("s01-admin", "d01.s01", ["admin"])
C01_DISPATCHER = token("c01-dispatcher", "d01.s01.c01", ["dispatcher"])
C02_DISPATCHER = token("c02-dispatcher", "d01.s01.c02", ["dispatcher"])
WORKERS = "/api/v1/workers"
GRID = "d01.s01.c01.g01"
WORKER = "s01c01g01-worker"
DEMO_WORKERS = 36
STEP_S = 5.0


async def stored(hub: Hub, worker: str) -> int:
    """Positions stored for a worker."""
    async with hub.sessions() as session:
        query = select(func.count()).select_from(Position).where(Position.worker_id == worker)
        return int(await session.scalar(query) or 0)


async def test_workers_are_listed_inside_the_callers_subtree_only(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, ADMIN)
    everyone = await api.get(WORKERS, limit="500")
    assert everyone.status == 200, everyone.body
    assert len(everyone.body["items"]) == DEMO_WORKERS

    mine = await api.as_(C01_DISPATCHER).get(WORKERS)
    assert {w["grid"].rsplit(".", 1)[0] for w in mine.body["items"]} == {"d01.s01.c01"}
    assert len(mine.body["items"]) == 4

    sibling = await api.as_(C01_DISPATCHER).get(WORKERS, org="d01.s01.c02")
    assert sibling.status == 403 and sibling.code == "auth.forbidden"
    other = await api.as_(C01_DISPATCHER).get(f"{WORKERS}/s01c02g01-worker")
    assert other.status == 403

    first = await api.get(WORKERS, limit="10")
    second = await api.get(WORKERS, limit="10", cursor=first.body["next_cursor"])
    ids = [w["id"] for w in first.body["items"] + second.body["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 20


async def test_a_registered_worker_reports_at_once_and_a_deactivated_one_is_refused(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    hub = running_hub.hub
    api = Api(http, running_hub.url, STREET_ADMIN)
    body = {"id": "new-phone", "name": "新网格员", "phone": "13900000001", "grid": GRID}
    created = await api.post(WORKERS, body)
    assert created.status == 201, created.body
    assert created.headers["Location"] == f"{WORKERS}/new-phone"
    assert created.body["online"] is False and created.body["duty"] == "unknown"

    point = inside(hub, GRID)
    await hub.locations.ingest([location("new-phone", point, time.time() - 10)])
    assert await stored(hub, "new-phone") == 1
    got = await api.get(f"{WORKERS}/new-phone")
    assert got.body["online"] is True

    off = await api.patch(f"{WORKERS}/new-phone", {"active": False})
    assert off.status == 200 and off.body["active"] is False
    refused_before = hub.metrics.locations.rejected_by_reason.get("unknown_worker", 0)
    await hub.locations.ingest([location("new-phone", point, time.time() - 5)])
    assert await stored(hub, "new-phone") == 1
    assert hub.metrics.locations.rejected_by_reason["unknown_worker"] == refused_before + 1


async def test_worker_writes_are_validated_and_admin_only(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, STREET_ADMIN)
    good = {"id": "w-valid", "name": "张三", "grid": GRID}
    assert (await api.as_(C01_DISPATCHER).post(WORKERS, good)).status == 403
    outside = await api.post(WORKERS, {**good, "grid": "d01.s02.c01.g01"})
    assert outside.status == 403 and outside.code == "auth.forbidden"
    not_a_grid = await api.post(WORKERS, {**good, "grid": "d01.s01.c01"})
    assert not_a_grid.status == 422 and not_a_grid.code == "worker.invalid"
    bad_id = await api.post(WORKERS, {**good, "id": "has/slash"})
    assert bad_id.status == 422 and bad_id.code == "worker.invalid"
    bad_datum = await api.post(WORKERS, {**good, "datum": "mars"})
    assert bad_datum.status == 422
    assert (await api.post(WORKERS, good)).status == 201
    again = await api.post(WORKERS, good)
    assert again.status == 409 and again.code == "worker.exists"
    nothing = await api.patch(f"{WORKERS}/w-valid", {})
    assert nothing.status == 422
    missing = await api.get(f"{WORKERS}/nobody")
    assert missing.status == 404 and missing.code == "worker.not_found"


async def test_positions_are_wgs84_whatever_datum_the_phone_reports(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    hub = running_hub.hub
    api = Api(http, running_hub.url, ADMIN)
    body = {"id": "gcj-phone", "name": "李四", "grid": GRID, "datum": "gcj02"}
    assert (await api.post(WORKERS, body)).status == 201
    truth = inside(hub, GRID)
    gcj_lat, gcj_lon = wgs84_to_gcj02(truth.lat, truth.lon)
    now = time.time()
    await hub.locations.ingest(
        [
            location("gcj-phone", LatLon(gcj_lat, gcj_lon), now - 20),
            location(WORKER, truth, now - 30),
            location(WORKER, LatLon(truth.lat + 0.0001, truth.lon), now - 25),  # the newer fix wins
        ]
    )
    reply = await api.as_(C01_DISPATCHER).get(f"{WORKERS}/positions")
    assert reply.status == 200, reply.body
    assert reply.body["datum"] == "wgs84"
    by_id = {p["worker_id"]: p for p in reply.body["items"]}
    assert set(by_id) == {"gcj-phone", WORKER}
    expected = gcj02_to_wgs84(gcj_lat, gcj_lon)
    assert (
        haversine_m(LatLon(*expected), LatLon(by_id["gcj-phone"]["lat"], by_id["gcj-phone"]["lon"]))
        < 0.5
    )
    assert haversine_m(truth, LatLon(by_id["gcj-phone"]["lat"], by_id["gcj-phone"]["lon"])) < 1.0
    assert by_id[WORKER]["lat"] == pytest.approx(truth.lat + 0.0001)
    assert by_id[WORKER]["fix_time"] == pytest.approx(now - 25)
    assert by_id[WORKER]["online"] is True

    sibling = await api.as_(C02_DISPATCHER).get(f"{WORKERS}/positions")
    assert sibling.status == 200 and sibling.body["items"] == []


async def test_track_playback_gives_the_line_times_distance_and_time_outside_the_grid(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    hub = running_hub.hub
    api = Api(http, running_hub.url, C01_DISPATCHER)
    start = inside(hub, GRID)
    box = hub.locations.registry.grids.area(GRID).bbox
    t0 = time.time() - 3600
    # 60 fixes standing still in the grid (sub-metre jitter), then 60 walking east outside.
    fixes = [LatLon(start.lat + (i % 2) * 2e-6, start.lon) for i in range(60)]
    out = LatLon(start.lat, box.max_lon + 0.003)
    fixes += [LatLon(out.lat, out.lon + i * 0.0002) for i in range(60)]
    await hub.locations.ingest([location(WORKER, p, t0 + i * STEP_S) for i, p in enumerate(fixes)])
    path = f"{WORKERS}/{WORKER}/track"
    window = {"from": str(t0 - 1), "to": str(t0 + 1000)}

    full = await api.get(path, simplify="0", **window)
    assert full.status == 200, full.body
    assert full.headers["Content-Type"].startswith("application/geo+json")
    feature = full.body
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "LineString"
    props = feature["properties"]
    assert props["point_count"] == props["simplified_count"] == 120
    assert len(feature["geometry"]["coordinates"]) == len(props["times"]) == 120
    assert props["times"] == sorted(props["times"])
    assert props["duration_s"] == pytest.approx(119 * STEP_S)
    assert props["time_outside_s"] == pytest.approx(59 * STEP_S)
    walked = haversine_m(fixes[59], fixes[60]) + sum(
        haversine_m(fixes[i], fixes[i + 1]) for i in range(60, 119)
    )
    assert props["distance_m"] == pytest.approx(walked, rel=0.01)

    simplified = await api.get(path, **window)
    assert simplified.body["properties"]["point_count"] == 120
    assert simplified.body["properties"]["simplified_count"] < 10

    since = datetime.fromtimestamp(t0 - 1, UTC).isoformat()
    iso = await api.get(path, simplify="0", times="iso", **{"from": since, "to": str(t0 + 100)})
    assert iso.body["properties"]["point_count"] == 21
    assert iso.body["properties"]["times"][0].endswith("Z")

    too_wide = await api.get(path, **{"from": "0", "to": str(t0)})
    assert too_wide.status == 400 and too_wide.code == "request.invalid_query"
    garbage = await api.get(path, **{"from": "yesterday"})
    assert garbage.status == 400
    forbidden = await api.as_(C02_DISPATCHER).get(path)
    assert forbidden.status == 403


async def test_a_track_too_long_to_return_unsimplified_is_refused_with_a_clear_code(
    backend: Backend,
) -> None:
    hub = await start_hub(backend_settings(backend, locations={"track_max_points": 10}))
    try:
        point = inside(hub.hub, GRID)
        t0 = time.time() - 600
        await hub.hub.locations.ingest([location(WORKER, point, t0 + i) for i in range(11)])
        async with aiohttp.ClientSession() as http:
            api = Api(http, hub.url, ADMIN)
            path = f"{WORKERS}/{WORKER}/track"
            raw = await api.get(path, simplify="0")
            assert raw.status == 422 and raw.code == "track.too_long"
            simplified = await api.get(path)
            assert simplified.status == 200
            assert simplified.body["properties"]["point_count"] == 11
    finally:
        await hub.server.close()


async def test_grid_polygons_are_served_for_the_callers_subtree(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, C01_DISPATCHER)
    reply = await api.get("/api/v1/grids")
    assert reply.status == 200
    paths = {f["properties"]["path"] for f in reply.body["features"]}
    assert GRID in paths
    assert all(p.startswith("d01.s01.c01") for p in paths)
    polygon = next(f for f in reply.body["features"] if f["properties"]["path"] == GRID)
    assert polygon["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert (await api.get("/api/v1/grids", org="d01")).status == 403
