"""ORM models: org tree, user directory, outbox, ingest bookkeeping, worker locations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now, for column defaults."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


Base.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every backend: SQLite stores no zone, so values are
    written in UTC and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)  # SQLite would drop the offset, not convert
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


TZDateTime = UTCDateTime()


class OrgNode(Base):
    """A node of the four-tier grid: district → street → community → grid."""

    __tablename__ = "org_nodes"

    path: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(
        String(128), ForeignKey("org_nodes.path"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class User(Base):
    """A person in the user directory."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    org: Mapped[str] = mapped_column(String(128), ForeignKey("org_nodes.path"), index=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)


class OutboxEvent(Base):
    """An event committed with the state change that caused it, waiting to be published."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(26), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    channels: Mapped[list[str]] = mapped_column(JSON)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "id"),)


class IdempotencyRecord(Base):
    """The answer given to a request with an Idempotency-Key, replayed on a retry."""

    __tablename__ = "idempotency_keys"

    api_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)


class SeenSignature(Base):
    """A request signature already used: a second use inside the window is a replay."""

    __tablename__ = "seen_signatures"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)


class Worker(Base):
    """A grid worker whose phone reports locations (the registry the MQTT adapter checks)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="")
    grid: Mapped[str] = mapped_column(String(128), ForeignKey("org_nodes.path"), index=True)
    datum: Mapped[str] = mapped_column(String(8), default="wgs84")
    """The datum the phone reports in when a payload does not say (wgs84, gcj02, bd09)."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    duty: Mapped[str] = mapped_column(String(8), default="unknown")
    """on_duty, off_duty or unknown (never said): offline alerts skip off-duty workers."""
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    """True from a worker's first message until silence or a Last Will says offline."""
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Position(Base):
    """One stored fix (WGS-84). ``(worker_id, fix_time)`` is unique: redelivered or repeated
    pings are stored once."""

    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    worker_id: Mapped[str] = mapped_column(String(64))
    fix_time: Mapped[float] = mapped_column(Float(precision=53))
    sent_time: Mapped[float | None] = mapped_column(Float(precision=53))
    received_at: Mapped[float] = mapped_column(Float(precision=53))
    lat: Mapped[float] = mapped_column(Float(precision=53))
    lon: Mapped[float] = mapped_column(Float(precision=53))
    accuracy_m: Mapped[float] = mapped_column(Float)
    altitude_m: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    heading_deg: Mapped[float | None] = mapped_column(Float)
    battery_pct: Mapped[float | None] = mapped_column(Float)
    source_datum: Mapped[str] = mapped_column(String(8))
    outside: Mapped[bool | None] = mapped_column(Boolean)
    """Whether the fix lies outside the worker's grid (None: the grid has no polygon)."""

    __table_args__ = (UniqueConstraint("worker_id", "fix_time", name="uq_positions_worker_fix"),)


class LatestPosition(Base):
    """The newest fix per worker, and whether the worker is inside its grid."""

    __tablename__ = "latest_positions"

    worker_id: Mapped[str] = mapped_column(String(64), ForeignKey("workers.id"), primary_key=True)
    fix_time: Mapped[float] = mapped_column(Float(precision=53))
    received_at: Mapped[float] = mapped_column(Float(precision=53))
    lat: Mapped[float] = mapped_column(Float(precision=53))
    lon: Mapped[float] = mapped_column(Float(precision=53))
    accuracy_m: Mapped[float] = mapped_column(Float)
    battery_pct: Mapped[float | None] = mapped_column(Float)
    in_grid: Mapped[str] = mapped_column(String(8), default="unknown")


class Notice(Base):
    """A notice (通知公告) as sent: targets as given, recipients resolved into
    ``notice_recipients`` at send time."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    """A ULID: notices sort by id in the order they were sent."""
    kind: Mapped[str] = mapped_column(String(24))
    level: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sender_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id"), index=True)
    sender_name: Mapped[str] = mapped_column(String(64))
    sender_org: Mapped[str] = mapped_column(String(128))
    targets: Mapped[dict[str, Any]] = mapped_column(JSON)
    recipient_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """When every recipient's live push was published (null while the fan-out runs)."""


class NoticeRecipient(Base):
    """One recipient of a notice and their state: pushed, read (first read wins)."""

    __tablename__ = "notice_recipients"

    notice_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id"), primary_key=True)
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """When the live push to the user's channel was published (or committed to the outbox)."""
    read_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    read_via: Mapped[str | None] = mapped_column(String(8))
    """ws, rest or sms."""
    sms_id: Mapped[str | None] = mapped_column(String(64))
    """The SMS fallback sent for this unread urgent notice (one per recipient, ever)."""
    reply_code: Mapped[str | None] = mapped_column(String(8))
    """The code the recipient may text back to mark the notice read."""

    __table_args__ = (
        Index("ix_notice_recipients_user_unread", "user_id", "read_at", "notice_id"),
        Index("ix_notice_recipients_notice_read", "notice_id", "read_at"),
    )


