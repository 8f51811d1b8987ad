"""Camera PTZ over REST: continuous move, stop, presets; the camera is reached over ONVIF
(adapters/onvif) at its ``onvif_url``, else at its stream's host on port 80, with its
stored ONVIF credentials.

Dispatchers, leaders and admins whose org subtree holds the camera may steer it; a camera
outside the subtree does not exist for them (404), one not registered as PTZ answers 409.
Moves (and preset jumps) are limited per camera (``cameras.ptz_max_moves_per_second``) so
a held button cannot flood a camera; stop is never limited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from adapters.onvif import OnvifEndpoint, PtzClient, PtzPool, PtzPreset
from hub.api.auth import require_identity
from hub.api.directory_http import json_reply, read_body
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.auth.tokens import Identity
from hub.cameras.devices import parse_channel_url
from hub.cameras.registry import is_camera_id
from hub.db.models import Camera
from hub.errors import HubError
from hub.state import HUB
from protocols.envelope import org_contains
from protocols.gb28181.ptz import PTZ_STOP, ptz_from_velocity

if TYPE_CHECKING:
    from adapters.gb28181 import Gb28181Adapter

log = structlog.get_logger(__name__)

MOVE = "/api/v1/cameras/{id}/ptz/move"
STOP = "/api/v1/cameras/{id}/ptz/stop"
PRESETS = "/api/v1/cameras/{id}/ptz/presets"
GOTO = "/api/v1/cameras/{id}/ptz/presets/{token}/goto"
PTZ_ROLES = ("admin", "dispatcher", "leader")
DEFAULT_MOVE_SECONDS = 1.0
"""A move ends by itself after this unless renewed: a lost stop cannot leave it turning."""
MAX_MOVE_SECONDS = 10.0
MAX_PRESET_TOKEN = 64  # tt:ReferenceToken is at most 64 characters


class PtzMove(BaseModel):
    """The body of a continuous move: velocities in [-1, 1] (0: that axis stays)."""

    model_config = ConfigDict(extra="forbid")

    pan: float = Field(0.0, ge=-1, le=1, description="Left (−) / right (+).")
    tilt: float = Field(0.0, ge=-1, le=1, description="Down (−) / up (+).")
    zoom: float = Field(0.0, ge=-1, le=1, description="Out (−) / in (+).")
    timeout_s: float = Field(
        DEFAULT_MOVE_SECONDS,
        gt=0,
        le=MAX_MOVE_SECONDS,
        description="The camera stops by itself after this many seconds (send the move "
        "again to keep going, or stop).",
    )


class PresetOut(BaseModel):
    """A stored camera position."""

    token: str = Field(description="Pass to `…/presets/{token}/goto`.")
    name: str | None


class PresetList(BaseModel):
    """The camera's presets, in the camera's order."""

    items: list[PresetOut]


async def _steerable(request: web.Request) -> Camera:
    """The camera in the path after the checks: 403 without a steering role, 404 outside
    the caller's subtree, 409 if not PTZ."""
    identity = require_identity(request, *PTZ_ROLES)
    row = await _camera(request, identity, request.match_info["id"])
    if not row.ptz:
        raise HubError("camera.ptz_unsupported", f"camera {row.id} is not a PTZ camera", 409)
    return row


def _gb28181(request: web.Request, row: Camera) -> Gb28181Adapter | None:
    """The GB/T 28181 adapter when the camera is a GB/T 28181 channel (steered over SIP
    DeviceControl instead of ONVIF); 503 if that adapter is not running."""
    if parse_channel_url(row.source_url) is None:
        return None
    adapter = request.app[HUB].gb28181
    if adapter is None or not adapter.ready:
        raise HubError("camera.ptz_unavailable", "GB/T 28181 is not running", 503)
    return adapter


async def _target(request: web.Request, row: Camera) -> tuple[PtzPool, str, OnvifEndpoint]:
    """The ONVIF pool, camera id and endpoint of a (checked) camera."""
    hub = request.app[HUB]
    if hub.ptz is None:
        raise HubError("camera.ptz_unavailable", "PTZ is not running", 503)
    endpoint = OnvifEndpoint.of(
        row.onvif_url, row.source_url, row.onvif_username, row.onvif_password
    )
    return hub.ptz, row.id, endpoint


async def _camera(request: web.Request, identity: Identity, camera_id: str) -> Camera:
    row = None
    if is_camera_id(camera_id):
        async with request.app[HUB].sessions() as session:
            row = await session.get(Camera, camera_id)
    if row is None or not org_contains(identity.org, row.org):
        raise HubError("camera.not_found", f"no camera {camera_id[:64]} for you", 404)
    return row


