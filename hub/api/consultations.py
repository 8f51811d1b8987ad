"""Consultations REST (远程会商): open a room, the caller's rooms, one room, invitations and
answers, host controls, cameras, recordings, and the WHIP-style media endpoint.

Who may do what: dispatchers, leaders and admins open rooms and host them; the host
invites, mutes, removes, hands over, adds cameras and ends; invitees accept or decline
and join. A room is visible to its members only (to anyone else it does not exist: 404).
The service is hub/consultations/service.py; the WebSocket rpc (hub/consultations/rpc.py)
offers the same actions to connected consoles.

WHIP (RFC 9725) for publishing into a room: POST the SDP offer as ``application/sdp`` →
201 with the answer and ``Location`` of the session; PATCH it with
``application/trickle-ice-sdpfrag`` to trickle candidates; DELETE it to leave.
"""

from __future__ import annotations

import mimetypes

from aiohttp import web

from hub.api.auth import require_identity
from hub.api.consultation_models import (
    CameraIn,
    ConsultationCreate,
    ConsultationList,
    ConsultationOut,
    HostIn,
    Invitation,
    Invited,
    MineQuery,
    MuteIn,
    ParticipantOut,
    ShowIn,
    TerminalIn,
)
from hub.api.directory_http import json_reply, read_body
from hub.api.directory_models import parse_query
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.consultations.service import ConsultationError, ConsultationService
from hub.errors import HubError
from hub.state import HUB
from protocols.sdpfrag import SdpFragError, parse_sdpfrag

BASE = "/api/v1/consultations"
ROOM = BASE + "/{id}"
INVITATIONS = ROOM + "/invitations"
ACCEPT = ROOM + "/accept"
DECLINE = ROOM + "/decline"
PARTICIPANT = ROOM + "/participants/{participant_id}"
MUTE = PARTICIPANT + "/mute"
HOST = ROOM + "/host"
END = ROOM + "/end"
CAMERAS = ROOM + "/cameras"
CAMERA = CAMERAS + "/{camera_id}"
RECORDING = ROOM + "/recordings/{recording_id}"
TERMINALS = ROOM + "/terminals"
TERMINAL_SHOW = PARTICIPANT + "/show"
WHIP = ROOM + "/whip"
WHIP_SESSION = WHIP + "/{participant_id}"
SDP_TYPE = "application/sdp"
SDPFRAG_TYPE = "application/trickle-ice-sdpfrag"
INVALID = "consultation.invalid"


def _service(request: web.Request) -> ConsultationService:
    service = request.app[HUB].consultations
    if service is None:
        raise HubError("service.unavailable", "consultations are not running", 503)
    return service


def _id(request: web.Request) -> str:
    return request.match_info["id"]


