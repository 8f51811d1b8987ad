"""The consultation rooms' media plane as the room service sees it: the real
:class:`~hub.consultations.contract.RoomMedia`, one :class:`streams.room.MediaRoom` per open
room, cameras fed through the hub's shared StreamManager (one pull per camera, shared with
live view), per-track recordings under ``<recordings_dir>/<room id>/``.

Events from the rooms (``participant_lost``, ``active_speaker``, ``slots``) go to
``on_event(room_id, kind, data)``, a coroutine function the service sets after both exist.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from hub.consultations.contract import JoinAnswer, RecordedTrack, RoomMediaError
from streams.manager import MediaError, StreamManager
from streams.relay import Viewer
from streams.room import MediaRoom, RoomConfig, RoomCounters
from streams.room import RoomMediaError as StreamRoomError

log = structlog.get_logger(__name__)

RoomEventSink = Callable[[str, str, dict[str, Any]], Coroutine[Any, Any, None]]


class ConsultationMedia:
    """Every open room's peer connections, relays and recordings in this process."""

    def __init__(self, config: RoomConfig, streams: StreamManager | None) -> None:
        self.config = config
        self.counters = RoomCounters()
        self.on_event: RoomEventSink | None = None
        self._streams = streams
        self._rooms: dict[str, MediaRoom] = {}
        self._feeds: dict[str, dict[str, tuple[Any, Viewer]]] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "room recordings")
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def rooms(self) -> dict[str, MediaRoom]:
        """Rooms with media now."""
        return self._rooms

    def room(self, room_id: str) -> MediaRoom:
        """The room's media, opened if it has none yet (SIP calls join through this)."""
        return self._room(room_id)

    def _room(self, room_id: str) -> MediaRoom:
        room = self._rooms.get(room_id)
        if room is None or room.closed:
            room = MediaRoom(
                room_id,
                self.config,
                self.counters,
                lambda kind, data: self._emit(room_id, kind, data),
                self._executor,
            )
            self._rooms[room_id] = room
        return room

    def _emit(self, room_id: str, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        task = asyncio.get_running_loop().create_task(self.on_event(room_id, kind, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self, room_id: str, participant_id: str, offer: str) -> JoinAnswer:
        """Answer a participant's offer."""
        room = self._room(room_id)
        try:
            sdp = await room.connect(participant_id, offer)
        except StreamRoomError as err:
            await self._drop_if_empty(room_id)
            raise RoomMediaError(err.code, err.message, err.status) from err
        except BaseException:
            await self._drop_if_empty(room_id)
            raise
        return JoinAnswer(sdp, room.slots().get(participant_id, []))

    async def _drop_if_empty(self, room_id: str) -> None:
        """A room whose first join failed keeps nothing running."""
        room = self._rooms.get(room_id)
        if room is not None and not room.peers and not room.sources:
            del self._rooms[room_id]
            await room.close()

    async def leave(self, room_id: str, participant_id: str) -> None:
        """Close a participant's connection."""
        room = self._rooms.get(room_id)
        if room is not None:
            await room.disconnect(participant_id)

    def mute(self, room_id: str, participant_id: str, kind: str, muted: bool) -> None:
        """Stop or resume forwarding one of a participant's tracks."""
        room = self._rooms.get(room_id)
        if room is not None:
            room.mute(participant_id, kind, muted)

    async def add_camera(self, room_id: str, camera_id: str, url: str) -> None:
        """A camera into the room, through the shared pull."""
        if self._streams is None:
            raise RoomMediaError("consultation.media_unavailable", "no media plane", 503)
        feeds = self._feeds.setdefault(room_id, {})
        if camera_id in feeds:
            return
        try:
            camera, viewer, transcoded = await self._streams.open_feed(camera_id, url)
        except MediaError as err:
            raise RoomMediaError(err.code, err.message, err.status) from err
        feeds[camera_id] = (camera, viewer)
        self._room(room_id).add_feed(f"camera:{camera_id}", viewer, transcoded)
        log.info("camera added to room", room=room_id, camera_id=camera_id, transcoded=transcoded)

    async def remove_camera(self, room_id: str, camera_id: str) -> None:
        """Take a camera out of the room."""
        feed = self._feeds.get(room_id, {}).pop(camera_id, None)
        room = self._rooms.get(room_id)
        if room is not None:
            room.remove_feed(f"camera:{camera_id}")
        if feed is not None and self._streams is not None:
            self._streams.release(*feed)

    async def end(self, room_id: str) -> list[RecordedTrack]:
        """Close the room's connections; its recordings."""
        room = self._rooms.pop(room_id, None)
        for camera_id in list(self._feeds.get(room_id, {})):
            await self.remove_camera(room_id, camera_id)
        self._feeds.pop(room_id, None)
        if room is None:
            return []
        files = await room.close()
        return [
            RecordedTrack(f.source_id, f.kind, f.path, f.size, f.started_at, f.ended_at)
            for f in files
        ]

    async def add_candidate(
        self, room_id: str, participant_id: str, candidate: dict[str, Any]
    ) -> None:
        """A trickled ICE candidate."""
        room = self._rooms.get(room_id)
        if room is None:
            raise RoomMediaError("consultation.no_session", "no media session in this room", 404)
        try:
            await room.add_candidate(participant_id, candidate)
        except StreamRoomError as err:
            raise RoomMediaError(err.code, err.message, err.status) from err

    async def close(self, timeout: float) -> None:
        """End every room (shutdown)."""
        for room_id in list(self._rooms):
            try:
                await asyncio.wait_for(self.end(room_id), timeout)
            except Exception:
                log.warning("room did not close cleanly", room=room_id, exc_info=True)
        self._executor.shutdown(wait=False)
