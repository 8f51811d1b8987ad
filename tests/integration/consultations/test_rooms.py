"""Consultation rooms end to end on both backends: invitations (users and org nodes) live on
user:<id> and by SMS to the offline, answers, who may read room:<id>, host controls and the
room events they publish, limits, refusals over REST and rpc, the case timeline, WHIP and
the media plane's reports (through a stand-in media plane where media is needed)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from hub.consultations.contract import RecordedTrack
from hub.db.models import SmsMessage, utcnow
from protocols.client import ErrorCode
from tests.conftest import RunningHub
from tests.integration.api.conftest import Api
from tests.integration.cases.helpers import WORKER as CASE_WORKER
from tests.integration.cases.helpers import report
from tests.integration.consultations.conftest import Connect, RawConnect, Who, tok
from tests.integration.consultations.fakes import FakeRoomMedia
from tests.support.rawws import RawClient
from tests.support.smsc import TestSmsc

BASE = "/api/v1/consultations"
HOST: Who = ("s01-dispatcher", "d01.s01", ["dispatcher"])
LEADER: Who = ("s01c01-leader", "d01.s01.c01", ["grid_leader"])
WORKER: Who = ("s01c01g01-worker", "d01.s01.c01.g01", ["grid_worker"])
G02_WORKER: Who = ("s01c01g02-worker", "d01.s01.c01.g02", ["grid_worker"])
C02_WORKER: Who = ("s01c02g01-worker", "d01.s01.c02.g01", ["grid_worker"])
C02_PHONE = "13800270016"
OUTSIDER: Who = ("s02c01g01-worker", "d01.s02.c01.g01", ["grid_worker"])
OFFER = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
CAMERA = "s01c01g01-gate"
OTHER_STREET_CAMERA = "s02c01g01-school"


async def open_room(api: Api, host: Who = HOST, **body: Any) -> dict[str, Any]:
    """Open a room; the stored room."""
    reply = await api.as_(tok(host)).post(BASE, {"title": "河道污染联合会商", **body})
    assert reply.status == 201, reply.body
    room: dict[str, Any] = reply.body
    return room


async def room_events(client: RawClient, room_id: str) -> None:
    """Subscribe ``client`` to the room's channel."""
    await client.result("subscribe", {"channel": f"room:{room_id}"})


async def next_room_event(client: RawClient, room_id: str, event_type: str) -> dict[str, Any]:
    """The next event of ``event_type`` on ``room:<id>`` (others are skipped)."""
    while True:
        push = await client.publication(f"room:{room_id}")
        envelope: dict[str, Any] = push["pub"]["data"]
        if envelope["type"] == event_type:
            data: dict[str, Any] = envelope["data"]
            assert data["consultation_id"] == room_id
            return data


async def rpc_error(client: RawClient, method: str, data: Any) -> tuple[int, str]:
    """Call an rpc method that must fail: (protocol error code, message)."""
    reply = await client.call("rpc", {"method": method, "data": data})
    assert "error" in reply, reply
    return int(reply["error"]["code"]), str(reply["error"].get("message", ""))


async def rpc(client: RawClient, method: str, data: Any) -> Any:
    """Call an rpc method that must succeed: its reply data."""
    return (await client.result("rpc", {"method": method, "data": data})).get("data")


def states(room: dict[str, Any]) -> dict[str, str]:
    """Participant id → state."""
    return {p["participant_id"]: p["state"] for p in room["participants"]}