async def _read_text(request: web.Request, content_type: str) -> str:
    """A text body of ``content_type``, at most ``consultations.max_sdp_bytes``."""
    limit = request.app[HUB].settings.consultations.max_sdp_bytes
    if request.content_type != content_type:
        raise HubError("request.unsupported_media_type", f"send the body as {content_type}", 415)
    too_large = ConsultationError(
        413, "consultation.offer_too_large", f"the body is over {limit} bytes"
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise too_large
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConsultationError(400, "consultation.bad_sdp", "the body is not UTF-8") from err


async def create(request: web.Request) -> web.Response:
    """Open a room hosted by the caller and send the invitations."""
    identity = require_identity(request)
    spec = await read_body(request, ConsultationCreate, INVALID)
    room = await _service(request).create(
        identity, spec.title, case_id=spec.case_id, invite_users=spec.invite_users,
        invite_org_nodes=spec.invite_org_nodes, sms_offline=spec.sms_offline,
    )  # fmt: skip
    view = await _service(request).detail(identity, room.id)
    out = ConsultationOut.of(
        room, participants=view.participants, recordings=view.recordings,
        mine=next((p for p in view.participants if p.user_id == identity.user), None),
    )  # fmt: skip
    return json_reply(out, 201, Location=f"{BASE}/{room.id}")


async def list_mine(request: web.Request) -> web.Response:
    """The caller's rooms."""
    identity = require_identity(request)
    query = parse_query(MineQuery, dict(request.query))
    rows = await _service(request).mine(identity, query.status)
    return json_reply(ConsultationList(items=[ConsultationOut.of(r, mine=p) for r, p in rows]))


async def get_room(request: web.Request) -> web.Response:
    """One room with its participants and recordings."""
    identity = require_identity(request)
    view = await _service(request).detail(identity, _id(request))
    mine = next((p for p in view.participants if p.user_id == identity.user), None)
    return json_reply(
        ConsultationOut.of(
            view.room, mine=mine, participants=view.participants, recordings=view.recordings
        )
    )


async def invite(request: web.Request) -> web.Response:
    """The host invites more users or org nodes."""
    identity = require_identity(request)
    spec = await read_body(request, Invitation, INVALID)
    invited = await _service(request).invite(
        identity, _id(request), users=spec.invite_users, org_nodes=spec.invite_org_nodes,
        sms_offline=spec.sms_offline,
    )  # fmt: skip
    return json_reply(Invited(invited=invited))


async def accept(request: web.Request) -> web.Response:
    """The caller accepts the invitation."""
    row = await _service(request).accept(require_identity(request), _id(request))
    return json_reply(ParticipantOut.model_validate(row))


async def decline(request: web.Request) -> web.Response:
    """The caller declines the invitation."""
    row = await _service(request).decline(require_identity(request), _id(request))
    return json_reply(ParticipantOut.model_validate(row))


async def mute(request: web.Request) -> web.Response:
    """Mute or unmute a participant's audio or video."""
    identity = require_identity(request)
    spec = await read_body(request, MuteIn, INVALID)
    row = await _service(request).mute(
        identity, _id(request), request.match_info["participant_id"], spec.kind, spec.muted
    )
    return json_reply(ParticipantOut.model_validate(row))


async def remove(request: web.Request) -> web.Response:
    """The host removes a participant."""
    identity = require_identity(request)
    await _service(request).remove(identity, _id(request), request.match_info["participant_id"])
    return web.Response(status=204)


async def hand_over(request: web.Request) -> web.Response:
    """The host hands the room over."""
    identity = require_identity(request)
    spec = await read_body(request, HostIn, INVALID)
    room = await _service(request).hand_over(identity, _id(request), spec.user_id)
    return json_reply(ConsultationOut.of(room))


async def end(request: web.Request) -> web.Response:
    """The host ends the room."""
    identity = require_identity(request)
    room = await _service(request).end(identity, _id(request))
    return json_reply(ConsultationOut.of(room))


async def add_camera(request: web.Request) -> web.Response:
    """The host brings a camera into the room."""
    identity = require_identity(request)
    spec = await read_body(request, CameraIn, INVALID)
    row = await _service(request).add_camera(identity, _id(request), spec.camera_id)
    return json_reply(ParticipantOut.model_validate(row), 201)


async def remove_camera(request: web.Request) -> web.Response:
    """The host takes a camera out of the room."""
    identity = require_identity(request)
    await _service(request).remove_camera(identity, _id(request), request.match_info["camera_id"])
    return web.Response(status=204)


async def call_terminal(request: web.Request) -> web.Response:
    """The host calls a video network terminal into the room."""
    identity = require_identity(request)
    spec = await read_body(request, TerminalIn, INVALID)
    service = _service(request)
    calls = request.app[HUB].calls
    uri = calls.target_uri(spec.uri) if calls is not None else spec.uri
    row = await service.call_terminal(identity, _id(request), uri, spec.name)
    return json_reply(ParticipantOut.model_validate(row), 202)


async def show_terminal(request: web.Request) -> web.Response:
    """The host picks what a terminal sees."""
    identity = require_identity(request)
    spec = await read_body(request, ShowIn, INVALID)
    await _service(request).show_terminal(
        identity, _id(request), request.match_info["participant_id"], spec.source
    )
    return web.Response(status=204)


async def download_recording(request: web.Request) -> web.StreamResponse:
    """A recording's file (``Range`` requests answered with 206)."""
    identity = require_identity(request)
    row, path = await _service(request).recording(
        identity, _id(request), request.match_info["recording_id"]
    )
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{row.id}{path.suffix}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


async def post_whip(request: web.Request) -> web.Response:
    """Join the room's media: SDP offer in, SDP answer out."""
    identity = require_identity(request)
    offer = await _read_text(request, SDP_TYPE)
    joined = await _service(request).join(identity, _id(request), offer)
    location = WHIP_SESSION.format(id=_id(request), participant_id=joined.participant_id)
    return web.Response(
        status=201, text=joined.answer, content_type=SDP_TYPE, headers={"Location": location}
    )


def _own_session(request: web.Request, user: str) -> None:
    if request.match_info["participant_id"] != user:
        raise ConsultationError(404, "consultation.session_not_found", "no such WHIP session")


async def patch_whip(request: web.Request) -> web.Response:
    """Trickle ICE candidates of the caller's connection."""
    identity = require_identity(request)
    _own_session(request, identity.user)
    text = await _read_text(request, SDPFRAG_TYPE)
    try:
        candidates = parse_sdpfrag(text)
    except SdpFragError as err:
        raise ConsultationError(400, "consultation.bad_sdp", str(err)) from err
    service = _service(request)
    for candidate in candidates:
        await service.add_candidate(identity, _id(request), candidate.as_init())
    return web.Response(status=204)


async def delete_whip(request: web.Request) -> web.Response:
    """Leave the room's media."""
    identity = require_identity(request)
    _own_session(request, identity.user)
    await _service(request).leave(identity, _id(request))
    return web.Response(status=204)


# -- routes and their documentation -------------------------------------------------------

_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired")
_BODY = ("request.invalid_json", "request.too_large", INVALID)
_ROOM = {"id": "Consultation id (a ULID)."}
_PARTICIPANT = {
    **_ROOM,
    "participant_id": "A user id, `camera:<camera id>` or `terminal:<SIP address>`.",
}
_SEEN = ("consultation.not_found",)
_OPEN = (*_SEEN, "consultation.ended")
_HOST = (*_OPEN, "consultation.not_host")
_MEMBERS = "Visible to its members only; to anyone else it does not exist (404)."


def _text_body(content_type: str, description: str) -> dict[str, object]:
    return {
        "requestBody": {
            "required": True,
            "content": {content_type: {"schema": {"type": "string", "description": description}}},
        }
    }


_UPDATED = Reply("The caller's (or the participant's) place in the room.", ParticipantOut)
_DONE = Reply("Done.")

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("POST", BASE, create, Operation(
        "Open a consultation room (发起远程会商)", "consultations",
        "Dispatchers, leaders and admins open rooms and become their host. Invitees are "
        "users (inside the host's org subtree or above it) and org nodes inside the "
        "subtree, each expanded to its active users. Each invitee gets "
        "`consultation.invited` on `user:<id>`; with `sms_offline` those without a live "
        "connection and with a phone number also get an SMS (`HUB_CONSULTATIONS__INVITE_SMS`)."
        " With `case_id` the case's timeline records the start, the end and the recordings. "
        "Limits: `HUB_CONSULTATIONS__MAX_PARTICIPANTS` per room (host and cameras included), "
        "`HUB_CONSULTATIONS__MAX_ROOMS` open rooms per hub.",
        "bearer", body=ConsultationCreate,
        replies={201: Reply("Opened.", ConsultationOut, headers={"Location": "The room's URL."})},
        errors=(*_AUTH, "auth.forbidden", *_BODY, "consultation.target_outside_scope",
                "consultation.unknown_target", "consultation.room_full",
                "consultation.too_many_rooms", "case.not_found"),
    )),
    ("GET", BASE, list_mine, Operation(
        "My consultations", "consultations",
        "The rooms the caller is a member of (host, invited, accepted, joined or left), "
        "newest first, open ones unless `status=ended`.", "bearer", query=MineQuery,
        replies={200: Reply("The rooms.", ConsultationList)},
        errors=(*_AUTH, "request.invalid_query"),
    )),
    ("GET", ROOM, get_room, Operation(
        "Get a consultation", "consultations",
        _MEMBERS + " With its participants and recordings.", "bearer", path_params=_ROOM,
        replies={200: Reply("The room.", ConsultationOut)}, errors=(*_AUTH, *_SEEN),
    )),
    ("POST", INVITATIONS, invite, Operation(
        "Invite more participants", "consultations",
        "The host only. Users who declined or were removed are invited again; those "
        "already in the room are skipped.", "bearer", body=Invitation, path_params=_ROOM,
        replies={200: Reply("Who was newly invited.", Invited)},
        errors=(*_AUTH, *_BODY, *_HOST, "consultation.target_outside_scope",
                "consultation.unknown_target", "consultation.room_full"),
    )),
    ("POST", ACCEPT, accept, Operation(
        "Accept an invitation", "consultations", "The invitee (also after declining).",
        "bearer", path_params=_ROOM, replies={200: _UPDATED},
        errors=(*_AUTH, *_OPEN, "consultation.invalid_state"),
    )),
    ("POST", DECLINE, decline, Operation(
        "Decline an invitation", "consultations", "The invitee, before joining.",
        "bearer", path_params=_ROOM, replies={200: _UPDATED},
        errors=(*_AUTH, *_OPEN, "consultation.invalid_state"),
    )),
    ("POST", MUTE, mute, Operation(
        "Mute or unmute a participant", "consultations",
        "The host mutes anyone; a participant themself. Published as `consultation.muted`.",
        "bearer", body=MuteIn, path_params=_PARTICIPANT, replies={200: _UPDATED},
        errors=(*_AUTH, *_BODY, *_HOST, "consultation.participant_not_found"),
    )),
    ("DELETE", PARTICIPANT, remove, Operation(
        "Remove a participant", "consultations",
        "The host only; a removed user cannot join again until invited again.",
        "bearer", path_params=_PARTICIPANT, replies={204: _DONE},
        errors=(*_AUTH, *_HOST, "consultation.participant_not_found",
                "consultation.cannot_remove_host"),
    )),
    ("POST", HOST, hand_over, Operation(
        "Hand the room over", "consultations",
        "The host makes a user who accepted or joined the new host.",
        "bearer", body=HostIn, path_params=_ROOM,
        replies={200: Reply("The room.", ConsultationOut)},
        errors=(*_AUTH, *_BODY, *_HOST, "consultation.invalid_host"),
    )),
    ("POST", END, end, Operation(
        "End the consultation", "consultations",
        "The host only. Everyone leaves, the media plane closes and its recordings are "
        "stored; `consultation.ended` is the room's last event.",
        "bearer", path_params=_ROOM, replies={200: Reply("The room.", ConsultationOut)},
        errors=(*_AUTH, *_HOST),
    )),
    ("POST", CAMERAS, add_camera, Operation(
        "Bring a camera into the room", "consultations",
        "The host, for a camera inside their org subtree; it becomes participant "
        "`camera:<id>` and counts towards the room's limit.",
        "bearer", body=CameraIn, path_params=_ROOM, replies={201: _UPDATED},
        errors=(*_AUTH, *_BODY, *_HOST, "camera.not_found", "camera.unavailable",
                "consultation.room_full", "consultation.media_unavailable"),
    )),
    ("DELETE", CAMERA, remove_camera, Operation(
        "Take a camera out of the room", "consultations", "The host only.", "bearer",
        path_params={**_ROOM, "camera_id": "Camera id."}, replies={204: _DONE},
        errors=(*_AUTH, *_HOST, "consultation.participant_not_found"),
    )),
    ("POST", TERMINALS, call_terminal, Operation(
        "Call a video network terminal into the room (视联网终端)", "consultations",
        "The host only. The call goes through the video network's SIP gateway "
        "(`HUB_VIDEONET__CALLS__*`); a bare number gets the dial domain. The terminal is "
        "participant `terminal:<address>`, `invited` while it rings; `consultation."
        "terminal_call` events on `room:<id>` say `calling`, then `connected` (it joins) or "
        "`failed` (with the SIP reason), and `ended` when it hangs up, its media stops or "
        "the gateway is lost. Terminals may also dial in with the room's `dial_code`.",
        "bearer", body=TerminalIn, path_params=_ROOM, replies={202: _UPDATED},
        errors=(*_AUTH, *_BODY, *_HOST, "consultation.calls_unavailable",
                "consultation.already_calling", "consultation.room_full"),
    )),
    ("POST", TERMINAL_SHOW, show_terminal, Operation(
        "Choose what a terminal sees", "consultations",
        "The host only. A terminal is sent one participant's video, forwarded without "
        "re-encoding: the one chosen here, or (`source` null) the active speaker.",
        "bearer", body=ShowIn, path_params=_PARTICIPANT, replies={204: _DONE},
        errors=(*_AUTH, *_BODY, *_HOST, "consultation.participant_not_found"),
    )),
    ("GET", RECORDING, download_recording, Operation(
        "Download a recording", "consultations", _MEMBERS + " Supports `Range`.", "bearer",
        path_params={**_ROOM, "recording_id": "Recording id."},
        replies={200: Reply("The file.", schema={"type": "string", "format": "binary"},
                            content_type="application/octet-stream")},
        errors=(*_AUTH, *_SEEN, "consultation.recording_not_found"),
    )),
    ("POST", WHIP, post_whip, Operation(
        "Join the room's media (WHIP)", "consultations",
        "WHIP: the body is the participant's SDP offer (`application/sdp`, at most "
        "`HUB_CONSULTATIONS__MAX_SDP_BYTES`). The host and invited, accepted or earlier "
        "joined users may join; declined and removed ones may not.", "bearer",
        path_params=_ROOM, extra=_text_body(SDP_TYPE, "The participant's SDP offer."),
        replies={201: Reply(
            "The SDP answer.", schema={"type": "string"}, content_type=SDP_TYPE,
            headers={"Location": "The session's URL (PATCH to trickle ICE, DELETE to leave)."},
        )},
        errors=(*_AUTH, *_OPEN, "consultation.not_invited", "request.unsupported_media_type",
                "consultation.offer_too_large", "consultation.bad_sdp",
                "consultation.codec_unsupported", "consultation.media_unavailable"),
    )),
    ("PATCH", WHIP_SESSION, patch_whip, Operation(
        "Trickle ICE candidates (WHIP)", "consultations",
        "Body `application/trickle-ice-sdpfrag`; each `a=candidate:` line goes to the "
        "media plane.", "bearer", path_params=_PARTICIPANT,
        extra=_text_body(SDPFRAG_TYPE, "Trickle ICE SDP fragment (RFC 8840)."),
        replies={204: _DONE},
        errors=(*_AUTH, *_OPEN, "consultation.session_not_found", "consultation.not_joined",
                "consultation.no_session",
                "consultation.not_invited", "request.unsupported_media_type",
                "consultation.offer_too_large", "consultation.bad_sdp",
                "consultation.media_unavailable"),
    )),
    ("DELETE", WHIP_SESSION, delete_whip, Operation(
        "Leave the room's media (WHIP)", "consultations", "Idempotent.", "bearer",
        path_params=_PARTICIPANT, replies={204: _DONE},
        errors=(*_AUTH, *_SEEN, "consultation.session_not_found"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the consultation routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