class SmsMessage(Base):
    """An outbound SMS: the persistent queue row and its delivery state.

    States: queued → sending (claimed, submission under way) → sent → delivered / failed /
    expired; a temporary error puts it back to queued with ``next_attempt_at``.
    """

    __tablename__ = "sms_messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The caller's idempotency key, or a generated ULID."""
    to: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    segments: Mapped[int] = mapped_column(Integer)
    coding: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    provider: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    final_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    __table_args__ = (Index("ix_sms_messages_due", "state", "next_attempt_at"),)


class SmsPart(Base):
    """A provider's id for one submitted part of a message, and that part's state."""

    __tablename__ = "sms_parts"

    message_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sms_messages.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(72), index=True)
    state: Mapped[str] = mapped_column(String(12), default="sent")
    error: Mapped[str | None] = mapped_column(String(64))


class SmsMatchKey(Base):
    """A normalised key of a part's provider id (``message_id_keys``): receipts that write
    the id differently (hex / decimal, leading zeros) find the part through it."""

    __tablename__ = "sms_match_keys"

    key: Mapped[str] = mapped_column(String(72), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)


class SmsInbound(Base):
    """An inbound (mobile-originated) SMS as stored before it was acknowledged."""

    __tablename__ = "sms_inbound"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    sender: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(72))
    received_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)

    __table_args__ = (
        UniqueConstraint("provider", "provider_id", name="uq_sms_inbound_provider_id"),
    )


class Case(Base):
    """A case (案件) and where it stands in the seven-step loop (hub/cases/lifecycle.py).

    ``org`` is where the case happened (usually a grid); ``tier_org`` is the command centre
    now responsible for it (the grid's community, or higher after escalation) and is always
    ``org`` or one of its ancestors.
    """

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    """A ULID: cases sort by id in the order they were reported."""
    number: Mapped[str] = mapped_column(String(32), unique=True)
    """Human-readable, per district and year: ``d01-2026-000042``."""
    category: Mapped[str] = mapped_column(String(64))
    """A leaf or branch code of the category tree (``dispute.neighbour``)."""
    category_root: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(200))
    org: Mapped[str] = mapped_column(String(128), index=True)
    tier_org: Mapped[str] = mapped_column(String(128), index=True)
    tier: Mapped[str] = mapped_column(String(16))
    """Level of ``tier_org``: community, street or district."""
    channel: Mapped[str] = mapped_column(String(16))
    """How it was reported: grid_phone, sms (a citizen), citymgmt, other_system, console."""
    reporter_kind: Mapped[str] = mapped_column(String(8))
    """user, system or citizen."""
    reporter_id: Mapped[str] = mapped_column(String(64))
    reporter_name: Mapped[str] = mapped_column(String(64), default="")
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(12))
    assignee: Mapped[str | None] = mapped_column(String(64), index=True)
    assignee_name: Mapped[str | None] = mapped_column(String(64))
    external_system: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(128))
    external_updated_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """The newest update of the owning external system applied (older ones are ignored)."""
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Extra fields an external system sent (kept, shown, not interpreted)."""
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    registered_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    clock_started_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """When the current time limit started (registration, or the assignment that set it)."""
    warn_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    """When the yellow (due soon) alert falls due."""
    due_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    due_soon_raised_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    overdue_raised_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    """Closed by its deadline (set when it closes)."""
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every action: a stale ``if_version`` is refused (optimistic locking)."""

    __table_args__ = (
        UniqueConstraint("external_system", "external_id", name="uq_cases_external"),
        Index("ix_cases_warn", "state", "warn_at"),
        Index("ix_cases_due", "state", "due_at"),
        Index(
            "ix_cases_stats",
            "created_at",
            "state",
            "category_root",
            "tier",
            "org",
            "on_time",
        ),
        Index("ix_cases_updated", "updated_at"),
    )


class CaseOrgTally(Base):
    """Cases created in one UTC month, per (state, category root, tier, org, on_time):
    the statistics read whole months from here (hub/cases/tallies.py)."""

    __tablename__ = "case_org_tallies"

    month: Mapped[datetime] = mapped_column(TZDateTime, primary_key=True)
    state: Mapped[str] = mapped_column(String(12), primary_key=True)
    category_root: Mapped[str] = mapped_column(String(32), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    org: Mapped[str] = mapped_column(String(128), primary_key=True)
    on_time: Mapped[int] = mapped_column(Integer, primary_key=True)
    """1 on time, 0 late, -1 not closed (None in cases)."""
    n: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)


class CaseAssigneeTally(Base):
    """Assigned cases created in one UTC month, per (org, assignee, state, on_time)."""

    __tablename__ = "case_assignee_tallies"

    month: Mapped[datetime] = mapped_column(TZDateTime, primary_key=True)
    org: Mapped[str] = mapped_column(String(128), primary_key=True)
    assignee: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(12), primary_key=True)
    on_time: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)


