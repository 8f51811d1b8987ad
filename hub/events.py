"""Typed event classes: the one place every event type and its data schema is declared.

The AsyncAPI document and the ingest validator are generated from ``EVENT_TYPES``, so the
documentation cannot drift from what the hub accepts and publishes.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.envelope import Envelope


class EventData(BaseModel):
    """Base of every event's ``data``: strict about unknown fields, sizes bounded."""

    model_config = ConfigDict(extra="forbid", str_max_length=4000)

    type: ClassVar[str]
    summary: ClassVar[str]
    external: ClassVar[bool] = False  # may external systems push it via POST /api/v1/events?

    def envelope(self, *, source: str, org: str, subject: str | None = None) -> Envelope:
        """Wrap this data in an envelope."""
        return Envelope(
            type=self.type,
            source=source,
            org=org,
            subject=subject,
            data=self.model_dump(mode="json", exclude_none=True),
        )


class GeoPoint(BaseModel):
    """A WGS-84 point with an optional address."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(None, max_length=200)


class MessagePosted(EventData):
    """A short message a dispatcher posted to an org channel from the console."""

    type: ClassVar[str] = "message.posted"
    summary: ClassVar[str] = "A console user posted a message to an org channel."

    text: str = Field(min_length=1, max_length=2000)
    author: str | None = Field(None, max_length=128, description="Set by the hub.")


class AlertRaised(EventData):
    """An alert an external system (another department, an alarm platform) pushed."""

    type: ClassVar[str] = "alert.raised"
    summary: ClassVar[str] = "An external system raised an alert about an org node."
    external: ClassVar[bool] = True

    title: str = Field(min_length=1, max_length=200)
    level: Literal["info", "warning", "critical"] = "info"
    description: str | None = Field(None, max_length=4000)
    location: GeoPoint | None = None
    external_ref: str | None = Field(None, max_length=128)


class Announcement(EventData):
    """A system-wide or org-wide announcement pushed by an external system."""

    type: ClassVar[str] = "announcement.published"
    summary: ClassVar[str] = "An announcement for everyone in an org subtree."
    external: ClassVar[bool] = True

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)


class UserChanged(EventData):
    """The user directory changed (admin REST)."""

    type: ClassVar[str] = "directory.user_changed"
    summary: ClassVar[str] = "A user was created, updated or deactivated."

    user_id: str
    action: Literal["created", "updated", "deactivated"]


class OrgNodeChanged(EventData):
    """The org tree changed (admin REST)."""

    type: ClassVar[str] = "directory.org_changed"
    summary: ClassVar[str] = "An org node was created or renamed."

    path: str
    action: Literal["created", "updated"]


class WorkerPosition(EventData):
    """A grid worker's latest position (coalesced: at most one per worker per interval)."""

    type: ClassVar[str] = "worker.position"
    summary: ClassVar[str] = "A grid worker's live position (WGS-84)."

    worker_id: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float = Field(ge=0)
    fix_time: float = Field(description="When the phone measured it (Unix seconds).")
    received_at: float = Field(description="When the hub received it (Unix seconds).")
    battery_pct: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    datum: Literal["wgs84"] = "wgs84"


class WorkerGridTransition(EventData):
    """Base of the boundary events."""

    worker_id: str
    grid: str
    since: float = Field(description="Fix time of the first fix past the boundary.")
    lat: float
    lon: float


class WorkerLeftGrid(WorkerGridTransition):
    """A worker left their own grid (after hysteresis)."""

    type: ClassVar[str] = "worker.left_grid"
    summary: ClassVar[str] = "A grid worker left their grid."


class WorkerEnteredGrid(WorkerGridTransition):
    """A worker came back into their own grid (after hysteresis)."""

    type: ClassVar[str] = "worker.entered_grid"
    summary: ClassVar[str] = "A grid worker re-entered their grid."


class WorkerOffline(EventData):
    """A worker on duty fell silent, or their phone's Last Will said it went away."""

    type: ClassVar[str] = "worker.offline"
    summary: ClassVar[str] = "A grid worker on duty went offline."

    worker_id: str
    grid: str
    reason: Literal["silent", "last_will"]
    last_seen: float | None = Field(
        None, description="When the hub last heard from the phone (Unix seconds)."
    )