async def test_invitations_reach_invited_users_and_org_node_users_live(
    api: Api, live: Connect
) -> None:
    worker, g02 = await live(WORKER), await live(G02_WORKER)
    room = await open_room(api, invite_users=[WORKER[0]], invite_org_nodes=["d01.s01.c01.g02"])
    assert (room["host_id"], room["status"], room["my_state"]) == (HOST[0], "open", "accepted")
    assert states(room) == {HOST[0]: "accepted", WORKER[0]: "invited", G02_WORKER[0]: "invited"}
    for client in (worker, g02):
        event = await client.next_of("consultation.invited")
        assert event["data"]["consultation_id"] == room["id"]
        assert event["data"]["title"] == "河道污染联合会商"
        assert event["data"]["host"] == HOST[0] and event["data"]["host_name"]
        assert event["data"].get("case_id") is None
    mine = await api.as_(tok(WORKER)).get(BASE)
    assert mine.status == 200
    assert [(r["id"], r["my_state"]) for r in mine.body["items"]] == [(room["id"], "invited")]
    assert (await api.as_(tok(WORKER)).get(f"{BASE}/{room['id']}")).status == 200
    outsider = await api.as_(tok(OUTSIDER)).get(f"{BASE}/{room['id']}")
    assert (outsider.status, outsider.code) == (404, "consultation.not_found")
    assert (await api.as_(tok(OUTSIDER)).get(BASE)).body["items"] == []


async def test_answers_are_published_in_the_room_and_the_host_cannot_answer(
    api: Api, raw: RawConnect
) -> None:
    room = await open_room(api, invite_users=[WORKER[0], LEADER[0]])
    rid = room["id"]
    host = await raw(HOST)
    await room_events(host, rid)
    accepted = await api.as_(tok(WORKER)).post(f"{BASE}/{rid}/accept", {})
    assert accepted.status == 200 and accepted.body["state"] == "accepted"
    event = await next_room_event(host, rid, "consultation.participant_answered")
    assert event == {"consultation_id": rid, "participant_id": WORKER[0], "accepted": True}
    leader = await raw(LEADER)
    declined = await rpc(leader, "consultation.decline", {"consultation_id": rid})
    assert declined["state"] == "declined"
    event = await next_room_event(host, rid, "consultation.participant_answered")
    assert (event["participant_id"], event["accepted"]) == (LEADER[0], False)
    again = await rpc(leader, "consultation.decline", {"consultation_id": rid})
    assert again["state"] == "declined"  # answering the same twice changes nothing
    own = await api.as_(tok(HOST)).post(f"{BASE}/{rid}/accept", {})
    assert (own.status, own.code) == (409, "consultation.invalid_state")


async def test_room_channel_is_readable_by_members_only(api: Api, raw: RawConnect) -> None:
    room = await open_room(api, invite_users=[WORKER[0], LEADER[0]])
    rid = room["id"]
    worker, leader, outsider = await raw(WORKER), await raw(LEADER), await raw(OUTSIDER)
    await room_events(worker, rid)
    for client, name in [
        (outsider, f"room:{rid}"),
        (worker, "room:" + "0" * 26),
        (worker, "room:nonsense"),
    ]:
        assert await client.error("subscribe", {"channel": name}) == ErrorCode.PERMISSION_DENIED
    await rpc(leader, "consultation.decline", {"consultation_id": rid})
    refused = await leader.error("subscribe", {"channel": f"room:{rid}"})
    assert refused == ErrorCode.PERMISSION_DENIED
    publish = await worker.error("publish", {"channel": f"room:{rid}", "data": {"x": 1}})
    assert publish == ErrorCode.PERMISSION_DENIED


