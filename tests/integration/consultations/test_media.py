"""The consultation media plane through the real hub: aiortc participants join over the
WebSocket rpc, the hub relays their encoded media (no decoding, no encoding), cameras enter
through the shared pull, host controls change what flows, a vanished participant is found
out, recordings play, and bad signalling is refused without leaking connections."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from sqlalchemy import select

from hub.consultations.media import ConsultationMedia
from hub.consultations.models import Consultation, ConsultationRecording
from hub.db.engine import make_engine, make_sessionmaker
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.integration.cameras.conftest import GATE, camera, clip, start_camera_hub  # noqa: F401  (fixtures)
from tests.integration.consultations.conftest import RawConnect, tok
from tests.integration.consultations.test_rooms import (
    BASE,
    HOST,
    LEADER,
    WORKER,
    open_room,
    room_events,
    rpc,
    rpc_error,
)
from tests.support.rawws import RawClient, eventually
from tests.support.room_peers import Participant, colour_close, dominant_hz
from tests.support.rtsp_server import RtspServer

Rgb = tuple[int, int, int]
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
LOW, HIGH = 440.0, 880.0
ROOM_SETTINGS: dict[str, Any] = {
    "participant_timeout": 2.0,
    "connect_timeout": 10.0,
    "max_sdp_bytes": 24_000,
}
MEDIA_WAIT = 30.0


def media_of(hub: RunningHub) -> ConsultationMedia:
    """The hub's real media plane."""
    media = hub.hub.consultation_media
    assert isinstance(media, ConsultationMedia)
    return media


