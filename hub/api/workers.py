"""Grid-worker REST: the registry (list, get, create, update), latest positions, tracks and
the grid polygons the console draws them on.

Who may do what is the directory's rule (hub/api/directory.py): any signed-in user reads
inside their own org subtree, admins write inside theirs. A worker belongs to the subtree
of their grid.
"""

from __future__ import annotations

import time

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.api.auth import require_identity
from hub.api.directory_http import (
    ADMIN,
    NOTHING_TO_CHANGE,
    check_scope,
    json_reply,
    page_by_id,
    read_body,
    validate,
)
from hub.api.directory_models import DirectoryError, bad_query, parse_query
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.api.worker_models import (
    MAX_TRACK_RANGE_S,
    GridFeatures,
    PositionList,
    SubtreeQuery,
    TrackFeature,
    TrackQuery,
    WorkerOut,
    WorkerPage,
    WorkerPositionOut,
    WorkerQuery,
    WorkerSpec,
    WorkerUpdate,
)
from hub.auth.tokens import Identity
from hub.db.models import LatestPosition, OrgNode, Worker
from hub.db.paths import in_subtree
from hub.locations.tracks import TrackTooLong, track
from hub.state import HUB
from protocols.envelope import org_contains

WORKERS = "/api/v1/workers"
POSITIONS = "/api/v1/workers/positions"
WORKER = "/api/v1/workers/{id}"
TRACK = "/api/v1/workers/{id}/track"
GRIDS = "/api/v1/grids"
GRID_LEVEL = "grid"
MAX_WORKER_ID = 64


def _worker_id(request: web.Request) -> str:
    worker_id = request.match_info["id"]
    if len(worker_id) > MAX_WORKER_ID:
        raise DirectoryError(404, "worker.not_found", "no such worker")
    return worker_id


async def _visible_worker(session: AsyncSession, identity: Identity, worker_id: str) -> Worker:
    worker = await session.get(Worker, worker_id)
    if worker is None:
        raise DirectoryError(404, "worker.not_found", f"no worker {worker_id}")
    check_scope(identity, worker.grid)
    return worker


async def _require_grid(session: AsyncSession, path: str) -> None:
    node = await session.get(OrgNode, path)
    if node is None or node.level != GRID_LEVEL:
        msg = f"no grid {path}" if node is None else f"{path} is a {node.level}, not a grid"
        raise DirectoryError(422, "worker.invalid", msg, [{"loc": "grid", "msg": msg}])


async def list_workers(request: web.Request) -> web.Response:
    """A page of workers of a subtree (default: the caller's), ordered by id."""
    identity = require_identity(request)
    query = parse_query(WorkerQuery, dict(request.query))
    root = query.org or identity.org
    check_scope(identity, root)
    stmt = select(Worker).where(in_subtree(Worker.grid, root))
    if query.online is not None:
        stmt = stmt.where(Worker.online.is_(query.online))
    if query.active is not None:
        stmt = stmt.where(Worker.active.is_(query.active))
    async with request.app[HUB].sessions() as session:
        page, cursor = await page_by_id(session, stmt, Worker.id, query)
    items = [WorkerOut.model_validate(r) for r in page]
    return json_reply(WorkerPage(items=items, next_cursor=cursor))


async def get_worker(request: web.Request) -> web.Response:
    """One worker."""
    identity = require_identity(request)
    async with request.app[HUB].sessions() as session:
        worker = await _visible_worker(session, identity, _worker_id(request))
    return json_reply(WorkerOut.model_validate(worker))