class WorkerOnline(EventData):
    """A worker's phone was heard again after being offline (or for the first time)."""

    type: ClassVar[str] = "worker.online"
    summary: ClassVar[str] = "A grid worker came online."

    worker_id: str
    grid: str
    offline_since: float | None = Field(
        None, description="When the phone was last heard before (None: never)."
    )


NoticeKind = Literal["meeting", "matter", "work_arrangement", "red_header"]
NoticeLevel = Literal["normal", "urgent"]


class NoticeNew(EventData):
    """A notice for the recipient: the pop-up (the full body is fetched over REST)."""

    type: ClassVar[str] = "notice.new"
    summary: ClassVar[str] = "A notice arrived for this user (on user:<id> only)."

    notice_id: str
    kind: NoticeKind
    level: NoticeLevel
    title: str = Field(max_length=200)
    excerpt: str = Field(
        max_length=200, description="The start of the body; GET /api/v1/notices/{id} has it all."
    )
    attachment_count: int = Field(ge=0)
    sender_id: str
    sender_name: str
    sender_org: str
    created_at: str = Field(description="When it was sent (ISO 8601, UTC).")


class NoticeReadProgress(EventData):
    """Read receipts counted for the sender (at most one per notice per second)."""

    type: ClassVar[str] = "notice.read_progress"
    summary: ClassVar[str] = "Read / unread counts of a notice moved (on the sender's user:<id>)."

    notice_id: str
    read: int = Field(ge=0)
    unread: int = Field(ge=0)
    total: int = Field(ge=0)


class NoticeSent(EventData):
    """The sender's confirmation that a notice was stored with its recipients."""

    type: ClassVar[str] = "notice.sent"
    summary: ClassVar[str] = "A notice the user sent was stored (on the sender's user:<id>)."

    notice_id: str
    kind: NoticeKind
    level: NoticeLevel
    title: str = Field(max_length=200)
    recipient_count: int = Field(ge=0)
    created_at: str


class SmsDelivered(EventData):
    """An outbound SMS reached the handset (every part receipted delivered)."""

    type: ClassVar[str] = "sms.delivered"
    summary: ClassVar[str] = "An outbound SMS was delivered."

    message_id: str
    to: str
    segments: int = Field(ge=1)
    sent_at: str | None = None


class SmsFailed(EventData):
    """An outbound SMS will not be delivered: refused, undeliverable or expired."""

    type: ClassVar[str] = "sms.failed"
    summary: ClassVar[str] = "An outbound SMS failed for good (state failed or expired)."

    message_id: str
    to: str
    state: Literal["failed", "expired"]
    error: str | None = Field(None, max_length=500)
    attempts: int = Field(ge=0)


class SmsReceived(EventData):
    """An inbound SMS from a phone, stored."""

    type: ClassVar[str] = "sms.received"
    summary: ClassVar[str] = "An SMS arrived from a phone."

    inbound_id: str
    sender: str
    recipient: str
    text: str
    received_at: str


class CaseEvent(EventData):
    """Base of every case event: the case as it stands after the action, and the action.

    Published on the org channels of the case's location (so every centre above it sees
    it), on ``case:<id>``, and on the assignee's ``user:<id>`` where it concerns them."""

    case_id: str
    number: str
    title: str = Field(max_length=200)
    category: str
    priority: Literal["normal", "urgent", "emergency"]
    state: str
    from_state: str | None = None
    tier_org: str
    assignee: str | None = None
    actor: str = Field(description="Who acted: a user id, system:<id> or citizen:<phone>.")
    note: str = Field("", max_length=2000)
    due_at: str | None = Field(None, description="Deadline (ISO 8601, UTC), once registered.")
    at: str = Field(description="When it happened (ISO 8601, UTC).")


def _case_event(name: str, summary: str) -> type[CaseEvent]:
    return type(
        f"Case{name.title().replace('_', '')}",
        (CaseEvent,),
        {"type": f"case.{name}", "summary": summary, "__doc__": summary},
    )