class CaseTallyKey(Base):
    """What each case was last counted as in the tallies (so a change is moved, not
    recounted): its month and grouping keys."""

    __tablename__ = "case_tally_keys"

    case_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    month: Mapped[datetime] = mapped_column(TZDateTime)
    state: Mapped[str] = mapped_column(String(12))
    category_root: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16))
    org: Mapped[str] = mapped_column(String(128))
    on_time: Mapped[int] = mapped_column(Integer)
    assignee: Mapped[str | None] = mapped_column(String(64))
    satisfaction: Mapped[int | None] = mapped_column(Integer)


class CaseTallyMark(Base):
    """How far the tallies have seen case changes (one row)."""

    __tablename__ = "case_tally_marks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seen_until: Mapped[datetime] = mapped_column(TZDateTime)
    """Cases updated after this (less a lag for late commits) are re-tallied."""


class CaseEntry(Base):
    """One row of a case's timeline (全程留痕): who did what, when, with which note."""

    __tablename__ = "case_entries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    case_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(8))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    actor_org: Mapped[str | None] = mapped_column(String(128))
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Action-specific facts: assignee, deadline, tier change, satisfaction, attachments."""
    event_id: Mapped[str] = mapped_column(String(26))
    at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class CaseAttachment(Base):
    """A file attached to a case, stored on disk (hub/cases/attachments.py)."""

    __tablename__ = "case_attachments"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    case_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class CaseCounter(Base):
    """The last case number handed out per district and year."""

    __tablename__ = "case_counters"

    district: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Camera(Base):
    """A public-security camera (雪亮工程) the hub can pull: where it is, whose it is, how to
    reach it, and whether the media plane last found it online (hub/cameras/registry.py)."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """URL-safe: it appears in paths (``/api/v1/cameras/<id>``) and channels (``camera:<id>``)."""
    name: Mapped[str] = mapped_column(String(100))
    org: Mapped[str] = mapped_column(String(128), ForeignKey("org_nodes.path"), index=True)
    lat: Mapped[float | None] = mapped_column(Float(precision=53))
    lon: Mapped[float | None] = mapped_column(Float(precision=53))
    source_url: Mapped[str] = mapped_column(String(1024))
    substream_url: Mapped[str | None] = mapped_column(String(1024))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    ptz: Mapped[bool] = mapped_column(Boolean, default=False)
    onvif_username: Mapped[str | None] = mapped_column(String(64))
    onvif_password: Mapped[str | None] = mapped_column(String(128))
    """Stored as given (the database is trusted); never returned by the API."""
    onvif_url: Mapped[str | None] = mapped_column(String(1024))
    """The ONVIF device service; None: the stream's host on port 80 (adapters/onvif)."""
    status: Mapped[str] = mapped_column(String(8), default="unknown")
    """unknown (never pulled), online or offline."""
    status_changed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)


class Recording(Base):
    """A camera recording: an MP4 remuxed from the camera's stream (hub/cameras/recordings.py),
    stored under the recordings directory at ``path``."""

    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    """No foreign key: a recording outlives its camera until retention removes it."""
    org: Mapped[str] = mapped_column(String(128))
    """The camera's org when it was recorded: who may see the recording."""
    started_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, index=True)
    requested_s: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    path: Mapped[str] = mapped_column(String(200))
    """Relative to the recordings directory."""
    state: Mapped[str] = mapped_column(String(10), default="recording")
    """recording, done or failed."""
    trigger: Mapped[str] = mapped_column(String(8))
    """manual or alarm."""
    requested_by: Mapped[str | None] = mapped_column(String(64))
    alarm_id: Mapped[str | None] = mapped_column(String(26))
    case_id: Mapped[str | None] = mapped_column(String(26))
    error: Mapped[str | None] = mapped_column(String(500))
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class VideoDevice(Base):
    """A GB/T 28181 device, NVR or lower platform registered to the hub (adapters/gb28181):
    where it is reached, whether it is online, what its catalog last said."""

    __tablename__ = "video_devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Its SIP id (20 digits under GB/T 28181)."""
    name: Mapped[str | None] = mapped_column(String(100))
    manufacturer: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(64))
    firmware: Mapped[str | None] = mapped_column(String(64))
    org: Mapped[str] = mapped_column(String(128))
    transport: Mapped[str] = mapped_column(String(8))
    """udp or tcp: how it reached the hub's SIP server."""
    host: Mapped[str] = mapped_column(String(64))
    port: Mapped[int] = mapped_column(Integer)
    charset: Mapped[str] = mapped_column(String(16), default="GB2312")
    status: Mapped[str] = mapped_column(String(8), default="offline")
    """online or offline."""
    registered_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    last_keepalive_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    channel_count: Mapped[int] = mapped_column(Integer, default=0)
    catalog_synced_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class VideoChannel(Base):
    """A channel of a video device as its catalog describes it; each is a camera
    (``gb28181://<device>/<channel>``) in ``cameras`` under ``camera_id``."""

    __tablename__ = "video_channels"

    device_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("video_devices.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    civil_code: Mapped[str | None] = mapped_column(String(32))
    parent_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(8), default="ON")
    """The catalog's Status (ON / OFF)."""
    ptz_type: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(8))
    """The codec its live media arrived in (h264 / h265), once seen."""
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)
