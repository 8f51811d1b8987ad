"""The contract between the consultation room service and the media plane.

The room service (hub/consultations/service.py) owns rooms, membership, permissions and
events; the media plane (hub/consultations/media.py) owns peer connections, the relay and
the recordings, and is reached only through an object implementing :class:`RoomMedia`.
Every call takes ids the service has already authorised.

The media plane reports back by calling ``ConsultationService.on_media_event(room_id,
kind, data)`` (a coroutine: await it or spawn it; it never raises) with the kinds
``participant_lost`` ({"participant_id", "reason"}), ``active_speaker``
({"participant_id"}) and ``slots`` ({"slots": {...}}).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from hub.errors import HubError

MEDIA_UNAVAILABLE = "consultation.media_unavailable"


@dataclass(frozen=True, slots=True)
class JoinAnswer:
    """The media plane's answer to a participant's offer."""

    sdp: str
    slots: list[dict[str, Any]] = field(default_factory=list)
    """The participant's receive slots: which remote source plays in which of its tracks."""


@dataclass(frozen=True, slots=True)
class RecordedTrack:
    """One file the media plane recorded for a room (one source, one kind)."""

    source_id: str
    """The participant id whose media it is (a user id or ``camera:<id>``)."""
    kind: str  # "audio" | "video"
    path: Path
    bytes: int
    started_at: datetime  # timezone-aware
    ended_at: datetime  # timezone-aware


class RoomMediaError(HubError):
    """The media plane refused or failed: a documented code (``consultation.bad_sdp`` …),
    a message and an HTTP status. Reaches REST callers as is, rpc callers as a protocol
    error whose message starts with the code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message, status)


class RoomMedia(Protocol):
    """What the room service needs from the media plane."""

    async def join(self, room_id: str, participant_id: str, offer: str) -> JoinAnswer:
        """Open (or replace) the participant's peer connection; raises RoomMediaError."""

    async def leave(self, room_id: str, participant_id: str) -> None:
        """Close the participant's connection (idempotent)."""

    def mute(self, room_id: str, participant_id: str, kind: str, muted: bool) -> None:
        """Stop or resume forwarding one of the participant's tracks (audio or video)."""

    async def add_camera(self, room_id: str, camera_id: str, url: str) -> None:
        """Bring a camera into the room as participant ``camera:<camera_id>``."""

    async def remove_camera(self, room_id: str, camera_id: str) -> None:
        """Take a camera out of the room (idempotent)."""

    async def end(self, room_id: str) -> list[RecordedTrack]:
        """Close every connection of the room and finish its recordings."""

    async def add_candidate(
        self, room_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        """A trickled ICE candidate of the participant."""


class TerminalCalls(Protocol):
    """What the room service needs from the video network's SIP calls (adapters/videonet)."""

    async def dial(self, room_id: str, participant_id: str, uri: str) -> None:
        """Call a terminal into the room; returns once it answered (its media flows), raises
        RoomMediaError when the call fails (refused, unreachable, no common codec)."""

    async def hang_up(self, room_id: str, participant_id: str) -> None:
        """End a terminal's call (idempotent)."""

    async def hang_up_room(self, room_id: str) -> None:
        """End every terminal call of the room (the room ends)."""

    def show(self, room_id: str, participant_id: str, source_id: str | None) -> bool:
        """Send the terminal ``source_id``'s video (None: the active speaker's)."""


class NoMedia:
    """The media plane while none is installed: whatever needs media fails with 503
    ``consultation.media_unavailable``; tearing down (leave, mute, end) has nothing to do."""

    async def join(self, room_id: str, participant_id: str, offer: str) -> JoinAnswer:
        """Refused: no media plane."""
        raise RoomMediaError(MEDIA_UNAVAILABLE, "the consultation media plane is not running", 503)

    async def leave(self, room_id: str, participant_id: str) -> None:
        """Nothing to close."""

    def mute(self, room_id: str, participant_id: str, kind: str, muted: bool) -> None:
        """Nothing to mute."""

    async def add_camera(self, room_id: str, camera_id: str, url: str) -> None:
        """Refused: no media plane."""
        raise RoomMediaError(MEDIA_UNAVAILABLE, "the consultation media plane is not running", 503)

    async def remove_camera(self, room_id: str, camera_id: str) -> None:
        """Nothing to remove."""

    async def end(self, room_id: str) -> list[RecordedTrack]:
        """Nothing was recorded."""
        return []

    async def add_candidate(
        self, room_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        """Refused: no media plane."""
        raise RoomMediaError(MEDIA_UNAVAILABLE, "the consultation media plane is not running", 503)