CASE_EVENTS: dict[str, type[CaseEvent]] = {
    cls.type: cls
    for cls in (
        _case_event("reported", "A case was reported (上报)."),
        _case_event("registered", "A centre registered a case (立案)."),
        _case_event("rejected", "A centre declined to register a case (不予立案)."),
        _case_event("assigned", "A case was assigned to a handler with a deadline (指派)."),
        _case_event("started", "The handler started on a case (处置)."),
        _case_event("fed_back", "The handler fed back the result (反馈)."),
        _case_event("closed", "The centre verified the result and closed the case (结案)."),
        _case_event("returned", "The centre returned the result to the handler (退回)."),
        _case_event("evaluated", "A closed case was evaluated (评价)."),
        _case_event("escalated", "A case went up to the parent tier's centre (上报上级)."),
        _case_event("supervised", "A higher tier issued a supervision notice (督办单)."),
        _case_event("updated", "The owning external system updated a case's details."),
        _case_event("due_soon", "A case nears its time limit (yellow 督办 alert)."),
        _case_event("overdue", "A case is past its time limit (red 督办 alert)."),
        _case_event("consult_started", "A video consultation about the case began (远程会商)."),
        _case_event("consult_ended", "A video consultation about the case ended."),
        _case_event("consult_recorded", "A consultation about the case left recordings."),
    )
}
"""Case event classes by type; ``case.<past tense of the action>``."""


class CameraStatusEvent(EventData):
    """Base of the camera status events (published on the camera's org channels and
    ``camera:<id>``, once per change)."""

    camera_id: str
    name: str
    org: str
    reason: str = Field("", max_length=500, description="Why, as the media plane saw it.")
    at: str = Field(description="When the status changed (ISO 8601, UTC).")


class CameraOnline(CameraStatusEvent):
    """A camera's stream could be pulled again (or for the first time)."""

    type: ClassVar[str] = "camera.online"
    summary: ClassVar[str] = "A camera came online."


class CameraOffline(CameraStatusEvent):
    """A camera's stream could not be pulled."""

    type: ClassVar[str] = "camera.offline"
    summary: ClassVar[str] = "A camera went offline."


AlarmLevel = Literal["info", "warning", "critical"]


class CameraAlarm(EventData):
    """An alarm a camera or camera platform raised (POST /api/v1/cameras/{id}/alarms)."""

    type: ClassVar[str] = "camera.alarm"
    summary: ClassVar[str] = "A camera platform raised an alarm (on org channels and camera:<id>)."

    camera_id: str
    kind: str = Field(max_length=64, description="What was detected, e.g. fire, intrusion.")
    level: AlarmLevel
    description: str | None = Field(None, max_length=2000)
    at: str = Field(description="When it occurred (ISO 8601, UTC).")
    external_ref: str | None = Field(None, max_length=128, description="The platform's id.")


class CameraChanged(EventData):
    """The camera registry changed (REST)."""

    type: ClassVar[str] = "camera.changed"
    summary: ClassVar[str] = "A camera was created, updated or deleted."

    camera_id: str
    action: Literal["created", "updated", "deleted"]


class CameraRecordingDone(EventData):
    """A camera recording finished (POST /api/v1/cameras/{id}/recordings, or an alarm)."""

    type: ClassVar[str] = "camera.recording_done"
    summary: ClassVar[str] = "A camera recording finished, or failed (on camera:<id>)."

    recording_id: str
    camera_id: str
    state: Literal["done", "failed"]
    trigger: Literal["manual", "alarm"]
    duration_s: float | None = Field(None, description="Seconds of video in the MP4.")
    size: int = Field(0, description="Bytes of the MP4.")
    error: str | None = Field(None, max_length=500, description="Why it failed.")


class ConsultationInvited(EventData):
    """An invitation to a consultation room (远程会商邀请), on the invitee's ``user:<id>``."""

    type: ClassVar[str] = "consultation.invited"
    summary: ClassVar[str] = "The user was invited to a consultation (on user:<id> only)."

    consultation_id: str
    title: str = Field(max_length=200)
    host: str = Field(description="The host's user id.")
    host_name: str = ""
    case_id: str | None = None
    invited_by: str


class RoomEvent(EventData):
    """Base of the events of a consultation room, published on ``room:<id>`` only."""

    consultation_id: str


def _room_event(event: str, summary: str, /, **fields: Any) -> type[RoomEvent]:
    annotations = {name: spec[0] for name, spec in fields.items()}
    namespace: dict[str, Any] = {name: spec[1] for name, spec in fields.items()}
    namespace.update(
        __annotations__=annotations,
        type=f"consultation.{event}",
        summary=summary,
        __doc__=summary,
        __module__=__name__,
    )
    name = "Room" + event.title().replace("_", "")
    return type(name, (RoomEvent,), namespace)


