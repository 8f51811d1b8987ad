"""Camera recordings over HTTP: start one, list a camera's, read one, download its MP4 (with
HTTP range requests) and attach it to a case. The work is hub/cameras/recordings.py's.

A recording is visible to whoever may see its camera (the camera's org subtree when it was
recorded); outside it, it does not exist (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import require_identity
from hub.api.case_models import AttachmentOut
from hub.api.directory_http import json_reply, read_body
from hub.api.directory_models import parse_query
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.cameras.recordings import CONTENT_TYPE, RecordingService
from hub.cameras.registry import CameraRecord
from hub.cases.service import actor_of
from hub.db.models import Recording
from hub.errors import HubError
from hub.state import HUB

CAMERA_RECORDINGS = "/api/v1/cameras/{id}/recordings"
RECORDING = "/api/v1/recordings/{rid}"
RECORDING_FILE = "/api/v1/recordings/{rid}/file"
RECORDING_ATTACH = "/api/v1/recordings/{rid}/attach"
START_ROLES = ("admin", "dispatcher", "leader")


class RecordingIn(BaseModel):
    """What to record."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(
        gt=0, description="Seconds of video, at most `HUB_MEDIA__MAX_RECORD_SECONDS`."
    )


class AttachIn(BaseModel):
    """Which case to attach the recording to."""

    model_config = ConfigDict(extra="forbid")

    case_id: str = Field(min_length=1, max_length=64, description="The case's id (a ULID).")


class RecordingQuery(BaseModel):
    """How many recordings to list."""

    limit: int = Field(50, ge=1, le=200, description="Most recordings returned (newest first).")


class RecordingOut(BaseModel):
    """A recording's metadata; its MP4 is at ``url`` once ``state`` is ``done``."""

    id: str
    camera_id: str
    started_at: datetime = Field(description="When it was requested (the pre-roll is before).")
    requested_s: float
    duration_s: float | None = Field(description="Seconds of video in the MP4, once done.")
    size: int = Field(description="Bytes of the MP4, once done.")
    state: Literal["recording", "done", "failed"]
    trigger: Literal["manual", "alarm"]
    requested_by: str | None
    case_id: str | None = Field(description="The case it was last attached to.")
    error: str | None
    url: str

    @classmethod
    def of(cls, row: Recording) -> RecordingOut:
        """From the stored row."""
        return cls(
            id=row.id, camera_id=row.camera_id, started_at=row.started_at,
            requested_s=row.requested_s, duration_s=row.duration_s, size=row.size,
            state=row.state, trigger=row.trigger, requested_by=row.requested_by,
            case_id=row.case_id, error=row.error, url=RECORDING_FILE.format(rid=row.id),
        )  # fmt: skip


class RecordingList(BaseModel):
    """A camera's recordings, newest first."""

    items: list[RecordingOut]


def _service(request: web.Request) -> RecordingService:
    service = request.app[HUB].recordings
    if service is None:
        raise HubError("camera.unavailable", "recordings are not running", 503)
    return service


async def _camera(request: web.Request, *roles: str) -> CameraRecord:
    identity = require_identity(request, *roles)
    registry = request.app[HUB].cameras
    if registry is None:
        raise HubError("camera.unavailable", "the camera registry is not running", 503)
    camera_id = request.match_info["id"]
    record = await registry.get(camera_id)
    if record is None or not registry.visible_to(identity, record):
        raise HubError("camera.not_found", f"no camera {camera_id[:64]} for you", 404)
    return record


async def _recording(request: web.Request) -> Recording:
    identity = require_identity(request)
    rid = request.match_info["rid"]
    row = await _service(request).get(rid)
    if row is None or not RecordingService.visible_to(identity, row):
        raise HubError("recording.not_found", f"no recording {rid[:64]} for you", 404)
    return row


async def start_recording(request: web.Request) -> web.Response:
    """Record the camera for ``seconds`` (202: it runs in the background)."""
    record = await _camera(request, *START_ROLES)
    spec = await read_body(request, RecordingIn, "recording.invalid")
    identity = require_identity(request)
    row = await _service(request).start(record, spec.seconds, "manual", requested_by=identity.user)
    return json_reply(RecordingOut.of(row), 202, Location=RECORDING.format(rid=row.id))


async def list_recordings(request: web.Request) -> web.Response:
    """A camera's recordings, newest first."""
    record = await _camera(request)
    query = parse_query(RecordingQuery, dict(request.query))
    rows = await _service(request).of_camera(record.id, query.limit)
    return json_reply(RecordingList(items=[RecordingOut.of(r) for r in rows]))


