"""The camera registry: the one way into the ``cameras`` table for the hub and the media
plane. Status changes and alarms are written with their events in one transaction
(outbox); hooks let the media plane react to edits and alarms without the registry knowing
what it does with them."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import JsonValue
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.tokens import Identity
from hub.cameras.models import CAMERA_ID_PATTERN, AlarmReport
from hub.cases.categories import Priority
from hub.cases.lifecycle import Actor
from hub.cases.models import CaseReport, Location
from hub.cases.service import CaseService
from hub.config import ApiKey, CameraSettings
from hub.db.models import Camera, utcnow
from hub.db.outbox import OutboxRelay, add_event
from hub.errors import HubError
from hub.events import CameraAlarm, CameraOffline, CameraOnline
from hub.publisher import channels_for
from hub.tasks import TaskRegistry
from protocols.envelope import org_contains

log = structlog.get_logger(__name__)

SOURCE = "hub/cameras"
STATUSES = ("unknown", "online", "offline")
ALARM_PRIORITY: dict[str, Priority] = {"info": "normal", "warning": "normal", "critical": "urgent"}
"""Priority of the case an alarm reports, by alarm level."""
_ID = re.compile(CAMERA_ID_PATTERN)


def camera_channel(camera_id: str) -> str:
    """The per-camera channel."""
    return f"camera:{camera_id}"


def is_camera_id(value: str) -> bool:
    """Whether ``value`` has the shape of a camera id."""
    return _ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class CameraRecord:
    """A camera as the hub and the media plane see it."""

    id: str
    name: str
    org: str
    lat: float | None
    lon: float | None
    source_url: str
    substream_url: str | None
    tags: tuple[str, ...]
    ptz: bool
    onvif_username: str | None
    onvif_password: str | None  # never leaves the hub through the API
    status: str  # "unknown" | "online" | "offline"

    @classmethod
    def of(cls, row: Camera) -> CameraRecord:
        """The record of a row."""
        return cls(
            id=row.id, name=row.name, org=row.org, lat=row.lat, lon=row.lon,
            source_url=row.source_url, substream_url=row.substream_url,
            tags=tuple(row.tags or ()), ptz=row.ptz, onvif_username=row.onvif_username,
            onvif_password=row.onvif_password, status=row.status,
        )  # fmt: skip

    def __repr__(self) -> str:  # keep the password out of logs and tracebacks
        return f"CameraRecord(id={self.id!r}, org={self.org!r}, status={self.status!r})"


@dataclass(frozen=True, slots=True)
class AlarmOutcome:
    """What an accepted alarm led to."""

    event_id: str
    channels: list[str]
    case_id: str | None


AlarmHook = Callable[[CameraRecord, CameraAlarm], Coroutine[Any, Any, None]]
ChangeHook = Callable[[str, CameraRecord | None], Coroutine[Any, Any, None]]


class CameraRegistry:
    """Cameras: lookup, visibility, status and alarms."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        relay: OutboxRelay,
        tasks: TaskRegistry,
        settings: CameraSettings,
        cases: CaseService | None = None,
    ) -> None:
        self.sessions = sessions
        self.relay = relay
        self.tasks = tasks
        self.settings = settings
        self.cases = cases
        self.alarm_hooks: list[AlarmHook] = []
        """Called after an alarm is committed (each in a task of its own), e.g. to start
        an alarm recording. A failing hook is logged and affects nothing else."""
        self.change_hooks: list[ChangeHook] = []
        """Called after a camera was created, updated (record) or deleted (None), e.g. to
        restart or stop a pull whose source changed."""
        if cases is not None:
            unknown = sorted(
                c for c in settings.alarm_case_rules.values() if c not in cases.categories.root_of
            )
            if unknown:
                raise HubError(
                    "config.invalid",
                    f"cameras.alarm_case_rules name unknown case categories: {unknown}",
                    500,
                )

    async def get(self, camera_id: str) -> CameraRecord | None:
        """The camera, or None."""
        if not is_camera_id(camera_id):
            return None
        async with self.sessions() as session:
            row = await session.get(Camera, camera_id)
        return None if row is None else CameraRecord.of(row)

    def visible_to(self, identity: Identity, record: CameraRecord) -> bool:
        """Whether the user may see (and watch) the camera: it lies in their org subtree."""
        return org_contains(identity.org, record.org)

    async def may_read_channel(self, identity: Identity, camera_id: str) -> bool:
        """The ``camera:<id>`` channel guard: readable by whoever may see the camera."""
        record = await self.get(camera_id)
        return record is not None and self.visible_to(identity, record)

    async def set_status(self, camera_id: str, online: bool, reason: str = "") -> None:
        """Store the status; on a change publish camera.online / camera.offline (outbox, one
        transaction) on the camera's org channels and camera:<id>. Idempotent: same status
        → nothing. An unknown camera (deleted meanwhile) is ignored."""
        status = "online" if online else "offline"
        now = utcnow()
        async with self.sessions() as session, session.begin():
            row = await _locked(session, camera_id)
            if row is None or row.status == status:
                return
            await session.execute(
                update(Camera)
                .where(Camera.id == camera_id)
                .values(status=status, status_changed_at=now, updated_at=Camera.updated_at)
            )
            event_type = CameraOnline if online else CameraOffline
            event = event_type(
                camera_id=row.id, name=row.name, org=row.org, reason=reason[:500],
                at=now.isoformat(),
            )  # fmt: skip
            envelope = event.envelope(source=SOURCE, org=row.org, subject=row.id)
            add_event(session, envelope, [camera_channel(row.id)])
        self.relay.notify()
        log.info("camera status changed", camera_id=camera_id, status=status, reason=reason)

    async def raise_alarm(
        self, record: CameraRecord, key: ApiKey, alarm: AlarmReport
    ) -> AlarmOutcome:
        """Commit ``camera.alarm`` (and, if a rule maps its kind to a category, the case it
        reports) in one transaction, then run the alarm hooks. HubError
        ``camera.not_found`` if the camera was deleted meanwhile."""
        now = utcnow()
        at = (alarm.occurred_at or now).astimezone(UTC)
        event = CameraAlarm(
            camera_id=record.id, kind=alarm.kind, level=alarm.level,
            description=alarm.description, at=at.isoformat(), external_ref=alarm.external_ref,
        )  # fmt: skip
        envelope = event.envelope(source=f"external/{key.id}", org=record.org, subject=record.id)
        extra = [camera_channel(record.id)]
        category = self.settings.alarm_case_rules.get(alarm.kind)
        case_id: str | None = None
        async with self.sessions() as session, session.begin():
            if await session.get(Camera, record.id) is None:
                raise HubError("camera.not_found", f"no camera {record.id}", 404)
            add_event(session, envelope, extra)
            if category is not None and self.cases is not None:
                actor = Actor(kind="system", id=key.id, org=key.org, name=key.name)
                spec = _alarm_case(record, alarm, category, envelope.id, at)
                case_id = (await self.cases.new_case(session, actor, spec, now)).id
        self.relay.notify()
        for hook in self.alarm_hooks:
            self.tasks.spawn(hook(record, event), name=f"camera alarm hook {record.id}")
        log.info("camera alarm", camera_id=record.id, kind=alarm.kind, case_id=case_id)
        return AlarmOutcome(envelope.id, channels_for(envelope, extra), case_id)

    async def changed(self, camera_id: str, record: CameraRecord | None) -> None:
        """After a committed edit: publish it from the outbox now and run the change hooks."""
        self.relay.notify()
        for hook in self.change_hooks:
            self.tasks.spawn(hook(camera_id, record), name=f"camera change hook {camera_id}")