async def create_worker(request: web.Request) -> web.Response:
    """Register a worker in a grid of the admin's subtree (admins)."""
    identity = require_identity(request, ADMIN)
    spec = await read_body(request, WorkerSpec, "worker.invalid")
    check_scope(identity, spec.grid)
    hub = request.app[HUB]
    try:
        async with hub.sessions() as session, session.begin():
            if await session.get(Worker, spec.id) is not None:
                raise DirectoryError(409, "worker.exists", f"worker {spec.id} exists")
            await _require_grid(session, spec.grid)
            worker = Worker(**spec.model_dump())
            session.add(worker)
            await session.flush()
            await session.refresh(worker)
    except IntegrityError as err:
        raise DirectoryError(409, "worker.exists", f"worker {spec.id} exists") from err
    hub.locations.registry.upsert(worker)
    return json_reply(WorkerOut.model_validate(worker), 201, Location=f"{WORKERS}/{spec.id}")


async def update_worker(request: web.Request) -> web.Response:
    """Change a worker's name, phone, grid, datum or active flag (admins; a move needs both
    grids in the admin's subtree)."""
    identity = require_identity(request, ADMIN)
    worker_id = _worker_id(request)
    patch = await read_body(request, WorkerUpdate, "worker.invalid")
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        raise DirectoryError(422, "worker.invalid", "nothing to change", NOTHING_TO_CHANGE)
    hub = request.app[HUB]
    async with hub.sessions() as session, session.begin():
        worker = await _visible_worker(session, identity, worker_id)
        current = WorkerSpec.model_validate(worker, from_attributes=True).model_dump()
        merged = validate(WorkerSpec, {**current, **changes}, "worker.invalid")
        if merged.grid != worker.grid:
            check_scope(identity, merged.grid)
            await _require_grid(session, merged.grid)
        for name in changes:
            setattr(worker, name, getattr(merged, name))
        await session.flush()
        await session.refresh(worker)
    hub.locations.registry.upsert(worker)
    return json_reply(WorkerOut.model_validate(worker))


async def list_positions(request: web.Request) -> web.Response:
    """The latest position of every worker of a subtree who ever reported."""
    identity = require_identity(request)
    query = parse_query(SubtreeQuery, dict(request.query))
    root = query.org or identity.org
    check_scope(identity, root)
    stmt = (
        select(LatestPosition, Worker)
        .join(Worker, Worker.id == LatestPosition.worker_id)
        .where(in_subtree(Worker.grid, root), Worker.active)
        .order_by(Worker.id)
    )
    async with request.app[HUB].sessions() as session:
        rows = (await session.execute(stmt)).all()
    items = [
        WorkerPositionOut(
            worker_id=worker.id,
            name=worker.name,
            grid=worker.grid,
            lat=pos.lat,
            lon=pos.lon,
            accuracy_m=pos.accuracy_m,
            fix_time=pos.fix_time,
            received_at=pos.received_at,
            battery_pct=pos.battery_pct,
            in_grid=pos.in_grid,
            online=worker.online,
            duty=worker.duty,
        )
        for pos, worker in rows
    ]
    return json_reply(PositionList(items=items))


async def get_track(request: web.Request) -> web.Response:
    """A worker's track over a time range as a GeoJSON Feature (playback)."""
    identity = require_identity(request)
    worker_id = _worker_id(request)
    query = parse_query(TrackQuery, dict(request.query))
    start, end = query.window(time.time())
    if end < start or end - start > MAX_TRACK_RANGE_S:
        msg = f"need from <= to, at most {MAX_TRACK_RANGE_S / 86400:.0f} days apart"
        raise bad_query([{"loc": "from", "msg": msg}])
    hub = request.app[HUB]
    async with hub.sessions() as session:
        worker = await _visible_worker(session, identity, worker_id)
    settings = hub.settings.locations
    tolerance = query.simplify if query.simplify is not None else settings.track_default_simplify_m
    try:
        feature = await track(
            hub.sessions,
            worker.id,
            worker.grid,
            start,
            end,
            tolerance_m=tolerance,
            max_points=settings.track_max_points,
            max_gap_s=settings.track_max_gap_s,
            times=query.times,
        )
    except TrackTooLong as err:
        raise DirectoryError(422, "track.too_long", str(err)) from err
    return web.json_response(feature, content_type="application/geo+json")


