"""Request and response schemas of the consultations REST API (远程会商)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.consultations.models import (
    Consultation,
    ConsultationParticipant,
    ConsultationRecording,
)
from hub.consultations.rooms import room_code
from hub.notices.models import as_utc

MAX_INVITEES = 200
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Invitation(_Strict):
    """Whom to invite: users and org nodes (each expanded to its subtree's active users)."""

    invite_users: list[str] = Field(
        default_factory=list, max_length=MAX_INVITEES,
        description="User ids: inside the host's org subtree or above it.",
    )  # fmt: skip
    invite_org_nodes: list[str] = Field(
        default_factory=list, max_length=MAX_INVITEES,
        description="Org node paths inside the host's subtree; their active users are invited.",
    )  # fmt: skip
    sms_offline: bool = Field(
        False, description="Also invite by SMS those invitees who have no live connection."
    )


class ConsultationCreate(Invitation):
    """``POST /api/v1/consultations``: open a room hosted by the caller."""

    title: str = Field(min_length=1, max_length=200)
    case_id: str | None = Field(
        None, min_length=26, max_length=26, description="The case the consultation is about."
    )


class MuteIn(_Strict):
    """Mute or unmute one of a participant's tracks."""

    kind: Literal["audio", "video"]
    muted: bool


class HostIn(_Strict):
    """Hand the room over."""

    user_id: str = Field(min_length=1, max_length=64)


class CameraIn(_Strict):
    """Bring a camera into the room."""

    camera_id: str = Field(pattern=ID_PATTERN)


class TerminalIn(_Strict):
    """Call a video network terminal into the room."""

    uri: str = Field(
        min_length=5, max_length=200,
        description="The terminal's SIP URI (sip:1001@gateway), or a number dialled through"
        " the gateway.",
    )  # fmt: skip
    name: str = Field("", max_length=100, description="What the room shows for it.")


class ShowIn(_Strict):
    """What a terminal is shown."""

    source: str | None = Field(
        None, max_length=80, description="A participant id; null: the active speaker."
    )


class MineQuery(_Strict):
    """Query of ``GET /api/v1/consultations``."""

    status: Literal["open", "ended"] = "open"


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


class ParticipantOut(BaseModel):
    """A user or camera of a room and where it stands."""

    model_config = ConfigDict(from_attributes=True)

    participant_id: str = Field(
        description="The user id, `camera:<camera id>` or `terminal:<SIP address>`."
    )
    kind: Literal["user", "camera", "terminal"]
    user_id: str | None
    camera_id: str | None
    invited_by: str | None
    state: Literal["invited", "accepted", "declined", "joined", "left", "removed"]
    invited_at: datetime
    answered_at: datetime | None
    joined_at: datetime | None
    left_at: datetime | None
    leave_reason: str | None = Field(description="left, removed, lost, ended or hung_up.")
    muted_audio: bool
    muted_video: bool

    _times = field_validator("invited_at", "answered_at", "joined_at", "left_at")(_utc)


class RecordingOut(BaseModel):
    """A file the media plane recorded (one source, audio or video)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    source_id: str
    kind: str
    bytes: int
    started_at: datetime
    ended_at: datetime

    _times = field_validator("started_at", "ended_at")(_utc)


class ConsultationOut(BaseModel):
    """A room, with its participants and recordings when asked for one."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    case_id: str | None
    host_id: str
    org: str
    status: Literal["open", "ended"]
    created_by: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    my_state: str | None = Field(None, description="The caller's participant state.")
    dial_code: str = Field(
        "", description="The digits a video network terminal dials to call into the room."
    )
    participants: list[ParticipantOut] | None = None
    recordings: list[RecordingOut] | None = None

    _times = field_validator("created_at", "started_at", "ended_at")(_utc)

    @classmethod
    def of(
        cls,
        room: Consultation,
        *,
        mine: ConsultationParticipant | None = None,
        participants: list[ConsultationParticipant] | None = None,
        recordings: list[ConsultationRecording] | None = None,
    ) -> ConsultationOut:
        """The response of a room."""
        out = cls.model_validate(room)
        out.dial_code = room_code(room.id)
        out.my_state = mine.state if mine is not None else None
        if participants is not None:
            out.participants = [ParticipantOut.model_validate(p) for p in participants]
        if recordings is not None:
            out.recordings = [RecordingOut.model_validate(r) for r in recordings]
        return out


class ConsultationList(BaseModel):
    """The caller's rooms, newest first (at most 100)."""

    items: list[ConsultationOut]


class Invited(BaseModel):
    """Who an invitation newly invited."""

    invited: list[str]