async def test_host_controls_publish_room_events(
    api: Api, raw: RawConnect, media: FakeRoomMedia
) -> None:
    room = await open_room(api, invite_users=[WORKER[0], LEADER[0]])
    rid = room["id"]
    host, worker, leader = await raw(HOST), await raw(WORKER), await raw(LEADER)
    await room_events(host, rid)
    joined = await rpc(worker, "consultation.join", {"consultation_id": rid, "offer": OFFER})
    assert joined["participant_id"] == WORKER[0] and joined["answer"].startswith("v=0")
    assert joined["host"] == HOST[0] and joined["slots"]
    assert {p["participant_id"]: p["state"] for p in joined["participants"]}[WORKER[0]] == "joined"
    event = await next_room_event(host, rid, "consultation.participant_joined")
    assert (event["participant_id"], event["kind"]) == (WORKER[0], "user")

    muted = await api.as_(tok(HOST)).post(
        f"{BASE}/{rid}/participants/{WORKER[0]}/mute", {"kind": "audio", "muted": True}
    )
    assert muted.status == 200 and muted.body["muted_audio"] is True
    event = await next_room_event(host, rid, "consultation.muted")
    assert event == {
        "consultation_id": rid, "participant_id": WORKER[0], "kind": "audio", "muted": True,
        "by": HOST[0],
    }  # fmt: skip
    assert ("mute", rid, WORKER[0], "audio", True) in media.calls
    by_worker = await rpc_error(
        worker,
        "consultation.mute",
        {"consultation_id": rid, "participant_id": HOST[0], "kind": "video", "muted": True},
    )
    assert by_worker[0] == ErrorCode.PERMISSION_DENIED
    assert by_worker[1].startswith("consultation.not_host:")

    handed = await api.as_(tok(HOST)).post(f"{BASE}/{rid}/host", {"user_id": WORKER[0]})
    assert handed.status == 200 and handed.body["host_id"] == WORKER[0]
    event = await next_room_event(host, rid, "consultation.host_changed")
    assert (event["host"], event["previous"], event["by"]) == (WORKER[0], HOST[0], HOST[0])
    not_host = await api.as_(tok(HOST)).post(f"{BASE}/{rid}/end", {})
    assert (not_host.status, not_host.code) == (403, "consultation.not_host")

    await rpc(worker, "consultation.remove", {"consultation_id": rid, "participant_id": LEADER[0]})
    event = await next_room_event(host, rid, "consultation.participant_left")
    assert (event["participant_id"], event["reason"]) == (LEADER[0], "removed")
    code, message = await rpc_error(
        leader, "consultation.join", {"consultation_id": rid, "offer": OFFER}
    )
    assert code == ErrorCode.PERMISSION_DENIED and message.startswith("consultation.not_invited:")
    self_removal = await api.as_(tok(WORKER)).call(
        "DELETE", f"{BASE}/{rid}/participants/{WORKER[0]}"
    )
    assert (self_removal.status, self_removal.code) == (409, "consultation.cannot_remove_host")

    ended = await rpc(worker, "consultation.end", {"consultation_id": rid})
    assert ended == {"consultation_id": rid, "status": "ended"}
    event = await next_room_event(host, rid, "consultation.participant_left")
    assert (event["participant_id"], event["reason"]) == (WORKER[0], "ended")
    event = await next_room_event(host, rid, "consultation.ended")
    assert event["by"] == WORKER[0] and event["recordings"] == 0
    assert ("end", rid) in media.calls
    code, message = await rpc_error(
        worker, "consultation.join", {"consultation_id": rid, "offer": OFFER}
    )
    assert code == ErrorCode.BAD_REQUEST and message.startswith("consultation.ended:")
    detail = await api.as_(tok(WORKER)).get(f"{BASE}/{rid}")
    assert detail.body["status"] == "ended" and detail.body["ended_by"] == WORKER[0]
    assert states(detail.body)[LEADER[0]] == "removed"
    assert (await api.as_(tok(WORKER)).get(BASE, status="ended")).body["items"][0]["id"] == rid


async def test_room_and_hub_limits_give_clear_errors(running_hub: RunningHub, api: Api) -> None:
    settings = running_hub.hub.settings.consultations
    settings.max_participants, settings.max_rooms = 3, 1
    too_many = await api.as_(tok(HOST)).post(
        BASE, {"title": "会商", "invite_users": [WORKER[0], LEADER[0], G02_WORKER[0]]}
    )
    assert (too_many.status, too_many.code) == (409, "consultation.room_full")
    room = await open_room(api, invite_users=[WORKER[0], LEADER[0]])
    more = await api.as_(tok(HOST)).post(
        f"{BASE}/{room['id']}/invitations", {"invite_users": [G02_WORKER[0]]}
    )
    assert (more.status, more.code) == (409, "consultation.room_full")
    second = await api.as_(tok(HOST)).post(BASE, {"title": "第二个会商"})
    assert (second.status, second.code) == (429, "consultation.too_many_rooms")
    assert (await api.as_(tok(HOST)).post(f"{BASE}/{room['id']}/end", {})).status == 200
    await open_room(api)  # the ended room no longer counts