async def _locked(session: AsyncSession, camera_id: str) -> Camera | None:
    """The camera row, locked for this transaction: a row lock on PostgreSQL; on SQLite a
    no-op write first takes the database's write lock (as hub/cases/service.py does), so
    two status reports run one after the other on what the first committed."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(Camera).where(Camera.id == camera_id).values(updated_at=Camera.updated_at)
        )
    return await session.get(Camera, camera_id, with_for_update=True)


def _alarm_case(
    record: CameraRecord, alarm: AlarmReport, category: str, alarm_id: str, at: datetime
) -> CaseReport:
    """The case an alarm reports under a rule: at the camera's org and place."""
    location = None
    if record.lat is not None and record.lon is not None:
        location = Location(lat=record.lat, lon=record.lon, address=record.name[:200])
    attributes: dict[str, JsonValue] = {
        "camera_id": record.id, "alarm_id": alarm_id, "alarm_kind": alarm.kind,
        "alarm_level": alarm.level, "occurred_at": at.isoformat(),
    }  # fmt: skip
    if alarm.external_ref:
        attributes["external_ref"] = alarm.external_ref
    return CaseReport(
        title=f"视频告警 {alarm.kind}: {record.name}"[:200],
        description=alarm.description or "",
        category=category,
        priority=ALARM_PRIORITY[alarm.level],
        location=location,
        org=record.org,
        channel="other_system",
        attributes=attributes,
    )
