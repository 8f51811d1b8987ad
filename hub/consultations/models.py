"""The consultation tables: rooms, their participants (users and cameras) and the files the
media plane recorded. Registered on the hub's metadata (hub/db/migrations/env.py imports
this module); migration 0011 creates them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.models import Base, TZDateTime, utcnow

OPEN, ENDED = "open", "ended"
USER, CAMERA, TERMINAL = "user", "camera", "terminal"
INVITED, ACCEPTED, DECLINED = "invited", "accepted", "declined"
JOINED, LEFT, REMOVED = "joined", "left", "removed"
SEATED = frozenset({INVITED, ACCEPTED, JOINED, LEFT})
"""Participant states that hold a seat of the room (count towards ``max_participants``)."""
MEMBERS = SEATED
"""Participant states that may subscribe to ``room:<id>`` and join."""


class Consultation(Base):
    """A consultation room (会商室): who hosts it, whether it is open, its case."""

    __tablename__ = "consultations"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[str | None] = mapped_column(String(26), index=True)
    """The case it is about, if any (no foreign key: the timeline link is by id)."""
    host_id: Mapped[str] = mapped_column(String(64))
    org: Mapped[str] = mapped_column(String(128))
    """The creator's org node: the envelope org of the room's events."""
    status: Mapped[str] = mapped_column(String(8), default=OPEN)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """When the first participant's media joined."""
    ended_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_consultations_status", "status", "created_at"),)


class ConsultationParticipant(Base):
    """A user or camera in a room and where it stands: invited → accepted / declined →
    joined → left, or removed by the host (until invited again)."""

    __tablename__ = "consultation_participants"

    consultation_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("consultations.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    """The user id, ``camera:<camera id>`` or ``terminal:<its SIP address>`` (a video network
    terminal in a SIP call)."""
    kind: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[str | None] = mapped_column(String(64))
    camera_id: Mapped[str | None] = mapped_column(String(64))
    invited_by: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))
    invited_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    joined_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    left_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    leave_reason: Mapped[str | None] = mapped_column(String(16))
    """left, removed, lost or ended."""
    muted_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    muted_video: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_consultation_participants_user", "user_id", "state"),)


class ConsultationRecording(Base):
    """A file the media plane recorded for a room: one source, audio or video."""

    __tablename__ = "consultation_recordings"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    consultation_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("consultations.id", ondelete="CASCADE"), index=True
    )
    source_id: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1024))
    """Relative to the recordings directory when it lies inside it, else absolute."""
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime] = mapped_column(TZDateTime)
    ended_at: Mapped[datetime] = mapped_column(TZDateTime, index=True)