async def test_refusals_for_who_is_not_invited_or_may_not_host(
    api: Api, raw: RawConnect, media: FakeRoomMedia
) -> None:
    worker_host = await api.as_(tok(WORKER)).post(BASE, {"title": "会商"})
    assert (worker_host.status, worker_host.code) == (403, "auth.forbidden")
    outside = await api.as_(tok(HOST)).post(
        BASE, {"title": "会商", "invite_org_nodes": ["d01.s02"]}
    )
    assert (outside.status, outside.code) == (403, "consultation.target_outside_scope")
    unknown = await api.as_(tok(HOST)).post(BASE, {"title": "会商", "invite_users": ["nobody"]})
    assert (unknown.status, unknown.code) == (422, "consultation.unknown_target")
    room = await open_room(api, invite_users=[LEADER[0]])
    rid = room["id"]
    outsider = await raw(OUTSIDER)
    code, message = await rpc_error(
        outsider, "consultation.join", {"consultation_id": rid, "offer": OFFER}
    )
    assert code == ErrorCode.PERMISSION_DENIED and message.startswith("consultation.not_found:")
    whip = await api.as_(tok(OUTSIDER)).http.post(
        f"{api.base}{BASE}/{rid}/whip",
        data=OFFER,
        headers={"Authorization": f"Bearer {tok(OUTSIDER)}", "Content-Type": "application/sdp"},
    )
    assert whip.status == 404
    await api.as_(tok(LEADER)).post(f"{BASE}/{rid}/decline", {})
    leader = await raw(LEADER)
    code, message = await rpc_error(
        leader, "consultation.join", {"consultation_id": rid, "offer": OFFER}
    )
    assert code == ErrorCode.PERMISSION_DENIED and message.startswith("consultation.not_invited:")
    assert not any(call[0] == "join" for call in media.calls)


async def test_case_timeline_records_start_end_and_recordings(
    running_hub: RunningHub, api: Api, media: FakeRoomMedia
) -> None:
    case = await report(api, CASE_WORKER)
    room = await open_room(api, case_id=case["id"], invite_users=[WORKER[0]])
    rid = room["id"]
    assert room["case_id"] == case["id"]
    root = running_hub.hub.settings.consultations.recordings_dir
    root.mkdir(parents=True, exist_ok=True)
    (root / "audio.ogg").write_bytes(b"OggS recorded audio")
    now = utcnow()
    media.tracks = [
        RecordedTrack(HOST[0], "audio", root / "audio.ogg", 19, now - timedelta(seconds=5), now)
    ]
    async with RawClientFor(running_hub, HOST) as host:
        await rpc(host, "consultation.join", {"consultation_id": rid, "offer": OFFER})
    ended = await api.as_(tok(HOST)).post(f"{BASE}/{rid}/end", {})
    assert ended.status == 200
    detail = (await api.as_(tok(HOST)).get(f"{BASE}/{rid}")).body
    (recording,) = detail["recordings"]
    assert (recording["source_id"], recording["kind"], recording["bytes"]) == (HOST[0], "audio", 19)
    file = await api.as_(tok(WORKER)).http.get(
        f"{api.base}{BASE}/{rid}/recordings/{recording['id']}",
        headers={"Authorization": f"Bearer {tok(WORKER)}"},
    )
    assert file.status == 200 and await file.read() == b"OggS recorded audio"
    missing = await api.as_(tok(WORKER)).get(f"{BASE}/{rid}/recordings/{'0' * 26}")
    assert (missing.status, missing.code) == (404, "consultation.recording_not_found")
    timeline = (await api.as_(tok(HOST)).get(f"/api/v1/cases/{case['id']}")).body["timeline"]
    rows = {row["action"]: row for row in timeline}
    assert rows["consult_start"]["details"]["consultation_id"] == rid
    assert rows["consult_start"]["details"]["invited"] == [WORKER[0]]
    assert rows["consult_end"]["details"]["participants"] == [HOST[0]]
    assert rows["consult_record"]["details"]["recordings"][0]["id"] == recording["id"]
    assert [r["action"] for r in timeline][-3:] == [
        "consult_start", "consult_end", "consult_record",
    ]  # fmt: skip
    hidden = await api.as_(tok(OUTSIDER)).post(BASE, {"title": "x", "case_id": case["id"]})
    assert hidden.status == 403  # not a host role, let alone one who sees the case
    swept = await running_hub.hub.consultations.sweep_recordings(now + timedelta(days=31))  # type: ignore[union-attr]
    assert swept == 1 and not (root / "audio.ogg").exists()


