"""Camera REST (雪亮工程 registry): list, get, create, update, delete, and alarms pushed by
camera platforms. Live view and snapshots are the media plane's routes under the same
prefix (``/api/v1/cameras/{id}/whep``, ``/snapshot.jpg``), registered elsewhere.

Anyone signed in reads the cameras of their own org subtree; a camera outside it does not
exist for them (404). Admins, dispatchers and leaders write inside their subtree; a
``file://`` source (a file on the hub's disk) is for admins only. ONVIF credentials are
write-only: responses say ``has_credentials`` instead.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import Text, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.api.auth import require_identity
from hub.api.camera_models import (
    AlarmAccepted,
    AlarmIn,
    CameraCreate,
    CameraOut,
    CameraPage,
    CameraQuery,
    CameraUpdate,
)
from hub.api.directory_http import (
    ADMIN,
    NOTHING_TO_CHANGE,
    check_scope,
    json_reply,
    page_by_id,
    read_body,
    validate,
)
from hub.api.directory_models import DirectoryError, parse_query, validation_details
from hub.api.errors import Handler
from hub.api.ingest import IngestError, authenticate, claim_signature
from hub.api.operations import Operation, Reply, RouteKey
from hub.auth.tokens import Identity
from hub.cameras.models import CameraSpec
from hub.cameras.registry import CameraRecord, CameraRegistry, is_camera_id
from hub.db.models import Camera, OrgNode
from hub.db.outbox import add_event
from hub.db.paths import in_subtree
from hub.errors import NotReadyError
from hub.events import CameraChanged
from hub.state import HUB, Hub
from protocols.envelope import org_contains

CAMERAS = "/api/v1/cameras"
CAMERA = "/api/v1/cameras/{id}"
ALARMS = "/api/v1/cameras/{id}/alarms"
WRITE_ROLES = ("admin", "dispatcher", "leader")
SOURCE = "hub/cameras"


def _registry(hub: Hub) -> CameraRegistry:
    if hub.cameras is None:
        raise NotReadyError("the camera registry is not running")
    return hub.cameras


def _not_found(camera_id: str) -> DirectoryError:
    return DirectoryError(404, "camera.not_found", f"no camera {camera_id[:64]} for you")


def _camera_id(request: web.Request) -> str:
    camera_id = request.match_info["id"]
    if not is_camera_id(camera_id):
        raise _not_found(camera_id)
    return camera_id


async def _visible(session: AsyncSession, identity: Identity, camera_id: str) -> Camera:
    """The camera if it lies in the caller's subtree; 404 otherwise (existence is not
    revealed to outsiders)."""
    row = await session.get(Camera, camera_id)
    if row is None or not org_contains(identity.org, row.org):
        raise _not_found(camera_id)
    return row


def _check_source(identity: Identity, spec: CameraSpec) -> None:
    """A file on the hub's disk is an admin's choice only."""
    urls = [spec.source_url, spec.substream_url or ""]
    if any(urlsplit(u).scheme == "file" for u in urls) and not identity.has_any(ADMIN):
        raise DirectoryError(403, "auth.forbidden", "only admins may use file:// sources")


async def _check_org(session: AsyncSession, org: str) -> None:
    if await session.get(OrgNode, org) is None:
        msg = f"no org node {org}"
        raise DirectoryError(422, "camera.invalid", msg, [{"loc": "org", "msg": msg}])


def _stage(session: AsyncSession, row: Camera, action: str) -> None:
    event = CameraChanged(camera_id=row.id, action=action)
    envelope = event.envelope(source=SOURCE, org=row.org, subject=row.id)
    add_event(session, envelope, [f"camera:{row.id}"])


async def list_cameras(request: web.Request) -> web.Response:
    """A page of cameras of a subtree (default: the caller's), ordered by id."""
    identity = require_identity(request)
    query = parse_query(CameraQuery, dict(request.query))
    root = query.org or identity.org
    check_scope(identity, root)
    stmt = select(Camera).where(in_subtree(Camera.org, root))
    if query.status is not None:
        stmt = stmt.where(Camera.status == query.status)
    if query.tag is not None:
        # Tags are a JSON array; its text holds the tag JSON-encoded, quotes included.
        encoded = json.dumps(query.tag.strip())
        stmt = stmt.where(cast(Camera.tags, Text).contains(encoded, autoescape=True))
    async with request.app[HUB].sessions() as session:
        page, cursor = await page_by_id(session, stmt, Camera.id, query)
    return json_reply(CameraPage(items=[CameraOut.of(r) for r in page], next_cursor=cursor))


async def get_camera(request: web.Request) -> web.Response:
    """One camera."""
    identity = require_identity(request)
    async with request.app[HUB].sessions() as session:
        row = await _visible(session, identity, _camera_id(request))
    return json_reply(CameraOut.of(row))


async def create_camera(request: web.Request) -> web.Response:
    """Register a camera in the caller's subtree."""
    identity = require_identity(request, *WRITE_ROLES)
    spec = await read_body(request, CameraCreate, "camera.invalid")
    check_scope(identity, spec.org)
    _check_source(identity, spec)
    hub = request.app[HUB]
    registry = _registry(hub)
    try:
        async with hub.sessions() as session, session.begin():
            if await session.get(Camera, spec.id) is not None:
                raise DirectoryError(409, "camera.exists", f"camera {spec.id} exists")
            await _check_org(session, spec.org)
            row = Camera(**spec.columns())
            session.add(row)
            await session.flush()
            await session.refresh(row)
            _stage(session, row, "created")
    except IntegrityError as err:
        raise DirectoryError(409, "camera.exists", f"camera {spec.id} exists") from err
    await registry.changed(row.id, CameraRecord.of(row))
    return json_reply(CameraOut.of(row), 201, Location=f"{CAMERAS}/{row.id}")


async def update_camera(request: web.Request) -> web.Response:
    """Change a camera (only the fields given; moving it needs both orgs in scope)."""
    identity = require_identity(request, *WRITE_ROLES)
    camera_id = _camera_id(request)
    patch = await read_body(request, CameraUpdate, "camera.invalid")
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        raise DirectoryError(422, "camera.invalid", "nothing to change", NOTHING_TO_CHANGE)
    hub = request.app[HUB]
    registry = _registry(hub)
    async with hub.sessions() as session, session.begin():
        row = await _visible(session, identity, camera_id)
        current = CameraSpec.model_validate(
            {name: getattr(row, name) for name in CameraSpec.model_fields}
        )
        merged = validate(CameraSpec, {**current.model_dump(), **changes}, "camera.invalid")
        if merged.org != row.org:
            check_scope(identity, merged.org)
            await _check_org(session, merged.org)
        if {"source_url", "substream_url"} & changes.keys():
            _check_source(identity, merged)
        columns = merged.columns()
        for name in changes:
            setattr(row, name, columns[name])
        await session.flush()
        await session.refresh(row)
        _stage(session, row, "updated")
    await registry.changed(row.id, CameraRecord.of(row))
    return json_reply(CameraOut.of(row))


async def delete_camera(request: web.Request) -> web.Response:
    """Remove a camera from the registry."""
    identity = require_identity(request, *WRITE_ROLES)
    camera_id = _camera_id(request)
    hub = request.app[HUB]
    registry = _registry(hub)
    async with hub.sessions() as session, session.begin():
        row = await _visible(session, identity, camera_id)
        _stage(session, row, "deleted")
        await session.delete(row)
    await registry.changed(camera_id, None)
    return web.Response(status=204)


# -- alarms pushed by camera platforms ----------------------------------------------------


async def post_alarm(request: web.Request) -> web.Response:
    """A camera platform reports an alarm of one camera (signed like /api/v1/events)."""
    hub = request.app[HUB]
    try:
        return await _accept_alarm(request, hub)
    except IngestError as err:
        hub.metrics.reject(err.code)
        raise


async def _accept_alarm(request: web.Request, hub: Hub) -> web.Response:
    limit = hub.settings.ingest.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise IngestError(413, "request.too_large", "body over the size limit")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise IngestError(413, "request.too_large", "body over the size limit")
    key = authenticate(request, hub, body)
    await claim_signature(hub, request, key.id)
    try:
        alarm = AlarmIn.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError as err:
        raise IngestError(400, "request.invalid_json", "body is not valid JSON") from err
    except ValidationError as err:
        details = validation_details(err)
        raise IngestError(
            422, "camera.invalid_alarm", "alarm does not match the schema", details
        ) from err
    registry = _registry(hub)
    camera_id = request.match_info["id"]
    record = await registry.get(camera_id)
    if record is None:
        raise IngestError(404, "camera.not_found", f"no camera {camera_id[:64]}")
    if not org_contains(key.org, record.org):
        raise IngestError(
            403, "auth.org_forbidden", f"key {key.id} may not report for camera {record.id}"
        )
    outcome = await registry.raise_alarm(record, key, alarm)
    reply = AlarmAccepted(id=outcome.event_id, channels=outcome.channels, case_id=outcome.case_id)
    return json_reply(reply, 202)


# -- routes and their documentation -------------------------------------------------------

_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
_BODY = ("request.invalid_json", "request.too_large")
_ID = {"id": "Camera id."}
_READ = (
    "Any signed-in user, for the cameras of their own org subtree; a camera outside it "
    "does not exist for them (404)."
)
_WRITE = (
    "Admins, dispatchers and leaders, inside their own org subtree; `file://` sources are "
    "for admins only. ONVIF credentials are write-only (responses carry "
    "`has_credentials`); a password inside a stream URL is masked in responses. "
    "Publishes `camera.changed` on the camera's org channels and `camera:<id>`."
)
_SIGNED = (
    "auth.missing", "auth.unknown_key", "auth.bad_timestamp", "auth.stale_timestamp",
    "auth.bad_signature", "auth.replayed",
)  # fmt: skip

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("GET", CAMERAS, list_cameras, Operation(
        "List cameras", "cameras",
        _READ + " Filtered by `org` (a subtree inside the caller's), `tag` and `status`; "
        "pages follow `next_cursor`.", "bearer", query=CameraQuery,
        replies={200: Reply("One page, ordered by id.", CameraPage)},
        errors=(*_AUTH, "request.invalid_query"),
    )),
    ("POST", CAMERAS, create_camera, Operation(
        "Register a camera", "cameras", _WRITE, "bearer", body=CameraCreate,
        replies={201: Reply("Created.", CameraOut, headers={"Location": "The camera's URL."})},
        errors=(*_AUTH, *_BODY, "camera.invalid", "camera.exists", "service.unavailable"),
    )),
    ("GET", CAMERA, get_camera, Operation(
        "Get a camera", "cameras", _READ, "bearer", path_params=_ID,
        replies={200: Reply("The camera.", CameraOut)},
        errors=(*_AUTH, "camera.not_found"),
    )),
    ("PATCH", CAMERA, update_camera, Operation(
        "Update a camera", "cameras",
        "Only the fields given change; the id cannot. Moving a camera needs both orgs in "
        "the caller's subtree. The status is the media plane's, not writable. " + _WRITE,
        "bearer", body=CameraUpdate, path_params=_ID,
        replies={200: Reply("The updated camera.", CameraOut)},
        errors=(*_AUTH, *_BODY, "camera.invalid", "camera.not_found", "service.unavailable"),
    )),
    ("DELETE", CAMERA, delete_camera, Operation(
        "Delete a camera", "cameras",
        "Removes the camera from the registry (a camera of the seed file comes back at the "
        "next start). " + _WRITE, "bearer", path_params=_ID,
        replies={204: Reply("Deleted.")},
        errors=(*_AUTH, "camera.not_found", "service.unavailable"),
    )),
    ("POST", ALARMS, post_alarm, Operation(
        "Push a camera alarm", "cameras",
        "A camera or alarm platform reports an alarm (fire, intrusion, crowd …) of one "
        "camera. Signed like `POST /api/v1/events` (X-Api-Key, X-Timestamp, X-Signature; "
        "each signature single-use); the key's org must contain the camera's. "
        "`camera.alarm` is committed to the outbox before the 202 and published on the "
        "camera's org channels and `camera:<id>`. If `cameras.alarm_case_rules` maps the "
        "kind to a case category, the same transaction reports a case (channel "
        "`other_system`, at the camera's org and place; priority urgent for critical "
        "alarms) and `case_id` says which. Rejections are counted in "
        "`hub_ingest_rejected_total{code}`.",
        "signature", body=AlarmIn, path_params=_ID,
        replies={202: Reply("Accepted and committed.", AlarmAccepted)},
        errors=(*_SIGNED, *_BODY, "auth.org_forbidden", "camera.invalid_alarm",
                "camera.not_found", "service.unavailable"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the camera routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
