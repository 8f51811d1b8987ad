"""Consultation rooms (远程会商): creating them, inviting users and org nodes, answering
invitations, joining through the media plane, host controls, ending, recordings.

Every change is one transaction holding the rows and the room's events (outbox): the
invitees' ``consultation.invited`` on ``user:<id>``, everything else on ``room:<id>``, which
only the room's members may read. The media plane is reached only through
:class:`~hub.consultations.contract.RoomMedia`; media calls run outside transactions, and
a room's state never waits on media to be torn down. Events the media plane reports
(``on_media_event``) become rows and room events here. When the room is about a case, the
case's timeline gets a row when it starts, when it ends and for its recordings.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.tokens import Identity
from hub.bus import BusUnavailable
from hub.cameras.registry import CameraRegistry
from hub.cases.service import CaseService
from hub.config import ConsultationSettings
from hub.consultations import rooms
from hub.consultations.contract import (
    JoinAnswer,
    NoMedia,
    RecordedTrack,
    RoomMedia,
    RoomMediaError,
    TerminalCalls,
)
from hub.consultations.invitations import Invitations, Presence, bus_presence
from hub.consultations.models import (
    ACCEPTED,
    CAMERA,
    DECLINED,
    ENDED,
    INVITED,
    JOINED,
    LEFT,
    MEMBERS,
    OPEN,
    REMOVED,
    TERMINAL,
    USER,
    Consultation,
    ConsultationParticipant,
    ConsultationRecording,
)
from hub.consultations.recordings import RoomRecordings
from hub.consultations.rooms import (
    SOURCE,
    ConsultationError,
    camera_participant,
    not_found,
    participant_dict,
    room_channel,
)
from hub.db.models import Case, User, utcnow
from hub.db.outbox import OutboxRelay
from hub.errors import HubError
from hub.events import ROOM_EVENTS
from hub.publisher import Publisher
from hub.sms.service import SmsService
from hub.tasks import TaskRegistry
from protocols.envelope import new_event_id

__all__ = [
    "ConsultationError",
    "ConsultationService",
    "JoinAnswer",
    "Joined",
    "RecordedTrack",
    "RoomMedia",
    "RoomMediaError",
    "RoomView",
    "bus_presence",
    "camera_participant",
    "participant_dict",
    "room_channel",
]

log = structlog.get_logger(__name__)

HOST_ROLES = ("dispatcher", "leader", "admin")
"""Who may open a consultation room (and so host it)."""
MEDIA_KINDS = ("audio", "video")
TERMINAL_URI = re.compile(r"sips?:[A-Za-z0-9._~%!$&'()*+,;=-]+@[A-Za-z0-9.:\[\]-]+(;[^\s]*)?")
"""sip:user@host[:port][;params]: what the host may dial (no spaces, no headers part)."""
MINE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Joined:
    """What a participant gets back from joining."""

    participant_id: str
    answer: str
    slots: list[dict[str, Any]]
    participants: list[ConsultationParticipant]
    host: str


@dataclass(frozen=True, slots=True)
class RoomView:
    """A room with its participants and recordings."""

    room: Consultation
    participants: list[ConsultationParticipant]
    recordings: list[ConsultationRecording]


class ConsultationService:
    """Rooms, membership, invitations, host controls and the rows the media plane reports."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        relay: OutboxRelay,
        tasks: TaskRegistry,
        settings: ConsultationSettings,
        *,
        cases: CaseService,
        cameras: CameraRegistry | None = None,
        sms: SmsService | None = None,
        presence: Presence | None = None,
        media: RoomMedia | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self._publisher = publisher
        self._relay = relay
        self._tasks = tasks
        self._cases = cases
        self._cameras = cameras
        self._sms = sms
        self.invitations = Invitations(settings, sms, presence)
        self.recordings = RoomRecordings(sessions, settings, cases)
        self.media: RoomMedia = media if media is not None else NoMedia()
        """The media plane (replaceable: the hub installs the real one when it runs)."""
        self.terminals: TerminalCalls | None = None
        """Video network calls (adapters/videonet), when enabled."""
        self._orgs: dict[str, str] = {}
        """Envelope org of open rooms, for the media plane's frequent events."""

    # -- create and invite ----------------------------------------------------------------

    async def create(
        self,
        identity: Identity,
        title: str,
        *,
        case_id: str | None = None,
        invite_users: Sequence[str] = (),
        invite_org_nodes: Sequence[str] = (),
        sms_offline: bool = False,
    ) -> Consultation:
        """Open a room hosted by the caller, invite users and the users of org subtrees."""
        if not identity.has_any(*HOST_ROLES):
            raise ConsultationError(
                403, "auth.forbidden", f"hosting a consultation needs one of: {HOST_ROLES}"
            )
        now = utcnow()
        invited: list[User]
        async with self.sessions() as session, session.begin():
            host = await rooms.active_user(session, identity.user)
            open_rooms = await session.scalar(
                select(func.count()).select_from(Consultation).where(Consultation.status == OPEN)
            )
            if (open_rooms or 0) >= self.settings.max_rooms:
                raise ConsultationError(
                    429,
                    "consultation.too_many_rooms",
                    f"the hub already runs {self.settings.max_rooms} open consultations;"
                    " end one first",
                )
            case: Case | None = None
            if case_id is not None:
                case = await self._cases.locked(session, rooms.actor(identity, host), case_id)
            room = Consultation(
                id=new_event_id(), title=title, case_id=case_id, host_id=identity.user,
                org=identity.org, status=OPEN, created_by=identity.user, created_at=now,
            )  # fmt: skip
            session.add(room)
            host_row = ConsultationParticipant(
                consultation_id=room.id, participant_id=identity.user, kind=USER,
                user_id=identity.user, state=ACCEPTED, invited_at=now, answered_at=now,
                muted_audio=False, muted_video=False,
            )  # fmt: skip
            session.add(host_row)
            await session.flush()
            invited = await self.invitations.invite(
                session, room, identity, host, invite_users, invite_org_nodes, now
            )
            if case is not None:
                await self._cases.record(
                    session, case, "consult_start", rooms.actor(identity, host),
                    note=f"远程会商：{title}", from_state=case.state, now=now,
                    details={"consultation_id": room.id, "host": identity.user,
                             "invited": [u.id for u in invited]},
                )  # fmt: skip
            queued = await self.invitations.stage_sms(session, room, host, invited, sms_offline)
        self._orgs[room.id] = room.org
        self._committed(sms=queued)
        log.info("consultation opened", consultation_id=room.id, invited=len(invited))
        return room

    async def invite(
        self,
        identity: Identity,
        consultation_id: str,
        *,
        users: Sequence[str] = (),
        org_nodes: Sequence[str] = (),
        sms_offline: bool = False,
    ) -> list[str]:
        """The host invites more users; returns the ids newly invited."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id, host_only=True)
            host = await rooms.active_user(session, identity.user)
            invited = await self.invitations.invite(
                session, room, identity, host, users, org_nodes, now
            )
            queued = await self.invitations.stage_sms(session, room, host, invited, sms_offline)
        self._committed(sms=queued)
        return [u.id for u in invited]

    # -- invitees -------------------------------------------------------------------------

    async def accept(self, identity: Identity, consultation_id: str) -> ConsultationParticipant:
        """The invitee accepts (also after declining)."""
        return await self._answer(identity, consultation_id, accepted=True)

    async def decline(self, identity: Identity, consultation_id: str) -> ConsultationParticipant:
        """The invitee declines (also after accepting, before joining)."""
        return await self._answer(identity, consultation_id, accepted=False)

    async def _answer(
        self, identity: Identity, consultation_id: str, *, accepted: bool
    ) -> ConsultationParticipant:
        allowed_from = {INVITED, DECLINED} if accepted else {INVITED, ACCEPTED}
        target = ACCEPTED if accepted else DECLINED
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id)
            row = await rooms.own_row(session, room, identity)
            if row.state == target and room.host_id != identity.user:
                return row
            if room.host_id == identity.user or row.state not in allowed_from:
                raise ConsultationError(
                    409,
                    "consultation.invalid_state",
                    f"you cannot {'accept' if accepted else 'decline'} while {row.state}",
                )
            row.state, row.answered_at = target, utcnow()
            rooms.stage(session, room, "participant_answered",
                        participant_id=row.participant_id, accepted=accepted)  # fmt: skip
        self._committed()
        return row

    # -- media: join, candidates, leave ---------------------------------------------------

    async def join(self, identity: Identity, consultation_id: str, offer: str) -> Joined:
        """Authorise the caller, hand their offer to the media plane, record the join."""
        limit = self.settings.max_sdp_bytes
        if len(offer.encode("utf-8", "replace")) > limit:
            raise ConsultationError(
                413, "consultation.offer_too_large", f"the SDP offer is over {limit} bytes"
            )
        async with self.sessions() as session:
            room = await rooms.open_room(session, identity, consultation_id)
            await rooms.member_row(session, room, identity)
        answer = await self.media.join(room.id, identity.user, offer)
        try:
            async with self.sessions() as session, session.begin():
                room = await rooms.open_room(session, identity, consultation_id, lock=True)
                row = await rooms.member_row(session, room, identity)
                now = utcnow()
                rejoin = row.state == JOINED
                row.state, row.joined_at, row.left_at, row.leave_reason = JOINED, now, None, None
                if row.answered_at is None:
                    row.answered_at = now
                if room.started_at is None:
                    room.started_at = now
                if not rejoin:
                    rooms.stage(session, room, "participant_joined",
                                participant_id=row.participant_id, kind=USER)  # fmt: skip
                participants = await rooms.participants(session, room.id)
        except BaseException:
            await self._quietly(self.media.leave(consultation_id, identity.user))
            raise
        self._orgs[room.id] = room.org
        self._committed()
        return Joined(identity.user, answer.sdp, answer.slots, participants, room.host_id)

    async def add_candidate(
        self, identity: Identity, consultation_id: str, candidate: dict[str, Any]
    ) -> None:
        """A trickled ICE candidate of the caller's connection."""
        async with self.sessions() as session:
            room = await rooms.open_room(session, identity, consultation_id)
            row = await rooms.member_row(session, room, identity)
        if row.state != JOINED:
            raise ConsultationError(409, "consultation.not_joined", "join the room first")
        await self.media.add_candidate(room.id, identity.user, candidate)

    async def leave(self, identity: Identity, consultation_id: str) -> None:
        """The caller leaves (idempotent: leaving when not joined changes nothing)."""
        left = await self._set_left(consultation_id, identity.user, "left", identity=identity)
        if left:
            await self._quietly(self.media.leave(consultation_id, identity.user))

    async def _set_left(
        self, consultation_id: str, participant_id: str, reason: str, *, identity: Identity | None
    ) -> bool:
        """A joined participant leaves for ``reason``; False when it was not joined."""
        async with self.sessions() as session, session.begin():
            room = await rooms.get_room(session, consultation_id, lock=True)
            if room is None or (identity is not None and not await rooms.may_see(
                session, room, identity
            )):  # fmt: skip
                raise not_found(consultation_id)
            row = await session.get(ConsultationParticipant, (room.id, participant_id))
            if room.status != OPEN or row is None or row.state != JOINED:
                return False
            row.state, row.left_at, row.leave_reason = LEFT, utcnow(), reason
            rooms.stage(session, room, "participant_left",
                        participant_id=participant_id, reason=reason)  # fmt: skip
        self._committed()
        return True

    # -- host controls --------------------------------------------------------------------

    async def mute(
        self, identity: Identity, consultation_id: str, participant_id: str, kind: str, muted: bool
    ) -> ConsultationParticipant:
        """Mute or unmute a participant's audio or video: the host anyone, anyone themself."""
        if kind not in MEDIA_KINDS:
            raise ConsultationError(422, "consultation.invalid", "kind must be audio or video")
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id, lock=True)
            if participant_id != identity.user and room.host_id != identity.user:
                raise ConsultationError(
                    403, "consultation.not_host", "only the host mutes other participants"
                )
            row = await rooms.participant(session, room, participant_id)
            setattr(row, f"muted_{kind}", muted)
            rooms.stage(session, room, "muted", participant_id=participant_id, kind=kind,
                        muted=muted, by=identity.user)  # fmt: skip
        self._committed()
        try:
            self.media.mute(room.id, participant_id, kind, muted)
        except RoomMediaError as err:
            log.warning("media mute failed", consultation_id=room.id, error=err.message)
        return row

    async def remove(self, identity: Identity, consultation_id: str, participant_id: str) -> None:
        """The host removes a participant (a camera is taken out of the room); a removed
        user may not join again until invited again."""
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id, True, lock=True)
            if participant_id == room.host_id:
                raise ConsultationError(
                    409, "consultation.cannot_remove_host", "hand the room over first"
                )
            row = await rooms.participant(session, room, participant_id)
            was_joined = row.state == JOINED
            row.state, row.left_at, row.leave_reason = REMOVED, utcnow(), "removed"
            rooms.stage(session, room, "participant_left",
                        participant_id=participant_id, reason="removed")  # fmt: skip
            if row.kind == CAMERA and row.camera_id is not None:
                rooms.stage(session, room, "camera_removed", participant_id=participant_id,
                            camera_id=row.camera_id, by=identity.user)  # fmt: skip
            if row.kind == TERMINAL:
                rooms.stage(session, room, "terminal_call", participant_id=participant_id,
                            uri=rooms.terminal_uri(participant_id), direction="out",
                            state="ended", reason="removed")  # fmt: skip
        self._committed()
        if row.kind == CAMERA and row.camera_id is not None:
            await self._quietly(self.media.remove_camera(room.id, row.camera_id))
        elif row.kind == TERMINAL:
            if self.terminals is not None:
                await self._quietly(self.terminals.hang_up(room.id, participant_id))
        elif was_joined:
            await self._quietly(self.media.leave(room.id, participant_id))

    async def hand_over(
        self, identity: Identity, consultation_id: str, user_id: str
    ) -> Consultation:
        """The host makes another user participant (accepted or joined) the host."""
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id, True, lock=True)
            row = await session.get(ConsultationParticipant, (room.id, user_id))
            if row is None or row.kind != USER or row.state not in (ACCEPTED, JOINED):
                raise ConsultationError(
                    409,
                    "consultation.invalid_host",
                    "the new host must be a user who accepted or joined the room",
                )
            previous, room.host_id = room.host_id, user_id
            if user_id != previous:
                rooms.stage(session, room, "host_changed", host=user_id, previous=previous,
                            by=identity.user)  # fmt: skip
        self._committed()
        return room

    async def end(self, identity: Identity, consultation_id: str) -> Consultation:
        """The host ends the room: everyone leaves, the media plane closes and hands over
        its recordings, the case timeline records the end."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id, True, lock=True)
            room.status, room.ended_at, room.ended_by = ENDED, now, identity.user
            rows = await rooms.participants(session, room.id)
            for row in rows:
                if row.state == JOINED:
                    row.state, row.left_at, row.leave_reason = LEFT, now, "ended"
                    rooms.stage(session, room, "participant_left",
                                participant_id=row.participant_id, reason="ended")  # fmt: skip
            if room.case_id is not None:
                joined = sorted(r.participant_id for r in rows if r.joined_at is not None)
                await rooms.case_entry(
                    self._cases,
                    session, room, "consult_end", identity, note=f"远程会商结束：{room.title}",
                    details={"consultation_id": room.id, "participants": joined,
                             "started_at": room.started_at.isoformat() if room.started_at
                             else None},
                    now=now,
                )  # fmt: skip
        self._committed()
        self._orgs.pop(room.id, None)
        if self.terminals is not None:
            await self._quietly(self.terminals.hang_up_room(room.id))
        try:
            tracks = await self.media.end(room.id)
        except Exception:
            log.exception("media plane failed to end the room", consultation_id=room.id)
            tracks = []
        stored = await self.recordings.store(room, tracks, identity)
        async with self.sessions() as session, session.begin():
            rooms.stage(session, room, "ended", by=identity.user, recordings=stored)
        self._committed()
        log.info("consultation ended", consultation_id=room.id, recordings=stored)
        return room

    async def shutdown(self, room_ids: Iterable[str]) -> int:
        """The hub stops: close the media of rooms still open (they stay open; participants
        rejoin after the restart) and keep what they recorded, filed as the host's; the
        number of recordings stored."""
        stored = 0
        for room_id in list(room_ids):
            try:
                tracks = await self.media.end(room_id)
                async with self.sessions() as session:
                    room = await session.get(Consultation, room_id)
                if room is None or not tracks:
                    continue
                host = Identity(room.host_id, room.org, frozenset(), 0)
                stored += await self.recordings.store(room, tracks, host)
            except Exception:
                log.exception("recordings of a room not kept at shutdown", consultation_id=room_id)
        return stored

    # -- cameras --------------------------------------------------------------------------

    async def add_camera(
        self, identity: Identity, consultation_id: str, camera_id: str
    ) -> ConsultationParticipant:
        """The host brings a camera they may see into the room (participant
        ``camera:<id>``); adding one already in the room changes nothing."""
        if self._cameras is None:
            raise ConsultationError(503, "camera.unavailable", "the camera registry is not running")
        record = await self._cameras.get(camera_id)
        if record is None or not self._cameras.visible_to(identity, record):
            raise ConsultationError(404, "camera.not_found", f"no camera {camera_id[:64]} for you")
        pid = camera_participant(record.id)
        async with self.sessions() as session:
            room = await rooms.open_room(session, identity, consultation_id, True)
            row = await session.get(ConsultationParticipant, (room.id, pid))
            if row is not None and row.state == JOINED:
                return row
            seated = await rooms.seated(session, room.id)
            if seated >= self.settings.max_participants:
                raise ConsultationError(
                    409, "consultation.room_full",
                    f"a room holds {self.settings.max_participants} participants (cameras"
                    " included)",
                )  # fmt: skip
        await self.media.add_camera(room.id, record.id, record.source_url)
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id, True, lock=True)
            row = await session.get(ConsultationParticipant, (room.id, pid))
            if row is None:
                row = ConsultationParticipant(
                    consultation_id=room.id, participant_id=pid, kind=CAMERA,
                    camera_id=record.id, muted_audio=False, muted_video=False,
                )  # fmt: skip
                session.add(row)
            row.state, row.invited_by, row.invited_at = JOINED, identity.user, now
            row.joined_at, row.answered_at, row.left_at, row.leave_reason = now, now, None, None
            room.started_at = room.started_at or now
            rooms.stage(session, room, "camera_added", participant_id=pid,
                        camera_id=record.id, by=identity.user)  # fmt: skip
        self._committed()
        return row

    async def remove_camera(self, identity: Identity, consultation_id: str, camera_id: str) -> None:
        """The host takes a camera out of the room."""
        await self.remove(identity, consultation_id, camera_participant(camera_id))

    # -- video network terminals ----------------------------------------------------------

    async def call_terminal(
        self, identity: Identity, consultation_id: str, uri: str, name: str = ""
    ) -> ConsultationParticipant:
        """The host calls a video network terminal into the room (participant
        ``terminal:<address>``). The call is placed in the background: ``terminal_call``
        events on ``room:<id>`` say how it goes, and the participant joins when it answers."""
        if self.terminals is None:
            raise ConsultationError(
                503, "consultation.calls_unavailable", "video network calls are not enabled"
            )
        if not TERMINAL_URI.fullmatch(uri):
            raise ConsultationError(
                422, "consultation.invalid", "a terminal is called by a SIP URI (sip:user@host)"
            )
        pid = rooms.terminal_participant(uri)
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await rooms.open_room(session, identity, consultation_id, True, lock=True)
            row = await session.get(ConsultationParticipant, (room.id, pid))
            if row is not None and row.state in (INVITED, JOINED):
                raise ConsultationError(
                    409, "consultation.already_calling", "this terminal is already in the room"
                )
            if await rooms.seated(session, room.id) >= self.settings.max_participants:
                raise ConsultationError(
                    409, "consultation.room_full",
                    f"a room holds {self.settings.max_participants} participants",
                )  # fmt: skip
            if row is None:
                row = ConsultationParticipant(
                    consultation_id=room.id, participant_id=pid, kind=TERMINAL,
                    muted_audio=False, muted_video=False,
                )  # fmt: skip
                session.add(row)
            row.state, row.invited_by, row.invited_at = INVITED, identity.user, now
            row.answered_at = row.joined_at = row.left_at = row.leave_reason = None
            rooms.stage(session, room, "terminal_call", participant_id=pid, uri=uri, name=name,
                        direction="out", state="calling")  # fmt: skip
        self._committed()
        self._tasks.spawn(self._dial(room.id, pid, uri, name), name=f"call terminal {pid}")
        return row

    async def _dial(self, room_id: str, pid: str, uri: str, name: str) -> None:
        assert self.terminals is not None
        try:
            await self.terminals.dial(room_id, pid, uri)
        except Exception as err:
            reason = err.message if isinstance(err, HubError) else type(err).__name__
            log.info("terminal call failed", consultation_id=room_id, participant=pid,
                     reason=reason)  # fmt: skip
            await self._terminal_failed(room_id, pid, uri, name, reason)
            return
        if not await self.terminal_connected(room_id, pid, uri, name, "out"):
            await self._quietly(self.terminals.hang_up(room_id, pid))

    async def _terminal_failed(
        self, room_id: str, pid: str, uri: str, name: str, reason: str
    ) -> None:
        async with self.sessions() as session, session.begin():
            room = await rooms.get_room(session, room_id, lock=True)
            row = await session.get(ConsultationParticipant, (room_id, pid))
            if room is None or row is None or row.state != INVITED:
                return
            row.state, row.answered_at, row.leave_reason = DECLINED, utcnow(), None
            rooms.stage(session, room, "terminal_call", participant_id=pid, uri=uri, name=name,
                        direction="out", state="failed", reason=reason[:200])  # fmt: skip
        self._committed()

    async def terminal_connected(
        self, room_id: str, pid: str, uri: str, name: str, direction: str
    ) -> bool:
        """A terminal's call is up (it answered ours, or its call in was accepted): it joins.
        False when the room is gone or full, or the host removed the terminal meanwhile."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            room = await rooms.get_room(session, room_id, lock=True)
            if room is None or room.status != OPEN:
                return False
            row = await session.get(ConsultationParticipant, (room_id, pid))
            if row is None:
                if await rooms.seated(session, room.id) >= self.settings.max_participants:
                    return False
                row = ConsultationParticipant(
                    consultation_id=room.id, participant_id=pid, kind=TERMINAL, state=INVITED,
                    invited_at=now, muted_audio=False, muted_video=False,
                )  # fmt: skip
                session.add(row)
            elif direction == "out" and row.state != INVITED:
                return False  # removed (or the room re-dialled) while it rang
            row.state, row.answered_at, row.joined_at = JOINED, now, now
            row.left_at = row.leave_reason = None
            room.started_at = room.started_at or now
            rooms.stage(session, room, "terminal_call", participant_id=pid, uri=uri, name=name,
                        direction=direction, state="connected")  # fmt: skip
            rooms.stage(session, room, "participant_joined", participant_id=pid, kind=TERMINAL)
        self._orgs[room.id] = room.org
        self._committed()
        return True

    async def terminal_ended(self, room_id: str, pid: str, uri: str, reason: str) -> None:
        """A terminal's call ended (it hung up, its media stopped, the gateway was lost)."""
        async with self.sessions() as session, session.begin():
            room = await rooms.get_room(session, room_id, lock=True)
            row = await session.get(ConsultationParticipant, (room_id, pid))
            if room is None or room.status != OPEN or row is None or row.state != JOINED:
                return
            row.state, row.left_at, row.leave_reason = LEFT, utcnow(), "hung_up"
            rooms.stage(session, room, "terminal_call", participant_id=pid, uri=uri,
                        direction="out", state="ended", reason=reason[:200])  # fmt: skip
            rooms.stage(session, room, "participant_left", participant_id=pid, reason="hung_up")
        self._committed()

    async def show_terminal(
        self, identity: Identity, consultation_id: str, participant_id: str, source: str | None
    ) -> None:
        """The host picks the participant whose video a terminal is sent (None: the active
        speaker)."""
        async with self.sessions() as session:
            room = await rooms.open_room(session, identity, consultation_id, True)
            row = await rooms.participant(session, room, participant_id)
            if row.kind != TERMINAL or row.state != JOINED:
                raise ConsultationError(
                    404, "consultation.participant_not_found",
                    f"no connected terminal {participant_id[:80]} in this room",
                )  # fmt: skip
        if self.terminals is not None:
            self.terminals.show(room.id, participant_id, source)

    async def room_by_code(self, code: str) -> str | None:
        """The open room a terminal dials with ``code`` (or with its id), or None."""
        async with self.sessions() as session:
            ids = (
                await session.scalars(select(Consultation.id).where(Consultation.status == OPEN))
            ).all()
        for room_id in ids:
            if code in (room_id, rooms.room_code(room_id)):
                return room_id
        return None

    # -- what the media plane reports -----------------------------------------------------

    async def on_media_event(self, room_id: str, kind: str, data: dict[str, Any]) -> None:
        """The media plane's callback: ``participant_lost`` ({"participant_id", "reason"}),
        ``active_speaker`` ({"participant_id"}), ``slots`` ({"slots": {...}}). Never raises
        (a failure is logged): the media plane may spawn it or await it."""
        try:
            if kind == "participant_lost":
                pid = str(data["participant_id"])
                if await self._set_left(room_id, pid, "lost", identity=None):
                    log.info("participant lost", consultation_id=room_id, participant=pid,
                             why=str(data.get("reason", ""))[:200])  # fmt: skip
            elif kind == "active_speaker":
                await self._publish_now(
                    room_id, "active_speaker", participant_id=str(data["participant_id"])
                )
            elif kind == "slots":
                slots = data.get("slots")
                await self._publish_now(room_id, "slots", slots=slots if isinstance(slots, dict)
                                        else {})  # fmt: skip
            else:
                log.warning("unknown media event", consultation_id=room_id, kind=kind[:64])
        except Exception:
            log.exception("media event not handled", consultation_id=room_id, kind=kind[:64])

    async def _publish_now(self, room_id: str, kind: str, /, **data: Any) -> None:
        """Frequent, transient room events go straight to the bus (no outbox row)."""
        org = self._orgs.get(room_id)
        if org is None:
            async with self.sessions() as session:
                room = await session.get(Consultation, room_id)
            if room is None or room.status != OPEN:
                return
            org = self._orgs[room_id] = room.org
        event = ROOM_EVENTS[f"consultation.{kind}"](consultation_id=room_id, **data)
        envelope = event.envelope(source=SOURCE, org=org, subject=room_id)
        try:
            await self._publisher.publish_encoded(envelope.encode(), [room_channel(room_id)])
        except BusUnavailable:
            log.debug("room event dropped: bus unavailable", consultation_id=room_id, kind=kind)

    # -- reading --------------------------------------------------------------------------

    async def may_read_channel(self, identity: Identity, key: str) -> bool:
        """The ``room:<id>`` channel guard: the host and the users invited to, accepted,
        joined or (for a rejoin) left the room."""
        if len(key) != rooms.ID_LENGTH:
            return False
        async with self.sessions() as session:
            room = await session.get(Consultation, key)
            return room is not None and await rooms.is_member(session, room, identity)

    async def detail(self, identity: Identity, consultation_id: str) -> RoomView:
        """A room with its participants and recordings, for its members."""
        async with self.sessions() as session:
            room = await rooms.get_room(session, consultation_id)
            if room is None or not await rooms.may_see(session, room, identity):
                raise not_found(consultation_id)
            participants = await rooms.participants(session, room.id)
            recordings = list(
                await session.scalars(
                    select(ConsultationRecording)
                    .where(ConsultationRecording.consultation_id == room.id)
                    .order_by(ConsultationRecording.started_at, ConsultationRecording.id)
                )
            )
        return RoomView(room, participants, recordings)

    async def mine(
        self, identity: Identity, status: str = OPEN
    ) -> list[tuple[Consultation, ConsultationParticipant]]:
        """The caller's rooms of ``status`` (newest first) with the caller's place in each."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(Consultation, ConsultationParticipant)
                .join(
                    ConsultationParticipant,
                    ConsultationParticipant.consultation_id == Consultation.id,
                )
                .where(
                    ConsultationParticipant.user_id == identity.user,
                    ConsultationParticipant.state.in_(MEMBERS),
                    Consultation.status == status,
                )
                .order_by(Consultation.created_at.desc(), Consultation.id.desc())
                .limit(MINE_LIMIT)
            )
            return [(room, row) for room, row in rows]

    async def recording(
        self, identity: Identity, consultation_id: str, recording_id: str
    ) -> tuple[ConsultationRecording, Path]:
        """A recording of a room the caller is a member of, and its file."""
        view = await self.detail(identity, consultation_id)
        for row in view.recordings:
            if row.id == recording_id:
                path = self.recordings.path(row)
                if await asyncio.to_thread(path.is_file):
                    return row, path
                break
        raise ConsultationError(
            404, "consultation.recording_not_found", "no such recording (or its file is gone)"
        )

    # -- retention ------------------------------------------------------------------------

    async def sweep_recordings(self, now: datetime | None = None) -> int:
        """Delete the recordings (rows and files) older than ``retention_days``."""
        return await self.recordings.sweep(now)

    async def run_retention(self) -> None:
        """Sweep the recordings periodically (cancel to stop)."""
        await self.recordings.run()

    # -- helpers --------------------------------------------------------------------------

    def _committed(self, *, sms: int = 0) -> None:
        self._relay.notify()
        if sms and self._sms is not None:
            self._sms.notify()

    @staticmethod
    async def _quietly(call: Awaitable[None]) -> None:
        """A media teardown whose failure must not undo what the room already recorded."""
        try:
            await call
        except Exception:
            log.warning("media teardown failed", exc_info=True)