class RawClientFor:
    """``async with`` a raw client signed in as ``who``."""

    def __init__(self, running_hub: RunningHub, who: Who) -> None:
        self._url, self._who = running_hub.ws_url, who
        self._client: RawClient | None = None

    async def __aenter__(self) -> RawClient:
        self._client, _ = await RawClient.connected(self._url, tok(self._who))
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        assert self._client is not None
        await self._client.close()


async def test_offline_invitee_gets_an_sms_invitation(
    running_hub: RunningHub, api: Api, live: Connect, smsc: TestSmsc
) -> None:
    online = await live(WORKER)
    room = await open_room(api, invite_users=[WORKER[0], C02_WORKER[0]], sms_offline=True)
    await online.next_of("consultation.invited")
    await smsc.wait_for(lambda: len(smsc.submitted) >= 1)
    (sent,) = smsc.submitted
    assert sent.pdu.destination_addr == C02_PHONE
    async with running_hub.hub.sessions() as session:
        messages = list(await session.scalars(select(SmsMessage)))
    assert [m.to for m in messages] == [C02_PHONE]
    assert room["title"] in messages[0].text
    # Declined and invited again: the SMS of this room is not sent a second time.
    await api.as_(tok(C02_WORKER)).post(f"{BASE}/{room['id']}/decline", {})
    again = await api.as_(tok(HOST)).post(
        f"{BASE}/{room['id']}/invitations", {"invite_users": [C02_WORKER[0]], "sms_offline": True}
    )
    assert again.body == {"invited": [C02_WORKER[0]]}
    async with running_hub.hub.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SmsMessage)) == 1