async def get_recording(request: web.Request) -> web.Response:
    """One recording's metadata."""
    return json_reply(RecordingOut.of(await _recording(request)))


async def download_recording(request: web.Request) -> web.StreamResponse:
    """The MP4 (``Range`` requests answered with 206)."""
    row = await _recording(request)
    if row.state != "done":
        raise HubError("recording.not_ready", f"the recording is {row.state}", 409)
    path = _service(request).file(row)
    if not path.is_file():
        raise HubError("recording.not_found", "the recording's file is gone", 404)
    return web.FileResponse(
        path,
        headers={
            "Content-Type": CONTENT_TYPE,
            "Content-Disposition": f'attachment; filename="{row.camera_id}-{row.id}.mp4"',
            "X-Content-Type-Options": "nosniff",
        },
    )


async def attach_recording(request: web.Request) -> web.Response:
    """Copy the recording into a case's attachments."""
    row = await _recording(request)
    spec = await read_body(request, AttachIn, "recording.invalid")
    actor = actor_of(require_identity(request))
    attachment = await _service(request).attach(row, spec.case_id, actor)
    url = f"/api/v1/cases/{spec.case_id}/attachments/{attachment.id}"
    return json_reply(AttachmentOut.of(attachment), 201, Location=url)


_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired")
_BODY = ("request.invalid_json", "request.too_large")
_CAMERA = {"id": "Camera id."}
_RID = {"rid": "Recording id (a ULID)."}

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("POST", CAMERA_RECORDINGS, start_recording, Operation(
        "Record a camera", "cameras",
        "Records `seconds` of the camera to MP4 by remuxing its stream (no decoding, no "
        "re-encoding). The recording starts at the camera's last keyframe (a pre-roll of up "
        "to one GOP from the cached GOP) and spans `seconds` of video from there. Answers "
        "202 at once with the recording in state `recording`; `camera.recording_done` on "
        "`camera:<id>` tells when it is done or failed. Dispatchers, leaders and admins "
        "whose org subtree holds the camera. Alarms pushed for a camera record "
        "`HUB_MEDIA__ALARM_RECORD_SECONDS` the same way.",
        "bearer", body=RecordingIn, path_params=_CAMERA,
        replies={202: Reply("Recording.", RecordingOut,
                            headers={"Location": "The recording's URL."})},
        errors=(*_AUTH, "auth.forbidden", *_BODY, "camera.not_found", "recording.invalid",
                "recording.busy", "camera.unavailable"),
    )),
    ("GET", CAMERA_RECORDINGS, list_recordings, Operation(
        "A camera's recordings", "cameras",
        "Newest first. Visible to users whose org subtree holds the camera.",
        "bearer", query=RecordingQuery, path_params=_CAMERA,
        replies={200: Reply("The recordings.", RecordingList)},
        errors=(*_AUTH, "request.invalid_query", "camera.not_found", "camera.unavailable"),
    )),
    ("GET", RECORDING, get_recording, Operation(
        "A recording", "cameras", "Its metadata.", "bearer", path_params=_RID,
        replies={200: Reply("The recording.", RecordingOut)},
        errors=(*_AUTH, "recording.not_found", "camera.unavailable"),
    )),
    ("GET", RECORDING_FILE, download_recording, Operation(
        "Download a recording (MP4)", "cameras",
        "The MP4 (`video/mp4`, index in front so it plays while it downloads). Supports "
        "`Range` requests (206 Partial Content) for seeking.",
        "bearer", path_params=_RID,
        replies={200: Reply("The file.", schema={"type": "string", "format": "binary"},
                            content_type=CONTENT_TYPE),
                 206: Reply("The requested byte range.",
                            schema={"type": "string", "format": "binary"},
                            content_type=CONTENT_TYPE)},
        errors=(*_AUTH, "recording.not_found", "recording.not_ready", "camera.unavailable"),
    )),
    ("POST", RECORDING_ATTACH, attach_recording, Operation(
        "Attach a recording to a case", "cameras",
        "Copies the finished MP4 into the case's attachments (`video/mp4`); the caller must "
        "see both the recording and the case.",
        "bearer", body=AttachIn, path_params=_RID,
        replies={201: Reply("The new attachment.", AttachmentOut,
                            headers={"Location": "The attachment's URL."})},
        errors=(*_AUTH, *_BODY, "recording.invalid", "recording.not_found",
                "recording.not_ready", "case.not_found", "case.too_many_attachments",
                "case.attachment_too_large", "camera.unavailable"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the recording routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
