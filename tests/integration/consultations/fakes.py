"""A stand-in for the consultation media plane in the room tests (the real one is tested
in test_media*.py): it answers every offer and records what the service asked of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.consultations.contract import JoinAnswer, RecordedTrack, RoomMediaError

ANSWER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@dataclass
class FakeRoomMedia:
    """Implements hub.consultations.contract.RoomMedia in memory."""

    joined: dict[str, set[str]] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    candidates: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    tracks: list[RecordedTrack] = field(default_factory=list)
    """What ``end`` hands back (the test writes the files)."""
    refuse: RoomMediaError | None = None

    async def join(self, room_id: str, participant_id: str, offer: str) -> JoinAnswer:
        self.calls.append(("join", room_id, participant_id))
        if self.refuse is not None:
            raise self.refuse
        self.joined.setdefault(room_id, set()).add(participant_id)
        return JoinAnswer(ANSWER, [{"slot": 0, "source": None}])

    async def leave(self, room_id: str, participant_id: str) -> None:
        self.calls.append(("leave", room_id, participant_id))
        self.joined.get(room_id, set()).discard(participant_id)

    def mute(self, room_id: str, participant_id: str, kind: str, muted: bool) -> None:
        self.calls.append(("mute", room_id, participant_id, kind, muted))

    async def add_camera(self, room_id: str, camera_id: str, url: str) -> None:
        self.calls.append(("add_camera", room_id, camera_id))
        self.joined.setdefault(room_id, set()).add(f"camera:{camera_id}")

    async def remove_camera(self, room_id: str, camera_id: str) -> None:
        self.calls.append(("remove_camera", room_id, camera_id))
        self.joined.get(room_id, set()).discard(f"camera:{camera_id}")

    async def end(self, room_id: str) -> list[RecordedTrack]:
        self.calls.append(("end", room_id))
        self.joined.pop(room_id, None)
        return list(self.tracks)

    async def add_candidate(
        self, room_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        self.candidates.append((room_id, participant_id, candidate))
