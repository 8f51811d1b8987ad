"""The catalogue of API error codes: one place, used by the OpenAPI document and the docs.

Every error the HTTP API returns has the body ``{"error": {"code", "message", "details"?}}``
(hub/api/errors.py). ``code`` is one of the keys of ``ERROR_CODES``; a test checks that
every code raised in ``hub/`` is listed here, so the list cannot fall behind the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """An error code's HTTP status and what it means for the caller."""

    status: int
    description: str


ERROR_CODES: dict[str, ErrorCode] = {
    # -- any endpoint ---------------------------------------------------------------------
    "request.bad": ErrorCode(400, "The request is malformed."),
    "request.invalid_json": ErrorCode(400, "The body is not valid JSON."),
    "request.invalid_query": ErrorCode(
        400, "A query parameter is malformed or out of range (see details)."
    ),
    "request.too_large": ErrorCode(413, "The body is over the size limit."),
    "request.unsupported_media_type": ErrorCode(415, "The body's content type is not accepted."),
    "not_found": ErrorCode(404, "No such endpoint."),
    "method_not_allowed": ErrorCode(405, "The endpoint does not accept this method."),
    "internal": ErrorCode(500, "An unexpected server error; it has been logged."),
    "service.unavailable": ErrorCode(503, "A backend (database, bus) is unreachable; retry."),
    "config.invalid": ErrorCode(500, "The hub's configuration is inconsistent (start-up)."),
    # -- user authentication (Authorization: Bearer <JWT>) --------------------------------
    "auth.required": ErrorCode(401, "No `Authorization: Bearer <token>` header."),
    "auth.invalid_token": ErrorCode(401, "The token is malformed, badly signed or lacks claims."),
    "auth.token_expired": ErrorCode(401, "The token has expired; get a new one."),
    "auth.forbidden": ErrorCode(
        403, "The caller lacks the role, or the target lies outside the caller's org subtree."
    ),
    # -- external ingest (POST /api/v1/events) --------------------------------------------
    "auth.missing": ErrorCode(401, "X-Api-Key, X-Timestamp or X-Signature is missing."),
    "auth.unknown_key": ErrorCode(401, "X-Api-Key names no configured API key."),
    "auth.bad_timestamp": ErrorCode(401, "X-Timestamp is not Unix seconds."),
    "auth.stale_timestamp": ErrorCode(
        401, "X-Timestamp is outside the signature window (too old or in the future)."
    ),
    "auth.bad_signature": ErrorCode(401, "X-Signature does not match the timestamp and body."),
    "auth.replayed": ErrorCode(
        409, "This exact signed request was already used; sign every attempt anew."
    ),
    "auth.org_forbidden": ErrorCode(403, "The API key may not publish to this org node."),
    "request.bad_idempotency_key": ErrorCode(400, "Idempotency-Key must be 1–128 characters."),
    "idempotency.conflict": ErrorCode(
        409, "The Idempotency-Key was already used with a different body."
    ),
    "request.conflict": ErrorCode(409, "A concurrent request conflicted with this one; retry."),
    "event.invalid": ErrorCode(
        422,
        "Unknown or internal-only event type, or the body or event data does not match the "
        "schema (see details).",
    ),
    "event.unknown_org": ErrorCode(422, "The event's org node does not exist."),
    # -- directory (org tree and users) ---------------------------------------------------
    "org.not_found": ErrorCode(404, "No org node with this path."),
    "org.exists": ErrorCode(409, "An org node with this path already exists."),
    "org.invalid": ErrorCode(
        422, "The org node does not validate, or its level is not the one below its parent."
    ),
    "org.unknown_parent": ErrorCode(422, "The new node's parent does not exist."),
    "user.not_found": ErrorCode(404, "No user with this id."),
    "user.exists": ErrorCode(409, "A user with this id already exists."),
    "user.invalid": ErrorCode(422, "The user does not validate (see details)."),
    # -- grid workers ---------------------------------------------------------------------
    "worker.not_found": ErrorCode(404, "No grid worker with this id."),
    "worker.exists": ErrorCode(409, "A grid worker with this id already exists."),
    "worker.invalid": ErrorCode(
        422, "The worker does not validate, or their grid is not an existing grid node."
    ),
    "track.too_long": ErrorCode(
        422, "Too many fixes in the range to return unsimplified: narrow it or simplify."
    ),
    # -- notices --------------------------------------------------------------------------
    "notice.invalid": ErrorCode(422, "The notice does not validate (see details)."),
    "notice.not_found": ErrorCode(
        404, "No such notice, or the caller is neither a recipient nor (for receipts) its sender."
    ),
    "notice.red_header_forbidden": ErrorCode(
        403, "Red-header notices (红头文件) may be issued by leaders and admins only."
    ),
    "notice.target_outside_scope": ErrorCode(
        403, "A target user or org lies outside the sender's org subtree."
    ),
    "notice.unknown_target": ErrorCode(422, "A target user or org does not exist (see details)."),
    "notice.no_recipients": ErrorCode(422, "The targets resolve to no active user."),
    # -- SMS (queue and gateway callbacks) ------------------------------------------------
    "sms.invalid_number": ErrorCode(422, "The recipient is not 3-20 digits (optionally +)."),
    "sms.invalid_text": ErrorCode(
        422, "The text is empty, cannot be encoded, or needs more segments than allowed."
    ),
    "sms.invalid_key": ErrorCode(422, "The idempotency key is not 1-64 of A-Z a-z 0-9 . _ : -."),
    "sms.key_conflict": ErrorCode(409, "The idempotency key was used for a different message."),
    "sms.bad_dlr": ErrorCode(400, "The gateway's delivery report is not a Jasmin DLR."),
    "sms.bad_mo": ErrorCode(400, "The gateway's inbound message is not a Jasmin MO callback."),
    "sms.unknown_message": ErrorCode(
        404, "The delivery report names no message this hub sent (or more than one)."
    ),
    "sms.callback_forbidden": ErrorCode(403, "The callback URL lacks the configured token."),
    # -- cases ----------------------------------------------------------------------------
    "case.invalid": ErrorCode(422, "The case or action does not validate (see details)."),
    "case.not_found": ErrorCode(404, "No such case, or the caller may not see it."),
    "case.unknown_category": ErrorCode(422, "The category is not a code of the category tree."),
    "case.unknown_org": ErrorCode(422, "The case's org node does not exist."),
    "case.no_org": ErrorCode(422, "Neither an org nor a location inside a grid was given."),
    "case.outside_scope": ErrorCode(403, "The case's place lies outside the reporter's scope."),
    "case.direct_report_forbidden": ErrorCode(
        403, "Emergency direct reports to the district are for grid workers and leaders."
    ),
    "case.invalid_transition": ErrorCode(
        409, "The action is not allowed in the case's current state (the message says which)."
    ),
    "case.wrong_tier": ErrorCode(
        403, "The action belongs to another role or tier (e.g. the handling centre's staff)."
    ),
    "case.not_assignee": ErrorCode(403, "Only the case's assignee may start or feed back."),
    "case.no_higher_tier": ErrorCode(409, "The case is already at the top tier's centre."),
    "case.reason_required": ErrorCode(
        422, "Reject, return, escalate and supervise need a note saying why."
    ),
    "case.version_conflict": ErrorCode(409, "The case changed since the given if_version."),
    "case.unknown_assignee": ErrorCode(422, "The assignee is not an active user."),
    "case.assignee_outside_scope": ErrorCode(
        403, "The assignee is neither under the handling centre nor a department above it."
    ),
    "case.invalid_deadline": ErrorCode(422, "The deadline is in the past."),
    "case.unknown_attachment": ErrorCode(422, "An attachment id is not one of this case's."),
    "case.attachment_too_large": ErrorCode(413, "The attachment is over the size limit."),
    "case.attachment_type": ErrorCode(
        415, "The attachment's type is not accepted, or its content does not match it."
    ),
    "case.too_many_attachments": ErrorCode(409, "The case has the most attachments allowed."),
    "case.attachment_not_found": ErrorCode(404, "No such attachment on this case."),
    # -- city management ------------------------------------------------------------------
    "citymgmt.wrong_key": ErrorCode(
        403, "The request is signed with a key other than the city-management system's."
    ),
    "citymgmt.invalid_request": ErrorCode(
        422, "The body is not an Open311 GeoReport v2 service request or array (see details)."
    ),
    "citymgmt.delivery_not_found": ErrorCode(404, "No such city-management delivery."),
    "citymgmt.not_dead": ErrorCode(409, "Only a dead-lettered delivery can be retried."),
    # -- cameras --------------------------------------------------------------------------
    "camera.not_found": ErrorCode(
        404, "No such camera, or it lies outside the caller's org subtree."
    ),
    "camera.exists": ErrorCode(409, "A camera with this id already exists."),
    "camera.invalid": ErrorCode(
        422, "The camera does not validate, or its org node does not exist (see details)."
    ),
    "camera.invalid_alarm": ErrorCode(422, "The alarm does not match the schema (see details)."),
    # -- camera media ---------------------------------------------------------------------
    "camera.bad_sdp": ErrorCode(
        400, "The WHEP body is not a usable SDP offer (unparseable, no video, no ICE/DTLS)."
    ),
    "camera.codec_unsupported": ErrorCode(
        422, "The viewer offers no H.264 profile that can play the camera (no transcoding)."
    ),
    "camera.unavailable": ErrorCode(
        503, "The camera is offline or did not deliver in time; try again later."
    ),
    "camera.viewer_limit": ErrorCode(503, "The camera has as many live viewers as allowed."),
    "camera.session_not_found": ErrorCode(404, "No such live-view session for this camera."),
    "camera.snapshot_failed": ErrorCode(502, "The camera's keyframe did not decode."),
    # -- recordings -----------------------------------------------------------------------
    "recording.invalid": ErrorCode(
        422, "The recording request does not validate (seconds out of range; see details)."
    ),
    "recording.busy": ErrorCode(503, "As many recordings run as allowed; retry later."),
    "recording.not_found": ErrorCode(
        404, "No such recording (or its file is gone), or it is outside the caller's org."
    ),
    "recording.not_ready": ErrorCode(409, "The recording is still running or has failed."),
    "camera.recording_failed": ErrorCode(502, "The camera's recording produced no usable file."),
    # -- camera PTZ -----------------------------------------------------------------------
    "camera.ptz_invalid": ErrorCode(
        422, "The PTZ request does not validate (velocity outside [-1, 1]; see details)."
    ),
    "camera.ptz_unsupported": ErrorCode(
        409, "The camera is not registered as PTZ, or its ONVIF service offers no PTZ."
    ),
    "camera.ptz_unavailable": ErrorCode(
        503, "The camera's ONVIF service is not reachable or did not answer in time."
    ),
    "camera.ptz_auth_failed": ErrorCode(
        502, "The camera rejected the stored ONVIF credentials (fix them on the camera)."
    ),
    "camera.ptz_failed": ErrorCode(502, "The camera refused the PTZ request or answered badly."),
    "video_device.not_found": ErrorCode(404, "No such video device (or not in your subtree)."),
    "video_device.offline": ErrorCode(
        409, "The video device is not registered to the hub now, or is silent (no keepalives)."
    ),
    "video_device.no_answer": ErrorCode(504, "The video device did not answer the catalog query."),
    "camera.ptz_preset_not_found": ErrorCode(404, "The camera has no preset with this token."),
    "camera.ptz_rate_limited": ErrorCode(
        429, "Too many moves of this camera in a second; send fewer (stop is never limited)."
    ),
    # -- consultations (远程会商) -----------------------------------------------------------
    "consultation.invalid": ErrorCode(422, "The request does not match the schema (see details)."),
    "consultation.not_found": ErrorCode(
        404, "No such consultation, or the caller is not one of its members."
    ),
    "consultation.ended": ErrorCode(409, "The consultation has ended."),
    "consultation.calls_unavailable": ErrorCode(
        503, "Video network calls are not enabled (HUB_VIDEONET__CALLS__ENABLED)."
    ),
    "consultation.already_calling": ErrorCode(
        409, "The terminal is already being called or is in the room."
    ),
    "consultation.too_many_calls": ErrorCode(503, "The hub has as many terminal calls as allowed."),
    "consultation.duplicate_source": ErrorCode(
        409, "That participant's media is already in the room."
    ),
    "consultation.call_failed": ErrorCode(
        502, "The terminal call failed (refused, unreachable or no common codec)."
    ),
    "consultation.not_host": ErrorCode(403, "Only the room's host may do this."),
    "consultation.not_invited": ErrorCode(
        403, "The caller declined or was removed: only invited participants may join."
    ),
    "consultation.invalid_state": ErrorCode(
        409, "The invitation cannot be answered so now (e.g. the host, or already joined)."
    ),
    "consultation.target_outside_scope": ErrorCode(
        403,
        "An invitee lies outside the host's reach (users: subtree or above; org nodes: subtree).",
    ),
    "consultation.unknown_target": ErrorCode(422, "An invitee does not exist (see details)."),
    "consultation.room_full": ErrorCode(
        409, "The room would hold more participants (cameras included) than allowed."
    ),
    "consultation.too_many_rooms": ErrorCode(
        429, "The hub already runs as many open consultations as allowed; end one first."
    ),
    "consultation.participant_not_found": ErrorCode(
        404, "No such participant in the room (or it was removed or declined)."
    ),
    "consultation.cannot_remove_host": ErrorCode(
        409, "The host cannot be removed; hand the room over first."
    ),
    "consultation.invalid_host": ErrorCode(
        409, "The new host must be a user participant who accepted or joined."
    ),
    "consultation.not_joined": ErrorCode(409, "The caller has not joined the room's media."),
    "consultation.session_not_found": ErrorCode(404, "No such WHIP session of the caller."),
    "consultation.offer_too_large": ErrorCode(
        413, "The SDP offer (or fragment) is over `HUB_CONSULTATIONS__MAX_SDP_BYTES`."
    ),
    "consultation.bad_sdp": ErrorCode(400, "The SDP offer or fragment is not usable."),
    "consultation.codec_unsupported": ErrorCode(
        422, "The offer has no codec the room can forward."
    ),
    "consultation.media_unavailable": ErrorCode(
        503, "The consultation media plane is not running or not reachable; retry later."
    ),
    "consultation.no_session": ErrorCode(
        404, "The media plane has no session of the room (join before trickling ICE)."
    ),
    "consultation.recording_not_found": ErrorCode(
        404, "No such recording of the room, or its file is gone."
    ),
}

BEARER_CODES = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
"""What any Bearer-authenticated endpoint may answer."""


def codes_by_status(codes: Iterable[str]) -> dict[int, list[str]]:
    """Group codes by their HTTP status (for an operation's responses)."""
    grouped: dict[int, list[str]] = {}
    for code in codes:
        grouped.setdefault(ERROR_CODES[code].status, []).append(code)
    return dict(sorted(grouped.items()))


class ErrorDetail(BaseModel):
    """One validation problem: where and what."""

    model_config = ConfigDict(extra="allow")

    loc: str = Field(description="Dotted location of the offending field.")
    msg: str = Field(description="What is wrong with it.")


class ErrorInfo(BaseModel):
    """The error itself."""

    code: str = Field(description="Machine-readable code (see the error code catalogue).")
    message: str = Field(description="Human-readable explanation.")
    details: list[ErrorDetail] | None = Field(None, description="Validation problems, if any.")


class ErrorResponse(BaseModel):
    """The body of every API error response."""

    error: ErrorInfo