async def test_rpc_and_rest_refuse_bad_data_and_oversize_offers(
    running_hub: RunningHub, api: Api, raw: RawConnect, media: FakeRoomMedia
) -> None:
    running_hub.hub.settings.consultations.max_sdp_bytes = 1000
    room = await open_room(api, invite_users=[WORKER[0]])
    rid = room["id"]
    worker = await raw(WORKER)
    for method, data, expected in [
        ("consultation.join", "nonsense", (ErrorCode.BAD_REQUEST, "consultation.invalid:")),
        ("consultation.join", {}, (ErrorCode.BAD_REQUEST, "consultation.invalid:")),
        ("consultation.join", {"consultation_id": rid}, (ErrorCode.BAD_REQUEST,
                                                         "consultation.invalid:")),
        ("consultation.join", {"consultation_id": "short", "offer": OFFER},
         (ErrorCode.PERMISSION_DENIED, "consultation.not_found:")),
        ("consultation.join", {"consultation_id": rid, "offer": OFFER + "a" * 2000},
         (ErrorCode.BAD_REQUEST, "consultation.offer_too_large:")),
        ("consultation.mute", {"consultation_id": rid, "participant_id": WORKER[0],
                               "kind": "smell", "muted": True},
         (ErrorCode.BAD_REQUEST, "consultation.invalid:")),
        ("consultation.candidate", {"consultation_id": rid, "candidate": "x"},
         (ErrorCode.BAD_REQUEST, "consultation.invalid:")),
        ("consultation.candidate", {"consultation_id": rid, "candidate": {"candidate": ""}},
         (ErrorCode.BAD_REQUEST, "consultation.not_joined:")),
        ("consultation.accept", {"consultation_id": "0" * 26},
         (ErrorCode.PERMISSION_DENIED, "consultation.not_found:")),
    ]:  # fmt: skip
        code, message = await rpc_error(worker, method, data)
        assert (code, message.split(" ")[0]) == expected, (method, data, message)
    assert media.calls == []
    headers = {"Authorization": f"Bearer {tok(WORKER)}", "Content-Type": "application/sdp"}
    async with api.http.post(
        f"{api.base}{BASE}/{rid}/whip", data=OFFER + "a" * 2000, headers=headers
    ) as resp:
        body = await resp.json()
        assert (resp.status, body["error"]["code"]) == (413, "consultation.offer_too_large")
    headers["Content-Type"] = "text/plain"
    async with api.http.post(f"{api.base}{BASE}/{rid}/whip", data=OFFER, headers=headers) as resp:
        assert resp.status == 415
    bad = await api.as_(tok(HOST)).post(f"{BASE}/{rid}/participants/{WORKER[0]}/mute", {"k": 1})
    assert (bad.status, bad.code) == (422, "consultation.invalid")


async def test_whip_joins_trickles_and_leaves(
    api: Api, raw: RawConnect, media: FakeRoomMedia
) -> None:
    room = await open_room(api, invite_users=[WORKER[0]])
    rid = room["id"]
    host = await raw(HOST)
    await room_events(host, rid)
    auth = {"Authorization": f"Bearer {tok(WORKER)}"}
    async with api.http.post(
        f"{api.base}{BASE}/{rid}/whip",
        data=OFFER,
        headers={**auth, "Content-Type": "application/sdp"},
    ) as resp:
        assert resp.status == 201 and resp.content_type == "application/sdp"
        assert (await resp.text()).startswith("v=0")
        location = resp.headers["Location"]
    assert location == f"{BASE}/{rid}/whip/{WORKER[0]}"
    await next_room_event(host, rid, "consultation.participant_joined")
    frag = (
        "a=ice-ufrag:abcd\r\na=ice-pwd:secret\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=mid:0\r\na=candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n"
        "a=candidate:2 1 udp 2122260223 192.0.2.1 54322 typ host\r\na=end-of-candidates\r\n"
    )
    frag_headers = {**auth, "Content-Type": "application/trickle-ice-sdpfrag"}
    async with api.http.patch(api.base + location, data=frag, headers=frag_headers) as resp:
        assert resp.status == 204
    assert [(c[1], c[2]["sdpMid"], c[2]["sdpMLineIndex"]) for c in media.candidates] == [
        (WORKER[0], "0", 0), (WORKER[0], "1", 1),
    ]  # fmt: skip
    assert media.candidates[0][2]["candidate"].startswith("candidate:1 1 udp")
    other = f"{BASE}/{rid}/whip/{HOST[0]}"
    async with api.http.patch(api.base + other, data=frag, headers=frag_headers) as resp:
        assert resp.status == 404
    async with api.http.delete(api.base + location, headers=auth) as resp:
        assert resp.status == 204
    event = await next_room_event(host, rid, "consultation.participant_left")
    assert (event["participant_id"], event["reason"]) == (WORKER[0], "left")
    assert ("leave", rid, WORKER[0]) in media.calls
    async with api.http.delete(api.base + location, headers=auth) as resp:
        assert resp.status == 204  # leaving twice is fine