async def post_move(request: web.Request) -> web.Response:
    """Start (or keep up) a continuous move."""
    row = await _steerable(request)
    move = await read_body(request, PtzMove, "camera.ptz_invalid")
    gb = _gb28181(request, row)
    if gb is not None:
        pool = request.app[HUB].ptz
        if pool is not None:
            pool.take_move(row.id)  # the same per-camera limit as ONVIF
        command = ptz_from_velocity(move.pan, move.tilt, move.zoom)
        await gb.move(row.id, row.source_url, command, move.timeout_s)
        return web.Response(status=204)
    pool, camera_id, endpoint = await _target(request, row)
    pool.take_move(camera_id)

    async def act(client: PtzClient) -> None:
        await client.continuous_move(move.pan, move.tilt, move.zoom, move.timeout_s)

    await pool.run(camera_id, endpoint, act)
    log.debug("ptz move", camera_id=camera_id, pan=move.pan, tilt=move.tilt, zoom=move.zoom)
    return web.Response(status=204)


async def post_stop(request: web.Request) -> web.Response:
    """Stop pan, tilt and zoom."""
    row = await _steerable(request)
    gb = _gb28181(request, row)
    if gb is not None:
        await gb.move(row.id, row.source_url, PTZ_STOP, 0)
        return web.Response(status=204)
    pool, camera_id, endpoint = await _target(request, row)

    async def act(client: PtzClient) -> None:
        await client.stop()

    await pool.run(camera_id, endpoint, act)
    return web.Response(status=204)


async def get_presets(request: web.Request) -> web.Response:
    """The camera's presets."""
    row = await _steerable(request)
    if _gb28181(request, row) is not None:
        raise HubError("camera.ptz_unsupported", "GB/T 28181 cameras list no presets", 409)
    pool, camera_id, endpoint = await _target(request, row)

    async def act(client: PtzClient) -> list[PtzPreset]:
        return await client.presets()

    presets = await pool.run(camera_id, endpoint, act)
    items = [PresetOut(token=p.token, name=p.name) for p in presets]
    return json_reply(PresetList(items=items))


async def post_goto(request: web.Request) -> web.Response:
    """Move to a preset."""
    row = await _steerable(request)
    if _gb28181(request, row) is not None:
        raise HubError("camera.ptz_unsupported", "GB/T 28181 cameras list no presets", 409)
    pool, camera_id, endpoint = await _target(request, row)
    token = request.match_info["token"]
    if not 0 < len(token) <= MAX_PRESET_TOKEN:
        raise HubError("camera.ptz_preset_not_found", "the camera has no such preset", 404)
    pool.take_move(camera_id)

    async def act(client: PtzClient) -> None:
        await client.goto_preset(token)

    await pool.run(camera_id, endpoint, act)
    log.info("ptz preset", camera_id=camera_id, preset=token)
    return web.Response(status=204)


_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
_CAMERA = (
    "camera.not_found", "camera.ptz_unsupported", "camera.ptz_unavailable",
    "camera.ptz_auth_failed", "camera.ptz_failed",
)  # fmt: skip
_IDS = {"id": "Camera id."}
_WHO = (
    " Dispatchers, leaders and admins whose org subtree holds the camera; a camera outside "
    "it does not exist for them (404); a camera not registered with `ptz: true` answers "
    "409. The camera is reached over ONVIF at its `onvif_url` (else its stream's host on "
    "port 80) with its stored credentials; each request to it is limited to "
    "`HUB_CAMERAS__PTZ_TIMEOUT` seconds (signing in to `HUB_CAMERAS__PTZ_CONNECT_TIMEOUT`)."
)
_NO_CONTENT: dict[int, Reply] = {204: Reply("The camera accepted it.")}
_EMPTY: dict[str, Any] = {}

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("POST", MOVE, post_move, Operation(
        "Move a PTZ camera", "cameras",
        "ONVIF ContinuousMove: pan, tilt and zoom velocities in [-1, 1]; the camera keeps "
        "moving until stopped or `timeout_s` passes (send the move again to go on). At most "
        "`HUB_CAMERAS__PTZ_MAX_MOVES_PER_SECOND` moves and preset jumps per camera and "
        "second (429 beyond)." + _WHO, "bearer", body=PtzMove, path_params=_IDS,
        replies=_NO_CONTENT,
        errors=(*_AUTH, "request.invalid_json", "camera.ptz_invalid", "camera.ptz_rate_limited",
                *_CAMERA),
    )),
    ("POST", STOP, post_stop, Operation(
        "Stop a PTZ camera", "cameras", "ONVIF Stop of pan, tilt and zoom; never rate-limited."
        + _WHO, "bearer", path_params=_IDS, replies=_NO_CONTENT, errors=(*_AUTH, *_CAMERA),
    )),
    ("GET", PRESETS, get_presets, Operation(
        "List a PTZ camera's presets", "cameras", "ONVIF GetPresets." + _WHO, "bearer",
        path_params=_IDS, replies={200: Reply("The presets.", PresetList)},
        errors=(*_AUTH, *_CAMERA),
    )),
    ("POST", GOTO, post_goto, Operation(
        "Move a PTZ camera to a preset", "cameras",
        "ONVIF GotoPreset; counts as a move for the rate limit." + _WHO, "bearer",
        path_params={**_IDS, "token": "Preset token (from the preset list)."},
        replies=_NO_CONTENT,
        errors=(*_AUTH, "camera.ptz_preset_not_found", "camera.ptz_rate_limited", *_CAMERA),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the camera PTZ routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