async def list_grids(request: web.Request) -> web.Response:
    """Grid polygons of a subtree (default: the caller's) as GeoJSON."""
    identity = require_identity(request)
    query = parse_query(SubtreeQuery, dict(request.query))
    root = query.org or identity.org
    check_scope(identity, root)
    grids = request.app[HUB].locations.registry.grids
    features = [grids.area(path).to_feature() for path in grids.paths if org_contains(root, path)]
    return web.json_response(
        GridFeatures(features=features).model_dump(), content_type="application/geo+json"
    )


# -- routes and their documentation -------------------------------------------------------

_READ = (
    "Any signed-in user may read inside their own org subtree; a worker belongs to the "
    "subtree of their grid. Outside it: 403 auth.forbidden."
)
_WRITE = "Admins only (role `admin`), inside the admin's own org subtree."
_ID = {"id": "Worker id (the `<worker_id>` of the phone's MQTT topic)."}
_READ_ERRORS = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
_BODY_ERRORS = ("request.invalid_json", "request.too_large")
_GEOJSON = "application/geo+json"

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("GET", POSITIONS, list_positions, Operation(
        "Latest positions of the workers of a subtree", "workers",
        _READ + " Coordinates are WGS-84 whatever the phones sent (GCJ-02 and BD-09 are "
        "converted on the way in).", "bearer", query=SubtreeQuery,
        replies={200: Reply("One entry per worker who ever reported.", PositionList)},
        errors=(*_READ_ERRORS, "request.invalid_query"),
    )),
    ("GET", WORKERS, list_workers, Operation(
        "List grid workers", "workers", _READ + " Pages follow `next_cursor`.", "bearer",
        query=WorkerQuery, replies={200: Reply("One page, ordered by id.", WorkerPage)},
        errors=(*_READ_ERRORS, "request.invalid_query"),
    )),
    ("POST", WORKERS, create_worker, Operation(
        "Register a grid worker", "workers",
        "The grid must be an org node of level grid in the admin's subtree. The phone may "
        "report at once: its pings are accepted from the moment this returns. " + _WRITE,
        "bearer", body=WorkerSpec,
        replies={201: Reply("Created.", WorkerOut, headers={"Location": "The worker's URL."})},
        errors=(*_READ_ERRORS, *_BODY_ERRORS, "worker.invalid", "worker.exists"),
    )),
    ("GET", WORKER, get_worker, Operation(
        "Get a grid worker", "workers", _READ, "bearer", path_params=_ID,
        replies={200: Reply("The worker.", WorkerOut)},
        errors=(*_READ_ERRORS, "worker.not_found"),
    )),
    ("PATCH", WORKER, update_worker, Operation(
        "Update a grid worker", "workers",
        "Only the fields given change; `active=false` stops accepting the phone's pings. "
        + _WRITE, "bearer", body=WorkerUpdate, path_params=_ID,
        replies={200: Reply("The updated worker.", WorkerOut)},
        errors=(*_READ_ERRORS, *_BODY_ERRORS, "worker.invalid", "worker.not_found"),
    )),
    ("GET", TRACK, get_track, Operation(
        "A worker's track for playback (轨迹回放)", "workers",
        _READ + " A GeoJSON Feature: a LineString of the fixes in the range (simplified "
        "unless `simplify=0`), `properties.times` aligned with the coordinates, and the "
        "distance, duration and time outside the worker's grid over every fix.",
        "bearer", query=TrackQuery, path_params=_ID,
        replies={200: Reply("The track.", TrackFeature, content_type=_GEOJSON)},
        errors=(*_READ_ERRORS, "request.invalid_query", "worker.not_found", "track.too_long"),
    )),
    ("GET", GRIDS, list_grids, Operation(
        "Grid polygons of a subtree", "workers", _READ, "bearer", query=SubtreeQuery,
        replies={200: Reply("The polygons.", GridFeatures, content_type=_GEOJSON)},
        errors=(*_READ_ERRORS, "request.invalid_query"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the worker routes (positions before ``{id}``: routes match in order)."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