@pytest.fixture
async def running_hub(backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """This module's hub: the real media plane, short timers, rooms recorded into
    ``tmp_path`` (the package's ``api`` and ``raw`` fixtures use it)."""
    settings = backend_settings(
        backend, consultations={**ROOM_SETTINGS, "recordings_dir": tmp_path / "rooms"}
    )
    running = await start_hub(settings)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def participants() -> AsyncIterator[list[Participant]]:
    """Participants made by a test; all hung up at the end."""
    made: list[Participant] = []
    yield made
    for participant in made:
        await participant.close()


async def join(client: RawClient, room_id: str, participant: Participant) -> dict[str, Any]:
    """Join through the rpc signalling; the reply."""
    offer = await participant.offer()
    reply: dict[str, Any] = await rpc(
        client, "consultation.join", {"consultation_id": room_id, "offer": offer}
    )
    await participant.accept(reply["answer"])
    participant.apply_slots(reply["slots"])
    return reply


def _room_pub(room_id: str, event_type: str, **where: Any) -> Any:
    def match(message: dict[str, Any]) -> bool:
        push = message.get("push") or {}
        if push.get("channel") != f"room:{room_id}" or "pub" not in push:
            return False
        envelope = push["pub"]["data"]
        data = envelope["data"]
        return envelope["type"] == event_type and all(data.get(k) == v for k, v in where.items())

    return match


async def room_event(
    client: RawClient, room_id: str, event_type: str, **where: Any
) -> dict[str, Any]:
    """The next ``event_type`` event on ``room:<id>`` whose data has the ``where`` values;
    other events stay for later waits."""
    message = await client.next_message(_room_pub(room_id, event_type, **where), MEDIA_WAIT)
    data: dict[str, Any] = message["push"]["pub"]["data"]["data"]
    return data


def forget_slots(client: RawClient, room_id: str) -> None:
    """Drop slot events received so far (call before an action that changes the slots)."""
    client.discard(_room_pub(room_id, "consultation.slots"))


async def slots_until(
    client: RawClient, room_id: str, wanted: dict[str, set[str]], everyone: list[Participant]
) -> None:
    """Follow ``consultation.slots`` events until every participant in ``wanted`` is shown
    exactly those sources; apply them to the participants."""
    while True:
        data = await room_event(client, room_id, "consultation.slots")
        slots: dict[str, list[dict[str, Any]]] = data["slots"]
        shown = {pid: {s["source"] for s in rows if s["source"]} for pid, rows in slots.items()}
        if all(shown.get(pid) == sources for pid, sources in wanted.items()):
            for participant in everyone:
                if participant.name in slots:
                    participant.slot_map.clear()
                    participant.apply_slots(slots[participant.name])
            return


@dataclass
class Room:
    """A room of three joined participants and their protocol clients."""

    id: str
    host_ws: RawClient
    leader_ws: RawClient
    worker_ws: RawClient
    host: Participant
    leader: Participant
    worker: Participant


async def room_of_three(
    api: Api, raw: RawConnect, participants: list[Participant], worker_rgb: Rgb | None
) -> Room:
    """HOST opens a room with LEADER and WORKER, they accept, all three join (the host red
    at 440 Hz, the leader blue at 880 Hz, the worker ``worker_rgb`` at 660 Hz or receive-only)
    and every slot shows the others."""
    room_id = (await open_room(api, invite_users=[LEADER[0], WORKER[0]]))["id"]
    host_ws, leader_ws, worker_ws = await raw(HOST), await raw(LEADER), await raw(WORKER)
    await room_events(host_ws, room_id)
    for client in (leader_ws, worker_ws):
        await rpc(client, "consultation.accept", {"consultation_id": room_id})
    host = Participant(HOST[0], RED, LOW)
    leader = Participant(LEADER[0], BLUE, HIGH)
    worker = Participant(WORKER[0], worker_rgb, 660.0 if worker_rgb else None)
    participants += [host, leader, worker]
    for client, participant in ((host_ws, host), (leader_ws, leader), (worker_ws, worker)):
        await join(client, room_id, participant)
    senders = [p for p in (host, leader, worker) if p.rgb is not None]
    wanted = {p.name: {q.name for q in senders if q is not p} for p in (host, leader, worker)}
    await slots_until(host_ws, room_id, wanted, participants)
    return Room(room_id, host_ws, leader_ws, worker_ws, host, leader, worker)


def sees(viewer: Participant, source: Participant, frames: int = 25) -> bool:
    """Whether ``viewer`` decoded ``frames`` pictures and 50 audio frames from ``source``."""
    return (
        viewer.frames_from(source.name, "video") >= frames
        and len(viewer.audio_from(source.name)) >= 50
    )


def matches(viewer: Participant, source: Participant) -> bool:
    """What ``viewer`` decoded from ``source`` is ``source``'s colour and tone."""
    colour = viewer.last_colour(source.name)
    assert source.rgb is not None and source.hz is not None
    return (
        colour is not None
        and colour_close(colour, source.rgb)
        and abs(dominant_hz(viewer.audio_from(source.name)) - source.hz) < 20
    )


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
async def test_three_participants_get_each_others_media_relayed_without_decoding(
    running_hub: RunningHub, api: Api, raw: RawConnect, participants: list[Participant]
) -> None:
    media = media_of(running_hub)
    room = await room_of_three(api, raw, participants, None)  # the worker only watches
    host, leader, watcher, host_ws, room_id = (
        room.host,
        room.leader,
        room.worker,
        room.host_ws,
        room.id,
    )

    pairs = [(host, leader), (leader, host), (watcher, host), (watcher, leader)]
    await eventually(lambda: all(sees(v, s) for v, s in pairs), "media flows", MEDIA_WAIT)
    for viewer, source in pairs:
        assert matches(viewer, source), (viewer.name, source.name)
    # Nothing reaches the receive-only participant's own slot list but the two senders.
    assert not watcher.from_source(watcher.name)
    # Both senders play a loud tone: one of them is reported speaking; the watcher never is.
    speaker = await room_event(host_ws, room_id, "consultation.active_speaker")
    assert speaker["participant_id"] in (host.name, leader.name)

    counters = media.counters
    assert counters.frames_forwarded > 0 and counters.frames_received > 0
    assert counters.frames_decoded == 0 and counters.frames_encoded == 0
    assert counters.transcoded_sources == 0
    assert counters.peer_connections_open == 3
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{running_hub.url}/metrics") as reply,
    ):
        metrics = await reply.text()
    assert "hub_room_frames_decoded_total 0.0" in metrics
    assert "hub_room_frames_encoded_total 0.0" in metrics
    assert "hub_room_peer_connections 3.0" in metrics