_REQUIRED = Field(...)
_PARTICIPANT = (
    "str",
    Field(description="A user id, camera:<id> for a camera, terminal:<address> for a terminal."),
)
ROOM_EVENTS: dict[str, type[RoomEvent]] = {
    cls.type: cls
    for cls in (
        _room_event(
            "participant_invited", "A user was invited to the room.",
            participant_id=_PARTICIPANT, invited_by=("str", _REQUIRED),
        ),
        _room_event(
            "participant_answered", "An invitee accepted or declined.",
            participant_id=_PARTICIPANT, accepted=("bool", _REQUIRED),
        ),
        _room_event(
            "participant_joined", "A participant's media joined the room.",
            participant_id=_PARTICIPANT,
            kind=("Literal['user', 'camera', 'terminal']", _REQUIRED),
        ),
        _room_event(
            "participant_left",
            "A participant left: left, removed, lost, ended, or hung_up (a terminal's call).",
            participant_id=_PARTICIPANT,
            reason=("Literal['left', 'removed', 'lost', 'ended', 'hung_up']", _REQUIRED),
        ),
        _room_event(
            "terminal_call", "A video network terminal's call changed state.",
            participant_id=_PARTICIPANT, uri=("str", _REQUIRED), name=("str", Field("")),
            direction=("Literal['out', 'in']", _REQUIRED),
            state=("Literal['calling', 'connected', 'failed', 'ended']", _REQUIRED),
            reason=("str | None", Field(None, max_length=200)),
        ),
        _room_event(
            "muted", "A participant's audio or video was muted or unmuted.",
            participant_id=_PARTICIPANT, kind=("Literal['audio', 'video']", _REQUIRED),
            muted=("bool", _REQUIRED), by=("str", _REQUIRED),
        ),
        _room_event(
            "host_changed", "The host handed the room over.",
            host=("str", _REQUIRED), previous=("str", _REQUIRED), by=("str", _REQUIRED),
        ),
        _room_event(
            "camera_added", "A camera became a participant of the room.",
            participant_id=_PARTICIPANT, camera_id=("str", _REQUIRED), by=("str", _REQUIRED),
        ),
        _room_event(
            "camera_removed", "A camera was taken out of the room.",
            participant_id=_PARTICIPANT, camera_id=("str", _REQUIRED), by=("str", _REQUIRED),
        ),
        _room_event(
            "active_speaker", "The media plane detected a new active speaker.",
            participant_id=_PARTICIPANT,
        ),
        _room_event(
            "slots", "Which remote source plays in which receive slot changed.",
            slots=("dict[str, Any]", _REQUIRED),
        ),
        _room_event(
            "ended", "The host ended the consultation.",
            by=("str", _REQUIRED), recordings=("int", Field(0, ge=0)),
        ),
    )
}  # fmt: skip
"""Room event classes by type: ``consultation.<kind>`` on ``room:<id>``."""


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.type: cls
    for cls in (
        MessagePosted,
        AlertRaised,
        Announcement,
        UserChanged,
        OrgNodeChanged,
        WorkerPosition,
        WorkerLeftGrid,
        WorkerEnteredGrid,
        WorkerOffline,
        WorkerOnline,
        NoticeNew,
        NoticeReadProgress,
        NoticeSent,
        SmsDelivered,
        SmsFailed,
        SmsReceived,
        CameraOnline,
        CameraOffline,
        CameraAlarm,
        CameraChanged,
        CameraRecordingDone,
        ConsultationInvited,
    )
}
EVENT_TYPES.update(CASE_EVENTS)
EVENT_TYPES.update(ROOM_EVENTS)


class EventValidationError(ValueError):
    """Event data that does not match its type's schema."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


def parse_event_data(event_type: str, data: Any, *, external: bool) -> EventData:
    """Validate ``data`` against the schema of ``event_type``."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None or (external and not cls.external):
        raise EventValidationError(f"unknown event type {event_type[:64]!r}")
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        details = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in err.errors()
        ]
        raise EventValidationError("event data does not match its schema", details) from err
