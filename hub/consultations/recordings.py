"""The files the media plane recorded for consultation rooms: their rows (written when a
room ends, with a case timeline row when it is about a case) and retention by age."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.tokens import Identity
from hub.cases.service import CaseService
from hub.config import ConsultationSettings
from hub.consultations import rooms
from hub.consultations.contract import RecordedTrack
from hub.consultations.models import Consultation, ConsultationRecording
from hub.db.models import utcnow
from hub.tasks import drain_forever
from protocols.envelope import new_event_id

log = structlog.get_logger(__name__)

RETENTION_INTERVAL = 3600.0
"""Seconds between two sweeps of the recording retention."""


class RoomRecordings:
    """Stores what the media plane recorded and sweeps it away after ``retention_days``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: ConsultationSettings,
        cases: CaseService,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self._cases = cases

    async def store(
        self, room: Consultation, tracks: list[RecordedTrack], identity: Identity
    ) -> int:
        if not tracks:
            return 0
        root = self.settings.recordings_dir.resolve()
        async with self.sessions() as session, session.begin():
            rows = []
            for track in tracks:
                path = track.path.resolve()
                stored = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
                row = ConsultationRecording(
                    id=new_event_id(), consultation_id=room.id, source_id=track.source_id,
                    kind=track.kind, path=stored, bytes=track.bytes,
                    started_at=track.started_at, ended_at=track.ended_at,
                )  # fmt: skip
                rows.append(row)
            session.add_all(rows)
            if room.case_id is not None:
                await rooms.case_entry(
                        self._cases,
                    session, room, "consult_record", identity,
                    note=f"会商录像 {len(rows)} 个文件",
                    details={"consultation_id": room.id, "recordings": [
                        {"id": r.id, "source_id": r.source_id, "kind": r.kind, "bytes": r.bytes}
                        for r in rows
                    ]},
                )  # fmt: skip
        return len(tracks)

    def path(self, row: ConsultationRecording) -> Path:
        """Where a recording's file is."""
        path = Path(row.path)
        return path if path.is_absolute() else self.settings.recordings_dir / path

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete the recordings (rows and files) older than ``retention_days``."""
        cutoff = (now or utcnow()) - timedelta(days=self.settings.retention_days)
        async with self.sessions() as session, session.begin():
            rows = list(
                await session.scalars(
                    select(ConsultationRecording).where(ConsultationRecording.ended_at < cutoff)
                )
            )
            if not rows:
                return 0
            await session.execute(
                delete(ConsultationRecording).where(
                    ConsultationRecording.id.in_([r.id for r in rows])
                )
            )
        paths = [self.path(r) for r in rows]
        await asyncio.to_thread(_unlink_all, paths)
        log.info("consultation recordings expired", recordings=len(rows))
        return len(rows)

    async def run(self) -> None:
        """Sweep every ``RETENTION_INTERVAL`` seconds, logging a failure once."""
        await drain_forever(
            "consultation recording retention", self.sweep, asyncio.Event(), RETENTION_INTERVAL
        )


def _unlink_all(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
