"""Invitations to consultation rooms: who may be invited, org nodes expanded to their
active users, seats counted against the room's limit, the invitees' ``consultation.invited``
on ``user:<id>``, and SMS invitations for invitees with no live connection."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.auth.channels import user_channel
from hub.auth.tokens import Identity
from hub.bus import Bus, BusUnavailable
from hub.config import ConsultationSettings
from hub.consultations import rooms
from hub.consultations.models import INVITED, SEATED, USER, Consultation, ConsultationParticipant
from hub.consultations.rooms import SOURCE, ConsultationError
from hub.db.models import OrgNode, User
from hub.db.outbox import add_personal_event
from hub.db.paths import in_subtree
from hub.errors import HubError
from hub.events import ConsultationInvited
from hub.sms.service import SmsService
from protocols.envelope import org_contains

log = structlog.get_logger(__name__)

SMS_TEXT = "【远程会商】{host}邀请您参加“{title}”，请登录综治平台加入会商。"
Presence = Callable[[str], Awaitable[bool]]
"""Whether a user has a live connection (any hub process)."""


def bus_presence(bus: Bus) -> Presence:
    """Presence from the bus: a user is online while a client of theirs is on
    ``user:<id>`` (every connection is, server-side). An unreachable bus counts as offline."""

    async def online(user_id: str) -> bool:
        try:
            return bool(await bus.presence(user_channel(user_id)))
        except BusUnavailable:
            return False

    return online


def _sms_key(consultation_id: str, user_id: str) -> str:
    return f"consult.{consultation_id}.{hashlib.sha256(user_id.encode()).hexdigest()[:16]}"


class Invitations:
    """Seats invitees in rooms and queues their SMS invitations."""

    def __init__(
        self,
        settings: ConsultationSettings,
        sms: SmsService | None = None,
        presence: Presence | None = None,
    ) -> None:
        self.settings = settings
        self._sms = sms
        self._presence = presence

    async def invite(
        self,
        session: AsyncSession,
        room: Consultation,
        identity: Identity,
        host: User,
        users: Sequence[str],
        org_nodes: Sequence[str],
        now: datetime,
    ) -> list[User]:
        """Check the targets, resolve them to active users and seat the new ones."""
        await self.check_targets(session, identity, users, org_nodes)
        existing = {
            row.participant_id: row
            for row in await session.scalars(
                select(ConsultationParticipant).where(
                    ConsultationParticipant.consultation_id == room.id
                )
            )
        }
        seated = sum(1 for row in existing.values() if row.state in SEATED)
        room_cap = self.settings.max_participants + len(existing) + 1
        wanted: dict[str, User] = {}
        if users:
            rows = await session.scalars(select(User).where(User.id.in_(users), User.active))
            wanted.update((u.id, u) for u in rows)
        for node in org_nodes:
            rows = await session.scalars(
                select(User)
                .where(User.active, in_subtree(User.org, node))
                .order_by(User.id)
                .limit(room_cap)
            )
            wanted.update((u.id, u) for u in rows)
        wanted.pop(room.host_id, None)
        new = [
            u
            for uid, u in sorted(wanted.items())
            if uid not in existing or existing[uid].state not in SEATED
        ]
        if seated + len(new) > self.settings.max_participants:
            raise ConsultationError(
                409,
                "consultation.room_full",
                f"a room holds {self.settings.max_participants} participants (cameras"
                f" included); it has {seated}, the invitation adds {len(new)}",
            )
        for user in new:
            row = existing.get(user.id)
            if row is None:
                row = ConsultationParticipant(
                    consultation_id=room.id, participant_id=user.id, kind=USER,
                    user_id=user.id, invited_by=identity.user, state=INVITED,
                    invited_at=now, muted_audio=False, muted_video=False,
                )  # fmt: skip
                session.add(row)
            else:  # declined or removed before: invited again
                row.state, row.invited_by, row.invited_at = INVITED, identity.user, now
                row.answered_at = row.joined_at = row.left_at = None
                row.leave_reason = None
            rooms.stage(session, room, "participant_invited",
                        participant_id=user.id, invited_by=identity.user)  # fmt: skip
        if new:
            data = ConsultationInvited(
                consultation_id=room.id, title=room.title, host=room.host_id,
                host_name=host.name if host.id == room.host_id else "",
                case_id=room.case_id, invited_by=identity.user,
            )  # fmt: skip
            envelope = data.envelope(source=SOURCE, org=room.org, subject=room.id)
            add_personal_event(session, envelope, [user_channel(u.id) for u in new])
        return new

    async def check_targets(
        self, session: AsyncSession, identity: Identity, users: Sequence[str], orgs: Sequence[str]
    ) -> None:
        """403 for a target outside the host's reach, 422 for one that does not exist.
        Users may sit in the host's subtree or above it (the superiors and district
        departments a consultation often needs); org nodes must be in the subtree."""
        unknown: list[dict[str, Any]] = []
        if users:
            rows = (
                await session.execute(
                    select(User.id, User.org).where(User.id.in_(users), User.active)
                )
            ).all()
            found = {row.id: row.org for row in rows}
            outside = sorted(
                uid
                for uid, org in found.items()
                if not (org_contains(identity.org, org) or org_contains(org, identity.org))
            )
            if outside:
                raise ConsultationError(
                    403,
                    "consultation.target_outside_scope",
                    f"users outside your reach ({identity.org}): {', '.join(outside[:20])}",
                )
            unknown += [
                {"loc": f"invite_users.{i}", "msg": f"no active user {uid}"}
                for i, uid in enumerate(users)
                if uid not in found
            ]
        if orgs:
            outside = [p for p in orgs if not org_contains(identity.org, p)]
            if outside:
                raise ConsultationError(
                    403,
                    "consultation.target_outside_scope",
                    f"org nodes outside your org {identity.org}: {', '.join(outside[:20])}",
                )
            known = set(await session.scalars(select(OrgNode.path).where(OrgNode.path.in_(orgs))))
            unknown += [
                {"loc": f"invite_org_nodes.{i}", "msg": f"no org node {p}"}
                for i, p in enumerate(orgs)
                if p not in known
            ]
        if unknown:
            raise ConsultationError(422, "consultation.unknown_target", "unknown invitees", unknown)

    async def stage_sms(
        self,
        session: AsyncSession,
        room: Consultation,
        host: User,
        invited: Iterable[User],
        sms_offline: bool,
    ) -> int:
        """Queue an SMS invitation for each invitee with a phone and no live connection
        (one per room and user, whatever is retried: the SMS key is derived from both)."""
        if not (sms_offline and self.settings.invite_sms) or self._sms is None:
            return 0
        queued = 0
        text = SMS_TEXT.format(host=host.name, title=room.title)
        for user in invited:
            if not user.phone:
                continue
            if self._presence is not None and await self._presence(user.id):
                continue
            try:
                if await self._sms.stage(session, user.phone, text, key=_sms_key(room.id, user.id)):
                    queued += 1
            except HubError as err:  # a malformed number must not refuse the invitation
                log.warning("consultation SMS not queued", user=user.id, error=err.message)
        return queued
