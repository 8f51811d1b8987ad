"""A GB/T 28181 channel joins a consultation room like any camera: through its one shared
pull, its H.264 (constrained baseline from the device) forwarded without transcoding."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.conftest import Backend
from tests.integration.api.conftest import Api
from tests.integration.consultations.conftest import tok
from tests.integration.consultations.test_media import ROOM_SETTINGS, join, media_of, slots_until
from tests.integration.consultations.test_rooms import (
    BASE,
    HOST,
    WORKER,
    open_room,
    room_events,
    rpc,
)
from tests.integration.gb28181.conftest import CAMERA, channel_device, start_gb_hub
from tests.support.gb_device import GbDevice
from tests.support.rawws import RawClient
from tests.support.rawws import eventually as eventually_sync
from tests.support.room_peers import Participant

RED = (255, 0, 0)


async def test_a_gb28181_channel_in_a_room_reaches_everyone_without_transcoding(
    sqlite_backend: Backend, tmp_path: Path, gb_clip: Path
) -> None:
    running = await start_gb_hub(
        sqlite_backend, tmp_path, consultations={**ROOM_SETTINGS, "record": False}
    )
    participants: list[Participant] = []
    device: GbDevice | None = None
    try:
        device = await channel_device(running, gb_clip)
        async with aiohttp.ClientSession() as http:
            api = Api(http, running.url, None)
            room_id = (await open_room(api, invite_users=[WORKER[0]]))["id"]
            host_ws, _ = await RawClient.connected(running.ws_url, tok(HOST))
            worker_ws, _ = await RawClient.connected(running.ws_url, tok(WORKER))
            try:
                await room_events(host_ws, room_id)
                await rpc(worker_ws, "consultation.accept", {"consultation_id": room_id})
                host, worker = Participant(HOST[0], RED, 440.0), Participant(WORKER[0])
                participants += [host, worker]
                await join(host_ws, room_id, host)
                await join(worker_ws, room_id, worker)
                added = await api.as_(tok(HOST)).post(
                    f"{BASE}/{room_id}/cameras", {"camera_id": CAMERA}
                )
                assert added.status in (200, 201), added.body
                source = f"camera:{CAMERA}"
                wanted = {host.name: {source}, worker.name: {host.name, source}}
                await slots_until(host_ws, room_id, wanted, participants)
                await eventually_sync(
                    lambda: (
                        host.frames_from(source, "video") >= 25
                        and worker.frames_from(source, "video") >= 25
                    ),
                    "the channel's pictures in the room",
                    30.0,
                )
                assert len(device.invites) == 1
                assert media_of(running).counters.transcoded_sources == 0
                streams = running.hub.streams
                assert streams is not None and streams.counters.frames_encoded == 0
            finally:
                await host_ws.close()
                await worker_ws.close()
    finally:
        for participant in participants:
            await participant.close()
        if device is not None:
            await device.close()
        await running.server.close()