async def test_media_reports_become_room_events_and_state(
    running_hub: RunningHub, api: Api, raw: RawConnect, media: FakeRoomMedia
) -> None:
    room = await open_room(api, invite_users=[WORKER[0]])
    rid = room["id"]
    service = running_hub.hub.consultations
    assert service is not None
    host, worker = await raw(HOST), await raw(WORKER)
    await room_events(host, rid)
    await rpc(worker, "consultation.join", {"consultation_id": rid, "offer": OFFER})
    await next_room_event(host, rid, "consultation.participant_joined")
    await service.on_media_event(rid, "active_speaker", {"participant_id": WORKER[0]})
    event = await next_room_event(host, rid, "consultation.active_speaker")
    assert event["participant_id"] == WORKER[0]
    await service.on_media_event(rid, "slots", {"slots": {WORKER[0]: [HOST[0]]}})
    event = await next_room_event(host, rid, "consultation.slots")
    assert event["slots"] == {WORKER[0]: [HOST[0]]}
    lost = {"participant_id": WORKER[0], "reason": "no media for 10 s"}
    await service.on_media_event(rid, "participant_lost", lost)
    event = await next_room_event(host, rid, "consultation.participant_left")
    assert (event["participant_id"], event["reason"]) == (WORKER[0], "lost")
    detail = (await api.as_(tok(WORKER)).get(f"{BASE}/{rid}")).body
    (mine,) = [p for p in detail["participants"] if p["participant_id"] == WORKER[0]]
    assert (mine["state"], mine["leave_reason"]) == ("left", "lost")
    await service.on_media_event(rid, "bogus", {})  # ignored, logged
    await rpc(worker, "consultation.join", {"consultation_id": rid, "offer": OFFER})  # rejoin
    event = await next_room_event(host, rid, "consultation.participant_joined")
    assert event["participant_id"] == WORKER[0]


async def test_cameras_join_as_participants_and_count_towards_the_limit(
    running_hub: RunningHub, api: Api, raw: RawConnect, media: FakeRoomMedia
) -> None:
    room = await open_room(api, invite_users=[WORKER[0]])
    rid = room["id"]
    host = await raw(HOST)
    await room_events(host, rid)
    added = await api.as_(tok(HOST)).post(f"{BASE}/{rid}/cameras", {"camera_id": CAMERA})
    assert added.status == 201, added.body
    assert (added.body["participant_id"], added.body["kind"]) == (f"camera:{CAMERA}", "camera")
    event = await next_room_event(host, rid, "consultation.camera_added")
    assert (event["camera_id"], event["by"]) == (CAMERA, HOST[0])
    assert ("add_camera", rid, CAMERA) in media.calls
    hidden = await api.as_(tok(HOST)).post(
        f"{BASE}/{rid}/cameras", {"camera_id": OTHER_STREET_CAMERA}
    )
    assert (hidden.status, hidden.code) == (404, "camera.not_found")
    by_worker = await api.as_(tok(WORKER)).post(f"{BASE}/{rid}/cameras", {"camera_id": CAMERA})
    assert (by_worker.status, by_worker.code) == (403, "consultation.not_host")
    running_hub.hub.settings.consultations.max_participants = 3
    full = await api.as_(tok(HOST)).post(f"{BASE}/{rid}/invitations", {"invite_users": [LEADER[0]]})
    assert (full.status, full.code) == (409, "consultation.room_full")
    removed = await api.as_(tok(HOST)).call("DELETE", f"{BASE}/{rid}/cameras/{CAMERA}")
    assert removed.status == 204
    event = await next_room_event(host, rid, "consultation.camera_removed")
    assert event["participant_id"] == f"camera:{CAMERA}"
    assert ("remove_camera", rid, CAMERA) in media.calls
    invited = await api.as_(tok(HOST)).post(
        f"{BASE}/{rid}/invitations", {"invite_users": [LEADER[0]]}
    )
    assert invited.status == 200 and invited.body == {"invited": [LEADER[0]]}
