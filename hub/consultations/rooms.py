"""Reading and locking rooms and participants inside the service's transactions, the rules
of who sees a room and who may join it, and staging the room's events (outbox)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth.tokens import Identity
from hub.cases.lifecycle import Actor
from hub.cases.service import CaseService
from hub.consultations.models import (
    DECLINED,
    MEMBERS,
    OPEN,
    REMOVED,
    SEATED,
    USER,
    Consultation,
    ConsultationParticipant,
)
from hub.db.models import Case, User
from hub.db.outbox import add_personal_event
from hub.errors import HubError
from hub.events import ROOM_EVENTS

log = structlog.get_logger(__name__)

SOURCE = "hub/consultations"
ID_LENGTH = 26


class ConsultationError(HubError):
    """A consultation request refused: status, documented code, message, optional details."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(code, message, status)
        self.details = details


def room_channel(consultation_id: str) -> str:
    """The per-room channel."""
    return f"room:{consultation_id}"


def camera_participant(camera_id: str) -> str:
    """The participant id of a camera."""
    return f"camera:{camera_id}"


PARTICIPANT_ID_LENGTH = 80
TERMINAL_PREFIX = "terminal:"
ROOM_CODE_DIGITS = 8


def terminal_participant(uri: str) -> str:
    """The participant id of a video network terminal: ``terminal:<user@host>`` (80 chars at
    most; a longer address is shortened with a hash)."""
    address = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
    address = address.split(";", 1)[0]
    pid = TERMINAL_PREFIX + address
    if len(pid) <= PARTICIPANT_ID_LENGTH:
        return pid
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    return f"{pid[: PARTICIPANT_ID_LENGTH - 17]}~{digest}"


def terminal_uri(participant_id: str) -> str:
    """The SIP URI a terminal participant id stands for (as far as the id keeps it)."""
    return "sip:" + participant_id.removeprefix(TERMINAL_PREFIX)


def room_code(consultation_id: str) -> str:
    """The digits a video network terminal dials to reach the room (会商室号码)."""
    number = int.from_bytes(hashlib.sha256(consultation_id.encode()).digest()[:8], "big")
    return f"{number % 10**ROOM_CODE_DIGITS:0{ROOM_CODE_DIGITS}d}"


def not_found(consultation_id: str) -> ConsultationError:
    """404: the room does not exist for the caller."""
    return ConsultationError(
        404, "consultation.not_found", f"no consultation {consultation_id[:32]} for you"
    )


def participant_dict(row: ConsultationParticipant) -> dict[str, Any]:
    """A participant as rpc replies show it (JSON-ready)."""
    return {
        "participant_id": row.participant_id,
        "kind": row.kind,
        "user_id": row.user_id,
        "camera_id": row.camera_id,
        "state": row.state,
        "muted_audio": row.muted_audio,
        "muted_video": row.muted_video,
    }


async def get_room(
    session: AsyncSession, consultation_id: str, *, lock: bool = False
) -> Consultation | None:
    """The room, locked for this transaction with ``lock`` (a row lock on PostgreSQL;
    on SQLite a no-op write takes the database's write lock first, as cases do)."""
    if len(consultation_id) != ID_LENGTH:
        return None
    if lock and session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(Consultation)
            .where(Consultation.id == consultation_id)
            .values(status=Consultation.status)
        )
    return await session.get(
        Consultation, consultation_id, with_for_update=lock, populate_existing=lock
    )


async def open_room(
    session: AsyncSession,
    identity: Identity,
    consultation_id: str,
    host_only: bool = False,
    *,
    lock: bool = False,
) -> Consultation:
    """The open room the caller may see (404 otherwise), as host with ``host_only``."""
    room = await get_room(session, consultation_id, lock=lock)
    if room is None or not await may_see(session, room, identity):
        raise not_found(consultation_id)
    if room.status != OPEN:
        raise ConsultationError(409, "consultation.ended", "the consultation has ended")
    if host_only and room.host_id != identity.user:
        raise ConsultationError(403, "consultation.not_host", "only the host may do this")
    return room


