"""Camera live view (WHEP) and snapshots over HTTP; the media work is done by streams/.

WHEP (draft-ietf-wish-whep): POST an SDP offer as ``application/sdp`` → 201 with the SDP
answer and ``Location`` of the session; DELETE that URL to leave. The answer is sent after
ICE gathering completed, so no trickle ICE (PATCH) is needed.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from hub.api.auth import require_identity
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.cameras.registry import CameraRecord
from hub.errors import HubError
from hub.state import HUB
from streams.manager import MediaError, StreamManager

WHEP = "/api/v1/cameras/{id}/whep"
WHEP_SESSION = "/api/v1/cameras/{id}/whep/{session}"
SNAPSHOT = "/api/v1/cameras/{id}/snapshot.jpg"
SDP_TYPE = "application/sdp"
MEDIA_PATH_HEADER = "X-Hub-Media-Path"
TRUE_VALUES = ("1", "true", "yes")


class WhepQuery(BaseModel):
    """Query of the WHEP POST."""

    transcode: bool = Field(
        False, description="Get the transcoded H.264 stream even when the camera sends H.264."
    )


def _streams(request: web.Request) -> StreamManager:
    streams = request.app[HUB].streams
    if streams is None:
        raise HubError("camera.unavailable", "the media plane is not running", 503)
    return streams


async def _camera(request: web.Request) -> CameraRecord:
    """The camera named in the path, if the caller may watch it (404 otherwise: existence
    is not revealed outside the camera's org subtree)."""
    identity = require_identity(request)
    registry = request.app[HUB].cameras
    if registry is None:
        raise HubError("camera.unavailable", "the camera registry is not running", 503)
    camera_id = request.match_info["id"]
    record = await registry.get(camera_id)
    if record is None or not registry.visible_to(identity, record):
        raise HubError("camera.not_found", f"no camera {camera_id[:64]} for you", 404)
    return record


def _media_error(err: MediaError) -> HubError:
    return HubError(err.code, err.message, err.status)


async def _read_offer(request: web.Request, limit: int) -> str:
    if request.content_type != SDP_TYPE:
        raise HubError("request.unsupported_media_type", f"send the SDP offer as {SDP_TYPE}", 415)
    if request.content_length is not None and request.content_length > limit:
        raise HubError("request.too_large", f"the offer is over {limit} bytes", 413)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise HubError("request.too_large", f"the offer is over {limit} bytes", 413)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HubError("camera.bad_sdp", "the offer is not UTF-8 text", 400) from err


async def post_whep(request: web.Request) -> web.Response:
    """Start watching a camera: SDP offer in, SDP answer out."""
    streams = _streams(request)
    record = await _camera(request)
    media = request.app[HUB].settings.media
    offer = await _read_offer(request, media.max_sdp_bytes)
    transcode = request.query.get("transcode", "") in TRUE_VALUES
    try:
        session_id, answer = await streams.open_whep(
            record.id, record.source_url, offer, transcode=transcode
        )
    except MediaError as err:
        raise _media_error(err) from err
    session = streams.session(session_id)
    location = WHEP_SESSION.format(id=record.id, session=session_id)
    headers = {"Location": location}
    if session is not None:
        headers[MEDIA_PATH_HEADER] = session.media_path
    return web.Response(status=201, text=answer, content_type=SDP_TYPE, headers=headers)


async def delete_whep(request: web.Request) -> web.Response:
    """Stop watching: close the session's peer connection."""
    streams = _streams(request)
    record = await _camera(request)
    if not await streams.close_whep(request.match_info["session"], record.id):
        raise HubError("camera.session_not_found", "no such live-view session", 404)
    return web.Response(status=204)


async def get_snapshot(request: web.Request) -> web.Response:
    """The camera's latest keyframe as JPEG (works while nobody watches)."""
    streams = _streams(request)
    record = await _camera(request)
    try:
        shot = await streams.snapshot(record.id, record.source_url)
    except MediaError as err:
        raise _media_error(err) from err
    max_age = int(request.app[HUB].settings.media.snapshot_cache_seconds)
    return web.Response(
        body=shot.jpeg,
        content_type="image/jpeg",
        headers={"Cache-Control": f"private, max-age={max_age}"},
    )


_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
_IDS = {"id": "Camera id."}
_SDP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            SDP_TYPE: {
                "schema": {
                    "type": "string",
                    "description": "The viewer's SDP offer (recvonly video, H.264).",
                }
            }
        },
    }
}

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("POST", WHEP, post_whep, Operation(
        "Watch a camera live (WHEP)", "cameras",
        "WHEP: the body is the viewer's SDP offer (`application/sdp`, at most "
        "`HUB_MEDIA__MAX_SDP_BYTES`). The camera's H.264 is forwarded as received (no "
        "decoding, no re-encoding) in the camera's own profile, which the offer must "
        "include (browsers offer Main and High). A camera whose codec browsers cannot "
        "play (e.g. H.265) is transcoded instead: decoded and encoded once per camera as "
        "H.264 constrained baseline, shared by all its transcoded viewers; `?transcode=1` "
        "(or `HUB_MEDIA__FORCE_TRANSCODE`) asks for that path for an H.264 camera too. "
        "The `X-Hub-Media-Path` header of the answer says which path the viewer got. "
        "One RTSP pull per camera serves every "
        "viewer; a cached keyframe makes the first picture immediate. The answer comes "
        "after ICE gathering (no trickle). Visible to users whose org subtree holds the "
        "camera. Online/offline changes arrive as `camera.online` / `camera.offline` on "
        "`camera:<id>`.", "bearer", path_params=_IDS, extra=_SDP_BODY,
        replies={201: Reply(
            "The SDP answer.", schema={"type": "string"}, content_type=SDP_TYPE,
            headers={
                "Location": "The session's URL (DELETE it to stop watching).",
                MEDIA_PATH_HEADER: "`passthrough` (the camera's H.264 as received) or "
                "`transcoded` (decoded and re-encoded once for the camera).",
            },
        )},
        errors=(*_AUTH, "camera.not_found", "request.unsupported_media_type",
                "request.too_large", "camera.bad_sdp", "camera.codec_unsupported",
                "camera.unavailable", "camera.viewer_limit"),
    )),
    ("DELETE", WHEP_SESSION, delete_whep, Operation(
        "Stop watching a camera", "cameras", "Closes the session's peer connection.",
        "bearer", path_params={**_IDS, "session": "Session id from `Location`."},
        replies={204: Reply("Closed.")},
        errors=(*_AUTH, "camera.not_found", "camera.session_not_found", "camera.unavailable"),
    )),
    ("GET", SNAPSHOT, get_snapshot, Operation(
        "Camera snapshot (JPEG)", "cameras",
        "The latest keyframe, decoded and encoded as JPEG; reused for "
        "`HUB_MEDIA__SNAPSHOT_CACHE_SECONDS`. Starts the camera's pull if nobody watches.",
        "bearer", path_params=_IDS,
        replies={200: Reply("The picture.", schema={"type": "string", "format": "binary"},
                            content_type="image/jpeg")},
        errors=(*_AUTH, "camera.not_found", "camera.unavailable", "camera.snapshot_failed"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the camera media routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
