"""Camera recordings: the ``recordings`` rows, the recordings the media plane runs for them
(on request or on an alarm), attaching a finished one to a case, and retention by age and
total size. The media work (remux to MP4, no re-encode) is streams/recorder.py's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Literal

import structlog
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.tokens import Identity
from hub.cameras.registry import CameraRecord, camera_channel
from hub.cases.attachments import AttachmentStore
from hub.cases.lifecycle import Actor
from hub.cases.service import CaseError, can_view
from hub.config import CaseSettings, MediaSettings
from hub.db.models import Case, CaseAttachment, Recording, utcnow
from hub.db.outbox import OutboxRelay, add_event
from hub.errors import HubError
from hub.events import CameraAlarm, CameraRecordingDone
from hub.tasks import TaskRegistry, drain_forever
from protocols.envelope import new_event_id, org_contains
from streams.manager import MediaError, StreamManager

log = structlog.get_logger(__name__)

SOURCE = "hub/cameras/recordings"
RECORDING, DONE, FAILED = "recording", "done", "failed"
Trigger = Literal["manual", "alarm"]
CONTENT_TYPE = "video/mp4"
CHUNK = 256 * 1024
ID_LENGTH = 26
STALE_AFTER = timedelta(minutes=5)
"""A row still ``recording`` this long after its longest possible end was orphaned by a hub
that stopped mid-recording: retention marks it failed."""
MAX_ERROR = 500


class RecordingService:
    """Starts recordings, keeps their rows, attaches them to cases and sweeps them away."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        relay: OutboxRelay,
        tasks: TaskRegistry,
        streams: StreamManager,
        settings: MediaSettings,
        cases: CaseSettings,
    ) -> None:
        self.sessions = sessions
        self.relay = relay
        self.tasks = tasks
        self.streams = streams
        self.settings = settings
        self.attachments = AttachmentStore(cases.attachments_dir, cases.max_attachment_bytes)
        self.max_attachments = cases.max_attachments
        self._active: set[str] = set()

    @property
    def active(self) -> int:
        """Recordings running now."""
        return len(self._active)

    def file(self, row: Recording) -> Path:
        """Where a recording's MP4 is (or will be)."""
        return self.settings.recordings_dir / row.path

    # -- recording ------------------------------------------------------------------------

    async def start(
        self,
        record: CameraRecord,
        seconds: float,
        trigger: Trigger,
        *,
        requested_by: str | None = None,
        alarm_id: str | None = None,
    ) -> Recording:
        """Store the row (state ``recording``) and start recording in the background;
        ``camera.recording_done`` on ``camera:<id>`` tells when it is over."""
        if not 0 < seconds <= self.settings.max_record_seconds:
            raise HubError(
                "recording.invalid",
                f"seconds must be > 0 and <= {self.settings.max_record_seconds}",
                422,
            )
        if len(self._active) >= self.settings.max_active_recordings:
            raise HubError("recording.busy", "as many recordings run as allowed; retry later", 503)
        rid = new_event_id()
        self._active.add(rid)  # the slot is taken before the first await
        row = Recording(
            id=rid, camera_id=record.id, org=record.org, started_at=utcnow(),
            requested_s=seconds, duration_s=None, size=0, path=f"{record.id}/{rid}.mp4",
            state=RECORDING, trigger=trigger, requested_by=requested_by, alarm_id=alarm_id,
        )  # fmt: skip
        try:
            async with self.sessions() as session, session.begin():
                session.add(row)
        except BaseException:
            self._active.discard(rid)
            raise
        task = self.tasks.spawn(self._run(row, record.source_url), name=f"recording {rid}")
        task.add_done_callback(lambda _: self._active.discard(rid))
        log.info("recording started", camera_id=record.id, recording_id=rid, seconds=seconds,
                 trigger=trigger)  # fmt: skip
        return row

    async def _run(self, row: Recording, url: str) -> None:
        try:
            result = await self.streams.record(row.camera_id, url, row.requested_s, self.file(row))
        except MediaError as err:
            await self._finish(row, FAILED, error=err.message)
            log.warning("recording failed", recording_id=row.id, error=err.message)
            return
        except Exception as err:
            await self._finish(row, FAILED, error=f"{type(err).__name__}: {err}")
            raise
        await self._finish(row, DONE, duration=result.duration, size=result.size)
        log.info("recording done", camera_id=row.camera_id, recording_id=row.id,
                 duration=round(result.duration, 3), size=result.size,
                 complete=result.complete)  # fmt: skip

    async def _finish(
        self, row: Recording, state: str, *, duration: float | None = None, size: int = 0,
        error: str | None = None,
    ) -> None:  # fmt: skip
        """Store the outcome and publish ``camera.recording_done`` in one transaction."""
        error = error[:MAX_ERROR] if error else None
        event = CameraRecordingDone(
            recording_id=row.id, camera_id=row.camera_id, state=state,
            trigger=row.trigger,
            duration_s=duration, size=size, error=error,
        )  # fmt: skip
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Recording)
                .where(Recording.id == row.id)
                .values(
                    state=state, duration_s=duration, size=size, error=error, finished_at=utcnow()
                )
            )
            envelope = event.envelope(source=SOURCE, org=row.org, subject=row.camera_id)
            add_event(session, envelope, [camera_channel(row.camera_id)])
        self.relay.notify()

    async def on_alarm(self, record: CameraRecord, alarm: CameraAlarm) -> None:
        """The camera registry's alarm hook: record ``alarm_record_seconds`` of the camera."""
        seconds = min(self.settings.alarm_record_seconds, self.settings.max_record_seconds)
        if seconds <= 0:
            return
        try:
            await self.start(record, seconds, "alarm")
        except HubError as err:
            log.warning("alarm recording not started", camera_id=record.id, kind=alarm.kind,
                        error=err.message)  # fmt: skip

    # -- reading --------------------------------------------------------------------------

    async def get(self, recording_id: str) -> Recording | None:
        """The recording, or None."""
        if len(recording_id) != ID_LENGTH or not recording_id.isalnum():
            return None
        async with self.sessions() as session:
            return await session.get(Recording, recording_id)

    async def of_camera(self, camera_id: str, limit: int) -> Sequence[Recording]:
        """A camera's recordings, newest first."""
        query = (
            select(Recording)
            .where(Recording.camera_id == camera_id)
            .order_by(Recording.started_at.desc(), Recording.id.desc())
            .limit(limit)
        )
        async with self.sessions() as session:
            return (await session.scalars(query)).all()

    @staticmethod
    def visible_to(identity: Identity, row: Recording) -> bool:
        """Whoever may see the camera (its org when recorded) may see the recording."""
        return org_contains(identity.org, row.org)

    # -- cases ----------------------------------------------------------------------------

    async def attach(self, row: Recording, case_id: str, actor: Actor) -> CaseAttachment:
        """Copy a finished recording into the case's attachments (``video/mp4``)."""
        if row.state != DONE:
            raise HubError("recording.not_ready", f"the recording is {row.state}", 409)
        async with self.sessions() as session:
            case = await session.get(Case, case_id) if len(case_id) == ID_LENGTH else None
            if case is None or not can_view(actor, case):
                raise CaseError(404, "case.not_found", f"no case {case_id[:64]} for you")
            count = await session.scalar(
                select(func.count()).where(CaseAttachment.case_id == case_id)
            )
        if (count or 0) >= self.max_attachments:
            raise CaseError(409, "case.too_many_attachments", "the case has all it may hold")
        try:
            handle = await asyncio.to_thread(self.file(row).open, "rb")
        except FileNotFoundError as err:
            raise HubError("recording.not_found", "the recording's file is gone", 404) from err
        attachment_id = new_event_id()
        try:
            stored = await self.attachments.save(
                case_id, attachment_id, CONTENT_TYPE, _chunks(handle)
            )
        finally:
            await asyncio.to_thread(handle.close)
        attachment = CaseAttachment(
            id=attachment_id, case_id=case_id,
            filename=f"{row.camera_id}-{row.started_at:%Y%m%dT%H%M%SZ}.mp4"[:200],
            content_type=CONTENT_TYPE, size=stored.size, sha256=stored.sha256,
            uploaded_by=actor.id, uploaded_at=utcnow(),
        )  # fmt: skip
        try:
            async with self.sessions() as session, session.begin():
                session.add(attachment)
                await session.execute(
                    update(Recording).where(Recording.id == row.id).values(case_id=case_id)
                )
        except BaseException:
            await self.attachments.discard(case_id, attachment_id)
            raise
        row.case_id = case_id
        log.info("recording attached to a case", recording_id=row.id, case_id=case_id)
        return attachment

    # -- retention ------------------------------------------------------------------------

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete finished recordings older than ``retention_days`` and then, while the
        rest exceed ``retention_max_bytes``, the oldest (file first, then row). Rows a
        stopped hub left ``recording`` are marked failed. Returns how many were deleted."""
        now = now or utcnow()
        cutoff = now - timedelta(days=self.settings.retention_days)
        stale = now - timedelta(seconds=self.settings.max_record_seconds) - STALE_AFTER
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Recording)
                .where(Recording.state == RECORDING, Recording.started_at < stale)
                .values(state=FAILED, error="the hub stopped during the recording")
            )
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Recording.id, Recording.path, Recording.size, Recording.started_at)
                    .where(Recording.state != RECORDING)
                    .order_by(Recording.started_at, Recording.id)
                )
            ).all()
        victims: list[tuple[str, str]] = []
        total = sum(r.size for r in rows)
        for r in rows:
            if r.started_at >= cutoff and total <= self.settings.retention_max_bytes:
                break
            victims.append((r.id, r.path))
            total -= r.size
        if not victims:
            return 0
        await asyncio.to_thread(_unlink_all, self.settings.recordings_dir, [p for _, p in victims])
        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(Recording).where(Recording.id.in_([i for i, _ in victims]))
            )
        log.info("recordings deleted by retention", count=len(victims), total_bytes=total)
        return len(victims)

    async def run_retention(self) -> None:
        """Sweep every ``retention_interval`` seconds, logging a failure once."""
        await drain_forever(
            "recording retention", self.sweep, asyncio.Event(), self.settings.retention_interval
        )


async def _chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(handle.read, CHUNK):
        yield chunk


def _unlink_all(root: Path, paths: list[str]) -> None:
    for path in paths:
        (root / path).unlink(missing_ok=True)