async def may_see(session: AsyncSession, room: Consultation, identity: Identity) -> bool:
    """Anyone who was ever invited sees it (a removed or declining user learns why
    they may not join rather than that the room does not exist)."""
    if room.host_id == identity.user:
        return True
    row = await session.get(ConsultationParticipant, (room.id, identity.user))
    return row is not None and row.kind == USER


async def is_member(session: AsyncSession, room: Consultation, identity: Identity) -> bool:
    """The host, or a user invited to, accepted, joined or (for a rejoin) left the room."""
    if room.host_id == identity.user:
        return True
    row = await session.get(ConsultationParticipant, (room.id, identity.user))
    return row is not None and row.kind == USER and row.state in MEMBERS


async def own_row(
    session: AsyncSession, room: Consultation, identity: Identity
) -> ConsultationParticipant:
    """The caller's participant row (404 without one)."""
    row = await session.get(ConsultationParticipant, (room.id, identity.user))
    if row is None:
        raise not_found(room.id)
    return row


async def member_row(
    session: AsyncSession, room: Consultation, identity: Identity
) -> ConsultationParticipant:
    """The caller's row if they may join: the host, or invited, accepted, joined or
    left; declined or removed users are refused until invited again."""
    row = await own_row(session, room, identity)
    if room.host_id != identity.user and row.state not in MEMBERS:
        raise ConsultationError(
            403,
            "consultation.not_invited",
            f"you are {row.state}: only invited participants may join",
        )
    return row


async def participant(
    session: AsyncSession, room: Consultation, participant_id: str
) -> ConsultationParticipant:
    """A participant the host may act on (404 for a removed or declining one)."""
    row = await session.get(ConsultationParticipant, (room.id, participant_id))
    if row is None or row.state in (REMOVED, DECLINED):
        raise ConsultationError(
            404,
            "consultation.participant_not_found",
            f"{participant_id[:80]} is not a participant of the room",
        )
    return row


async def participants(
    session: AsyncSession, consultation_id: str
) -> list[ConsultationParticipant]:
    """Every participant row of the room, in the order they were invited."""
    return list(
        await session.scalars(
            select(ConsultationParticipant)
            .where(ConsultationParticipant.consultation_id == consultation_id)
            .order_by(ConsultationParticipant.invited_at, ConsultationParticipant.participant_id)
        )
    )


async def seated(session: AsyncSession, consultation_id: str) -> int:
    """Participants holding a seat (towards ``max_participants``)."""
    count = await session.scalar(
        select(func.count())
        .select_from(ConsultationParticipant)
        .where(
            ConsultationParticipant.consultation_id == consultation_id,
            ConsultationParticipant.state.in_(SEATED),
        )
    )
    return int(count or 0)


async def active_user(session: AsyncSession, user_id: str) -> User:
    """The caller's directory entry (403 unless active)."""
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise ConsultationError(403, "auth.forbidden", "the caller is not an active user")
    return user


def actor(identity: Identity, user: User | None = None) -> Actor:
    """The case timeline's actor for a signed-in user."""
    return Actor(
        kind="user", id=identity.user, org=identity.org, roles=identity.roles,
        name=user.name if user is not None else "",
    )  # fmt: skip


async def case_entry(
    cases: CaseService,
    session: AsyncSession,
    room: Consultation,
    action: str,
    identity: Identity,
    *,
    note: str,
    details: dict[str, Any],
    now: datetime | None = None,
) -> None:
    """A row of the room's case timeline (the case is locked like its own actions)."""
    assert room.case_id is not None
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(Case).where(Case.id == room.case_id).values(version=Case.version)
        )
    case = await session.get(Case, room.case_id, with_for_update=True)
    if case is None:
        log.warning("consultation case is gone", consultation_id=room.id, case=room.case_id)
        return
    user = await session.get(User, identity.user)
    await cases.record(
        session, case, action, actor(identity, user), note=note,
        from_state=case.state, details=details, now=now,
    )  # fmt: skip


def stage(session: AsyncSession, room: Consultation, event: str, /, **data: Any) -> None:
    """Add a room event to the transaction (outbox), for ``room:<id>`` only."""
    data_model = ROOM_EVENTS[f"consultation.{event}"](consultation_id=room.id, **data)
    envelope = data_model.envelope(source=SOURCE, org=room.org, subject=room.id)
    add_personal_event(session, envelope, [room_channel(room.id)])