async def silent_while_video_goes_on(host: Participant, source: str) -> None:
    """Windows of 50 of ``source``'s pictures at ``host`` until one brings (almost) no audio
    from it. Unmuted, such a window brings about 100 audio frames; muted, the hub sends none,
    but what a loaded machine still holds in sockets and the receiver's buffers drains first,
    however many windows that takes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MEDIA_WAIT
    while True:
        audio, video = host.frames_from(source, "audio"), host.frames_from(source, "video")
        await eventually(
            lambda v=video: host.frames_from(source, "video") > v + 50,
            f"{source}'s video goes on",
            MEDIA_WAIT,
        )
        heard = host.frames_from(source, "audio") - audio
        if heard < 5:
            return
        assert loop.time() < deadline, f"{source}'s audio never fell silent ({heard} frames)"


@pytest.mark.parametrize("backend", ["postgres-redis"], indirect=True)
async def test_leave_rejoin_mute_remove_and_end_change_the_media(
    running_hub: RunningHub, api: Api, raw: RawConnect, participants: list[Participant]
) -> None:
    media = media_of(running_hub)
    room = await room_of_three(api, raw, participants, GREEN)
    room_id, host_ws, leader_ws, worker_ws = room.id, room.host_ws, room.leader_ws, room.worker_ws
    host, leader, worker = room.host, room.leader, room.worker
    everyone = {host.name: {leader.name, worker.name}, leader.name: {host.name, worker.name}}
    await eventually(lambda: sees(host, leader) and sees(leader, worker), "media", MEDIA_WAIT)

    # Leave: the leader's connection closes and nobody is shown the leader any more.
    forget_slots(host_ws, room_id)
    await rpc(leader_ws, "consultation.leave", {"consultation_id": room_id})
    left = await room_event(
        host_ws, room_id, "consultation.participant_left", participant_id=leader.name
    )
    assert left["reason"] == "left"
    await slots_until(host_ws, room_id, {host.name: {worker.name}}, participants)
    # The hub closed the leader's connection (the leader hears of it from DTLS close_notify,
    # or later from ICE consent: not timed here).
    assert media.counters.peer_connections_open == 2
    assert leader.name not in media.rooms[room_id].peers

    # Rejoin: a new connection; the leader's media reaches the host again.
    again = Participant(LEADER[0], BLUE, HIGH)
    participants.append(again)
    forget_slots(host_ws, room_id)
    await join(leader_ws, room_id, again)
    await room_event(
        host_ws, room_id, "consultation.participant_joined", participant_id=leader.name
    )
    assert media.counters.peer_connections_open == 3
    await slots_until(host_ws, room_id, everyone, participants)
    before = host.frames_from(leader.name, "video")
    await eventually(
        lambda: host.frames_from(leader.name, "video") > before + 25, "leader back", MEDIA_WAIT
    )
    assert colour_close(host.last_colour(leader.name) or (0, 0, 0), BLUE)

    # Host mutes the leader's audio: the event says so and the host hears no more of it
    # while the leader's video keeps coming.
    heard = host.frames_from(leader.name, "audio")
    await eventually(
        lambda: host.frames_from(leader.name, "audio") > heard + 25,
        "the leader is heard",
        MEDIA_WAIT,
    )
    await rpc(
        host_ws,
        "consultation.mute",
        {"consultation_id": room_id, "participant_id": leader.name, "kind": "audio", "muted": True},
    )
    muted = await room_event(host_ws, room_id, "consultation.muted")
    assert (muted["participant_id"], muted["kind"], muted["muted"]) == (leader.name, "audio", True)
    await silent_while_video_goes_on(host, leader.name)

    # Remove the worker: its connection is closed and it cannot come back.
    await rpc(
        host_ws, "consultation.remove", {"consultation_id": room_id, "participant_id": worker.name}
    )
    removed = await room_event(
        host_ws, room_id, "consultation.participant_left", participant_id=worker.name
    )
    assert removed["reason"] == "removed"
    assert worker.name not in media.rooms[room_id].peers
    assert media.counters.peer_connections_open == 2
    comeback = Participant(WORKER[0])
    participants.append(comeback)
    code, message = await rpc_error(
        worker_ws,
        "consultation.join",
        {"consultation_id": room_id, "offer": await comeback.offer()},
    )
    assert code == 103 and "consultation." in message

    # End: every connection closes and the recordings play.
    await rpc(host_ws, "consultation.end", {"consultation_id": room_id})
    await room_event(host_ws, room_id, "consultation.ended")
    assert media.counters.peer_connections_open == 0
    assert room_id not in media.rooms
    assert media.counters.peer_connections_total == 4  # host, leader twice, worker: all closed
    detail = await api.as_(tok(HOST)).get(f"{BASE}/{room_id}")
    recordings = detail.body["recordings"]
    kinds = {(r["source_id"], r["kind"]) for r in recordings}
    for who in (host.name, leader.name, worker.name):
        assert {(who, "audio"), (who, "video")} <= kinds, kinds
    for recording in recordings:
        assert await plays(api, room_id, recording) > 0, recording


async def plays(api: Api, room_id: str, recording: dict[str, Any]) -> int:
    """Download a recording and decode it with PyAV: the frames decoded."""
    url = f"{api.base}{BASE}/{room_id}/recordings/{recording['id']}"
    headers = {"Authorization": f"Bearer {tok(HOST)}"}
    async with api.http.get(url, headers=headers) as reply:
        assert reply.status == 200, await reply.text()
        body = await reply.read()
    with tempfile.NamedTemporaryFile(suffix=".mkv") as file:
        file.write(body)
        file.flush()
        with av.open(file.name) as container:
            stream = container.streams[0]
            assert stream.type == recording["kind"]
            return sum(1 for _ in container.decode(stream))


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_participant_whose_network_dies_is_removed_and_the_others_carry_on(
    running_hub: RunningHub, api: Api, raw: RawConnect, participants: list[Participant]
) -> None:
    media = media_of(running_hub)
    room = await room_of_three(api, raw, participants, GREEN)
    room_id, host_ws, host, leader, worker = (
        room.id,
        room.host_ws,
        room.host,
        room.leader,
        room.worker,
    )
    await eventually(lambda: sees(host, leader) and sees(host, worker), "media", MEDIA_WAIT)

    leader.vanish()
    # Found out within participant_timeout (2 s) and a watchdog tick.
    lost = await room_event(
        host_ws, room_id, "consultation.participant_left", participant_id=leader.name
    )
    assert lost["reason"] == "lost"
    assert media.counters.peer_connections_open == 2
    before = host.frames_from(worker.name, "video")
    await eventually(
        lambda: host.frames_from(worker.name, "video") > before + 25, "worker goes on", MEDIA_WAIT
    )
    assert host.state() == "connected" and worker.state() == "connected"
    detail = await api.as_(tok(HOST)).get(f"{BASE}/{room_id}")
    states = {p["participant_id"]: p["state"] for p in detail.body["participants"]}
    assert states[leader.name] == "left"


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_bad_signalling_gets_clear_errors_and_leaks_nothing(
    running_hub: RunningHub, api: Api, raw: RawConnect, participants: list[Participant]
) -> None:
    media = media_of(running_hub)
    room = await open_room(api, invite_users=[LEADER[0]])
    room_id = room["id"]
    host_ws, worker_ws = await raw(HOST), await raw(WORKER)
    good = Participant(HOST[0], RED, LOW)
    participants.append(good)
    offer = await good.offer()

    async def refused(client: RawClient, data: Any) -> tuple[int, str]:
        return await rpc_error(client, "consultation.join", data)

    code, message = await refused(host_ws, {"consultation_id": room_id, "offer": "hello"})
    assert code == 107 and message.startswith("consultation.bad_sdp")
    mangled = offer.replace("a=fingerprint", "a=x-fingerprint")
    code, message = await refused(host_ws, {"consultation_id": room_id, "offer": mangled})
    assert code == 107 and message.startswith("consultation.bad_sdp"), message
    unbundled = "\r\n".join(line for line in offer.split("\r\n") if "BUNDLE" not in line)
    code, message = await refused(host_ws, {"consultation_id": room_id, "offer": unbundled})
    assert code == 107 and "BUNDLE" in message
    vp8_only = offer.replace("H264", "X264")
    code, message = await refused(host_ws, {"consultation_id": room_id, "offer": vp8_only})
    assert code == 107 and message.startswith("consultation.codec_unsupported"), message
    code, message = await refused(host_ws, {"consultation_id": "0" * 26, "offer": offer})
    assert code == 103 and message.startswith("consultation.not_found"), message
    # Never invited: the room is not theirs to know of.
    code, message = await refused(worker_ws, {"consultation_id": room_id, "offer": offer})
    assert code == 103 and message.startswith("consultation.not_found"), message
    huge = offer + "a=x-padding:" + "x" * 30_000 + "\r\n"
    code, message = await refused(host_ws, {"consultation_id": room_id, "offer": huge})
    assert code == 107 and "bytes" in message, message
    # Beyond the WebSocket's message limit the gateway closes that connection (1009).
    flooder = await raw(HOST)
    await flooder.send({"rpc": {"method": "consultation.join", "data": {"offer": "x" * 70_000}}})
    assert await flooder.closed() == 1009
    code, message = await rpc_error(
        host_ws,
        "consultation.candidate",
        {
            "consultation_id": room_id,
            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
        },
    )
    assert code == 107 and message.startswith("consultation.not_joined"), message

    assert media.counters.peer_connections_open == 0
    assert not media.rooms
    # The hub is unharmed: the same participant joins with its real offer.
    await join(host_ws, room_id, good)
    assert media.counters.peer_connections_open == 1


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_camera_in_the_room_reaches_everyone_through_the_one_shared_pull(
    backend: Backend,
    tmp_path: Path,
    camera: RtspServer,  # noqa: F811
    participants: list[Participant],
) -> None:
    running = await start_camera_hub(
        backend, tmp_path, camera, consultations={**ROOM_SETTINGS, "record": False}
    )
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, running.url, None)
            room = await open_room(api, invite_users=[WORKER[0]])
            room_id = room["id"]
            host_ws, _ = await RawClient.connected(running.ws_url, tok(HOST))
            worker_ws, _ = await RawClient.connected(running.ws_url, tok(WORKER))
            try:
                await room_events(host_ws, room_id)
                await rpc(worker_ws, "consultation.accept", {"consultation_id": room_id})
                host = Participant(HOST[0], RED, LOW)
                worker = Participant(WORKER[0])
                participants += [host, worker]
                await join(host_ws, room_id, host)
                await join(worker_ws, room_id, worker)
                added = await api.as_(tok(HOST)).post(
                    f"{BASE}/{room_id}/cameras", {"camera_id": GATE}
                )
                assert added.status in (200, 201), added.body
                source = f"camera:{GATE}"
                await slots_until(
                    host_ws,
                    room_id,
                    {host.name: {source}, worker.name: {host.name, source}},
                    participants,
                )
                await eventually(
                    lambda: (
                        host.frames_from(source, "video") >= 25
                        and worker.frames_from(source, "video") >= 25
                    ),
                    "camera pictures",
                    MEDIA_WAIT,
                )
                streams = running.hub.streams
                assert streams is not None and streams.pulls_running == 1
                assert camera.sessions == 1
                # The test camera sends H.264 High: it enters through the camera's shared
                # transcoder (counted), not once per room or participant.
                assert media_of(running).counters.transcoded_sources == 1
            finally:
                await host_ws.close()
                await worker_ws.close()
    finally:
        await running.server.close()


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_a_whip_publisher_reaches_the_room_and_leaves_with_delete(
    running_hub: RunningHub, api: Api, raw: RawConnect, participants: list[Participant]
) -> None:
    media = media_of(running_hub)
    room_id = (await open_room(api, invite_users=[LEADER[0]]))["id"]
    host_ws, leader_ws = await raw(HOST), await raw(LEADER)
    await room_events(host_ws, room_id)
    await rpc(leader_ws, "consultation.accept", {"consultation_id": room_id})
    host = Participant(HOST[0], RED, LOW)
    publisher = Participant(LEADER[0], BLUE, HIGH, slots=1)  # an HTTP-only client
    participants += [host, publisher]
    await join(host_ws, room_id, host)
    headers = {"Authorization": f"Bearer {tok(LEADER)}", "Content-Type": "application/sdp"}
    url = f"{running_hub.url}{BASE}/{room_id}/whip"
    async with api.http.post(url, data=await publisher.offer(), headers=headers) as reply:
        assert reply.status == 201, await reply.text()
        assert reply.content_type == "application/sdp"
        location = reply.headers["Location"]
        await publisher.accept(await reply.text())
    assert location == f"{BASE}/{room_id}/whip/{publisher.name}"
    await slots_until(host_ws, room_id, {host.name: {publisher.name}}, participants)
    await eventually(lambda: sees(host, publisher), "the WHIP publisher's media", MEDIA_WAIT)
    assert matches(host, publisher)

    forget_slots(host_ws, room_id)
    async with api.http.delete(f"{running_hub.url}{location}", headers=headers) as reply:
        assert reply.status == 204
    left = await room_event(
        host_ws, room_id, "consultation.participant_left", participant_id=publisher.name
    )
    assert left["reason"] == "left"
    await slots_until(host_ws, room_id, {host.name: set()}, participants)
    assert media.counters.peer_connections_open == 1


@pytest.mark.parametrize("backend", ["sqlite-memory"], indirect=True)
async def test_what_an_open_room_recorded_is_kept_when_the_hub_stops(
    backend: Backend, tmp_path: Path, participants: list[Participant]
) -> None:
    settings = backend_settings(
        backend, consultations={**ROOM_SETTINGS, "recordings_dir": tmp_path / "rooms"}
    )
    running = await start_hub(settings)
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, running.url, None)
            room_id = (await open_room(api, invite_users=[LEADER[0]]))["id"]
        host_ws, _ = await RawClient.connected(running.ws_url, tok(HOST))
        watcher_ws, _ = await RawClient.connected(running.ws_url, tok(LEADER))
        try:
            await rpc(watcher_ws, "consultation.accept", {"consultation_id": room_id})
            host, watcher = Participant(HOST[0], RED, LOW), Participant(LEADER[0])
            participants += [host, watcher]
            await join(host_ws, room_id, host)
            await join(watcher_ws, room_id, watcher)
            await eventually(
                lambda: watcher.frames_from(host.name, "video") >= 25, "media", MEDIA_WAIT
            )
        finally:
            await host_ws.close()
            await watcher_ws.close()
    finally:
        await running.server.close()  # the room is still open
    engine = make_engine(backend.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = list(
                await session.scalars(
                    select(ConsultationRecording).where(
                        ConsultationRecording.consultation_id == room_id
                    )
                )
            )
            room = await session.get(Consultation, room_id)
    finally:
        await engine.dispose()
    assert room is not None and room.status == "open"  # participants rejoin after a restart
    assert {(r.source_id, r.kind) for r in rows} == {(host.name, "audio"), (host.name, "video")}
    for row in rows:
        assert (tmp_path / "rooms" / row.path).stat().st_size == row.bytes > 0
