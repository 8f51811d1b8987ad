"""Video calls between consultation rooms and video network terminals, with baresip as the
terminal and aiortc peers as the room's other participants: call out and call in carry the
terminal's picture and tone into the room and the room's picture to the terminal without
re-encoding video; a terminal that dies is dropped within the RTP timeout while the others
keep their media; bad SIP from the gateway side gets the right answer and leaks nothing."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.videonet.calls import CallAdapter
from hub.consultations.media import ConsultationMedia
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.integration.consultations.conftest import tok
from tests.integration.consultations.test_media import join, room_event, slots_until
from tests.integration.consultations.test_rooms import BASE, HOST, LEADER, open_room, rpc
from tests.support.baresip import Baresip, free_sip_port
from tests.support.rawws import RawClient, eventually
from tests.support.room_peers import Participant, colour_close, dominant_hz
from tests.support.videonet_media import (
    BLUE,
    colour_distance,
    dominant_colour,
    make_solid_clip,
)

USERNAME = "gateway-user"
PASSWORD = "gateway-pa55"
REALM = "gridhub-test"
RTP_TIMEOUT = 2.0
MEDIA_WAIT = 30.0
TERMINAL_HZ = 440
HOST_RGB, LEADER_RGB = (255, 0, 0), (0, 255, 0)
HOST_HZ, LEADER_HZ = 880.0, 660.0


def call_settings(gateway_port: int, **overrides: Any) -> dict[str, Any]:
    """The calls' settings for tests: the gateway is the test's terminal (or a socket)."""
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 0,
        "gateway_host": "127.0.0.1",
        "gateway_port": gateway_port,
        "username": USERNAME,
        "password": PASSWORD,
        "realm": REALM,
        "rtp_timeout": RTP_TIMEOUT,
        "gateway_check_interval": 0.5,
        "gateway_misses": 2,
        "request_timeout": 2.0,
        "ring_timeout": 10.0,
        "media_port_min": 42000 + (gateway_port % 50) * 100,
        "media_port_max": 42000 + (gateway_port % 50) * 100 + 99,
    }
    values.update(overrides)
    return values


async def start_call_hub(backend: Backend, tmp_path: Path, gateway_port: int) -> RunningHub:
    """A hub with rooms and calls through the gateway on ``gateway_port``."""
    return await start_hub(
        backend_settings(
            backend,
            consultations={"participant_timeout": 3.0, "connect_timeout": 10.0,
                           "recordings_dir": tmp_path / "rooms", "record": False},
            videonet={"calls": call_settings(gateway_port)},
        )
    )  # fmt: skip


def calls_of(running: RunningHub) -> CallAdapter:
    """The hub's call adapter."""
    adapter = running.hub.calls
    assert adapter is not None
    return adapter


def media_of(running: RunningHub) -> ConsultationMedia:
    """The hub's media plane."""
    media = running.hub.consultation_media
    assert isinstance(media, ConsultationMedia)
    return media


class Console:
    """The hub's API and protocol clients as the tests' users, and their aiortc peers;
    everything closed on exit."""

    def __init__(self, running: RunningHub) -> None:
        self.running = running
        self.http = aiohttp.ClientSession()
        self.api = Api(self.http, running.url, None)
        self.clients: list[RawClient] = []
        self.participants: list[Participant] = []

    async def connect(self, who: Any) -> RawClient:
        """A protocol client signed in as ``who``."""
        client, _ = await RawClient.connected(self.running.ws_url, tok(who))
        self.clients.append(client)
        return client

    async def __aenter__(self) -> Console:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for participant in self.participants:
            await participant.close()
        for client in self.clients:
            await client.close()
        await self.http.close()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """The terminal's camera: a blue picture."""
    return make_solid_clip(tmp_path / "terminal.mp4", BLUE)


def sees_terminal(viewer: Participant, source: str, frames: int = 25) -> bool:
    """Whether ``viewer`` decoded enough of the terminal's picture and tone."""
    return viewer.frames_from(source, "video") >= frames and len(viewer.audio_from(source)) >= 50


def is_terminal(viewer: Participant, source: str) -> bool:
    """The terminal's blue picture and its 440 Hz tone."""
    colour = viewer.last_colour(source)
    return (
        colour is not None
        and colour_distance(colour, BLUE) < 60
        and abs(dominant_hz(viewer.audio_from(source)) - TERMINAL_HZ) < 20
    )


async def host_in_room(
    console: Console, invite: list[str] | None = None
) -> tuple[str, RawClient, Participant]:
    """HOST opens a room (inviting ``invite``), subscribes to it and joins with red/880 Hz."""
    room_id = (await open_room(console.api, invite_users=invite or []))["id"]
    host_ws = await console.connect(HOST)
    await rpc_subscribe(host_ws, room_id)
    host = Participant(HOST[0], HOST_RGB, HOST_HZ)
    console.participants.append(host)
    await join(host_ws, room_id, host)
    return room_id, host_ws, host


async def rpc_subscribe(client: RawClient, room_id: str) -> None:
    """Subscribe to ``room:<id>``."""
    await client.result("subscribe", {"channel": f"room:{room_id}"})


async def terminal_slots(
    client: RawClient, room_id: str, pid: str, everyone: list[Participant]
) -> None:
    """Wait until every participant is shown the terminal (and the others)."""
    names = [p.name for p in everyone]
    wanted = {p.name: {pid, *(n for n in names if n != p.name)} for p in everyone}
    await slots_until(client, room_id, wanted, everyone)


async def test_call_out_carries_media_both_ways_without_reencoding(
    sqlite_backend: Backend, tmp_path: Path, clip: Path
) -> None:
    async with Baresip(tmp_path / "terminal", user="t1001", answermode="auto", clip=clip,
                       sine_hz=TERMINAL_HZ) as terminal:  # fmt: skip
        running = await start_call_hub(sqlite_backend, tmp_path, terminal.sip_port)
        try:
            await _call_out(running, terminal, tmp_path)
        finally:
            await running.server.close()


async def _call_out(running: RunningHub, terminal: Baresip, tmp_path: Path) -> None:
    async with Console(running) as console:
        api = console.api.as_(tok(HOST))
        room_id, host_ws, host = await host_in_room(console)
        reply = await api.post(
            f"{BASE}/{room_id}/terminals", {"uri": terminal.contact_uri, "name": "县中心"}
        )
        assert reply.status == 202, reply.body
        pid = reply.body["participant_id"]
        assert reply.body["kind"] == "terminal" and reply.body["state"] == "invited"
        calling = await room_event(host_ws, room_id, "consultation.terminal_call")
        assert calling["state"] == "calling"
        connected = await room_event(host_ws, room_id, "consultation.terminal_call",
                                     state="connected")  # fmt: skip
        assert connected["participant_id"] == pid and connected["direction"] == "out"
        await terminal.wait_event("CALL_ESTABLISHED", timeout=MEDIA_WAIT)
        await terminal_slots(host_ws, room_id, pid, [host])

        await eventually(lambda: sees_terminal(host, pid), "the terminal's media", MEDIA_WAIT)
        assert is_terminal(host, pid)
        await _snapshot_until(terminal, tmp_path / "received.png", HOST_RGB)

        legs = calls_of(running).leg_counters
        assert legs.video_frames_in > 0 and legs.video_frames_out > 0
        assert legs.video_frames_decoded == 0 and legs.video_frames_encoded == 0
        assert media_of(running).counters.frames_decoded == 0
        assert media_of(running).counters.frames_encoded == 0
        metrics = await _metrics(console)
        assert "hub_videonet_video_frames_encoded_total 0.0" in metrics
        assert "hub_videonet_video_frames_decoded_total 0.0" in metrics

        removed = await api.delete(f"{BASE}/{room_id}/participants/{pid}")
        assert removed.status == 204, removed.body
        ended = await room_event(host_ws, room_id, "consultation.terminal_call", state="ended")
        assert (ended["participant_id"], ended["reason"]) == (pid, "removed")
        await terminal.wait_event("CALL_CLOSED", timeout=MEDIA_WAIT)
        await eventually(lambda: not calls_of(running).calls, "the call to end")
        await eventually(lambda: calls_of(running).ports._used == set(), "its ports freed")


async def _snapshot_until(terminal: Baresip, path: Path, rgb: tuple[int, int, int]) -> None:
    """baresip's picture of what it receives, until it shows ``rgb`` (the first frames may
    still be the decoder's start)."""
    deadline = asyncio.get_running_loop().time() + MEDIA_WAIT
    colour = None
    while asyncio.get_running_loop().time() < deadline:
        await terminal.snapshot_recv(path, timeout=MEDIA_WAIT)
        colour = dominant_colour(path)
        if colour_close(colour, rgb, 60):
            return
    raise AssertionError(f"the terminal shows {colour}, not {rgb}")


async def _metrics(console: Console) -> str:
    async with console.http.get(f"{console.running.url}/metrics") as reply:
        return await reply.text()


async def test_call_in_and_a_dying_terminal_leaves_the_others_media(
    sqlite_backend: Backend, tmp_path: Path, clip: Path
) -> None:
    # The gateway is the terminal itself: it calls in from 127.0.0.1 and answers the hub's
    # OPTIONS pings on its SIP port until it is killed.
    terminal_port = free_sip_port()
    running = await start_call_hub(sqlite_backend, tmp_path, terminal_port)
    hub_port = calls_of(running).port
    try:
        async with Console(running) as console:
            room_id, host_ws, host = await host_in_room(console, invite=[LEADER[0]])
            leader_ws = await console.connect(LEADER)
            await rpc(leader_ws, "consultation.accept", {"consultation_id": room_id})
            leader = Participant(LEADER[0], LEADER_RGB, LEADER_HZ)
            console.participants.append(leader)
            await join(leader_ws, room_id, leader)
            room = await console.api.as_(tok(HOST)).get(f"{BASE}/{room_id}")
            code = room.body["dial_code"]
            assert re.fullmatch(r"[0-9]{8}", code)

            async with Baresip(tmp_path / "caller", user="t2002", clip=clip,
                               sine_hz=TERMINAL_HZ, password=PASSWORD,
                               auth_user=USERNAME, sip_port=terminal_port) as terminal:  # fmt: skip
                await terminal.dial(f"sip:{code}@127.0.0.1:{hub_port}")
                connected = await room_event(host_ws, room_id, "consultation.terminal_call",
                                             state="connected")  # fmt: skip
                pid = connected["participant_id"]
                assert connected["direction"] == "in" and pid == "terminal:t2002@127.0.0.1"
                await terminal.wait_event("CALL_ESTABLISHED", timeout=MEDIA_WAIT)
                await terminal_slots(host_ws, room_id, pid, [host, leader])
                await eventually(
                    lambda: sees_terminal(host, pid) and sees_terminal(leader, pid),
                    "the terminal's media in the room", MEDIA_WAIT,
                )  # fmt: skip
                assert is_terminal(host, pid) and is_terminal(leader, pid)
                await _snapshot_until(terminal, tmp_path / "in.png", HOST_RGB)

                await terminal.kill()  # the terminal dies mid-call
                left = await room_event(host_ws, room_id, "consultation.participant_left",
                                        participant_id=pid)  # fmt: skip
                assert left["reason"] == "hung_up"
                ended = await room_event(host_ws, room_id, "consultation.terminal_call",
                                         state="ended")  # fmt: skip
                assert ended["reason"] in ("rtp_timeout", "rtcp_bye")
            assert not calls_of(running).calls
            # The others carry on: the host still gets the leader's picture.
            before = host.frames_from(leader.name, "video")
            await eventually(lambda: host.frames_from(leader.name, "video") > before + 25,
                             "the leader's media after the terminal left", MEDIA_WAIT)  # fmt: skip
            assert colour_close(host.last_colour(leader.name) or (0, 0, 0), LEADER_RGB)
    finally:
        await running.server.close()


async def test_terminal_hangs_up_and_the_api_shows_calls(
    sqlite_backend: Backend, tmp_path: Path, clip: Path
) -> None:
    async with Baresip(tmp_path / "terminal", user="t1005", answermode="auto", clip=clip,
                       sine_hz=TERMINAL_HZ) as terminal:  # fmt: skip
        settings = call_settings(
            terminal.sip_port, terminals=[{"uri": terminal.contact_uri, "name": "县中心"}]
        )
        running = await start_hub(
            backend_settings(
                sqlite_backend,
                consultations={"recordings_dir": tmp_path / "rooms", "record": False},
                videonet={"calls": settings},
            )
        )
        try:
            async with Console(running) as console:
                api = console.api.as_(tok(HOST))
                listed = await api.get("/api/v1/videonet/terminals")
                assert listed.status == 200, listed.body
                assert listed.body == {
                    "enabled": True,
                    "items": [{"uri": terminal.contact_uri, "name": "县中心", "org": ""}],
                }
                room_id, host_ws, _host = await host_in_room(console)
                reply = await api.post(f"{BASE}/{room_id}/terminals", {"uri": terminal.contact_uri})
                assert reply.status == 202, reply.body
                pid = reply.body["participant_id"]
                await room_event(host_ws, room_id, "consultation.terminal_call",
                                 state="connected")  # fmt: skip
                status = await api.get("/api/v1/videonet/status")
                assert status.body["calls_enabled"] and status.body["calls"] == 1
                await terminal.wait_event("CALL_ESTABLISHED", timeout=MEDIA_WAIT)
                shown = await api.post(f"{BASE}/{room_id}/participants/{pid}/show",
                                       {"source": HOST[0]})  # fmt: skip
                assert shown.status == 204, shown.body
                (call,) = calls_of(running).calls
                await eventually(lambda: call.leg.showing == HOST[0], "the host's pick shown")
                await terminal.hangup()  # the terminal ends the call: its BYE
                left = await room_event(host_ws, room_id, "consultation.participant_left",
                                        participant_id=pid)  # fmt: skip
                assert left["reason"] == "hung_up"
                ended = await room_event(host_ws, room_id, "consultation.terminal_call",
                                         state="ended")  # fmt: skip
                assert ended["reason"] == "hung_up"
                room = await api.get(f"{BASE}/{room_id}")
                row = next(p for p in room.body["participants"] if p["participant_id"] == pid)
                assert (row["kind"], row["state"], row["leave_reason"]) == (
                    "terminal",
                    "left",
                    "hung_up",
                )
                assert not calls_of(running).calls
        finally:
            await running.server.close()


# -- bad SIP from the gateway side --------------------------------------------------------

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {audio} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    "m=video {video} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"
)
NO_COMMON = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n"
    "m=video 40002 RTP/AVP 98\r\na=rtpmap:98 VP8/90000\r\n"
)


class SipProbe:
    """A hand-written UDP SIP client (no hub code) on a given loopback address."""

    def __init__(self, host: str, hub_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.hub = ("127.0.0.1", hub_port)
        self.cseq = 0

    def invite(
        self, user: str, body: str, auth: str | None = None, call_id: str = "probe-1"
    ) -> str:
        """An INVITE to ``user`` at the hub."""
        self.cseq += 1
        lines = [
            f"INVITE sip:{user}@127.0.0.1:{self.hub[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bKprobe{self.cseq}",
            "Max-Forwards: 70",
            f"From: <sip:t3003@{self.host}>;tag=probe{self.cseq}",
            f"To: <sip:{user}@127.0.0.1>",
            f"Call-ID: {call_id}",
            f"CSeq: {self.cseq} INVITE",
            f"Contact: <sip:t3003@{self.host}:{self.port}>",
            "Content-Type: application/sdp",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    async def ask(self, text: str | bytes, timeout: float = 5.0) -> str:
        """Send and return the first final response (provisional ones skipped)."""
        loop = asyncio.get_running_loop()
        data = text.encode() if isinstance(text, str) else text
        await loop.sock_sendto(self.sock, data, self.hub)
        async with asyncio.timeout(timeout):
            while True:
                reply = (await loop.sock_recv(self.sock, 65535)).decode()
                status = int(reply.split(" ", 2)[1])
                if status >= 200:
                    return reply

    def close(self) -> None:
        self.sock.close()


def digest(challenge: str, method: str, uri: str, user: str, password: str) -> str:
    """An Authorization value answering a WWW-Authenticate (qop=auth, MD5)."""
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split("Digest", 1)[1]))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{params['realm']}:{password}"), md5(f"{method}:{uri}")
    cnonce, nc = "0a4f113b", "00000001"
    response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
            f'uri="{uri}", response="{response}", algorithm=MD5, qop=auth, nc={nc}, '
            f'cnonce="{cnonce}"')  # fmt: skip


def _media_lines(reply: str) -> list[str]:
    return [line for line in reply.split("\r\n") if line.startswith("m=")]


def header(reply: str, name: str) -> str:
    """A header of a reply."""
    for line in reply.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {reply!r}")


async def test_bad_sip_from_the_gateway_side_gets_the_right_answer(
    sqlite_backend: Backend, tmp_path: Path
) -> None:
    running = await start_call_hub(sqlite_backend, tmp_path, 9)
    calls = calls_of(running)
    probe = SipProbe("127.0.0.1", calls.port)
    stranger = SipProbe("127.0.0.2", calls.port)
    try:
        async with Console(running) as console:
            room_id = (await open_room(console.api))["id"]
            code = (await console.api.as_(tok(HOST)).get(f"{BASE}/{room_id}")).body["dial_code"]
        offer = OFFER.format(audio=40000, video=40002)
        uri = f"sip:{code}@127.0.0.1:{calls.port}"

        # Not the gateway's address: refused outright.
        assert " 403 " in (await stranger.ask(stranger.invite(code, offer)))[:20]
        # No credentials: challenged; wrong ones: forbidden.
        challenged = await probe.ask(probe.invite(code, offer))
        assert " 401 " in challenged[:20]
        challenge = header(challenged, "WWW-Authenticate")
        wrong = digest(challenge, "INVITE", uri, USERNAME, "not-the-password")
        assert " 403 " in (await probe.ask(probe.invite(code, offer, wrong, "probe-2")))[:20]
        # Authenticated, but no such room: 404.
        challenge = header(await probe.ask(probe.invite("99999999", offer, None, "p3")),
                           "WWW-Authenticate")  # fmt: skip
        other = f"sip:99999999@127.0.0.1:{calls.port}"
        good = digest(challenge, "INVITE", other, USERNAME, PASSWORD)
        assert " 404 " in (await probe.ask(probe.invite("99999999", offer, good, "p4")))[:20]
        # Authenticated, the room exists, no common codec: 488.
        challenge = header(await probe.ask(probe.invite(code, NO_COMMON, None, "p5")),
                           "WWW-Authenticate")  # fmt: skip
        good = digest(challenge, "INVITE", uri, USERNAME, PASSWORD)
        assert " 488 " in (await probe.ask(probe.invite(code, NO_COMMON, good, "p6")))[:20]
        # Garbage is dropped without an answer; the hub still answers afterwards.
        await asyncio.get_running_loop().sock_sendto(probe.sock, b"\x00\xffINVITE\r\n\r\n",
                                                     probe.hub)  # fmt: skip
        options = (f"OPTIONS sip:127.0.0.1:{calls.port} SIP/2.0\r\nVia: SIP/2.0/UDP "
                   f"127.0.0.1:{probe.port};branch=z9hG4bKopt\r\nMax-Forwards: 70\r\n"
                   "From: <sip:p@127.0.0.1>;tag=o\r\nTo: <sip:h@127.0.0.1>\r\nCall-ID: opt\r\n"
                   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
        assert " 200 " in (await probe.ask(options))[:20]
        # Nothing leaked: no call, no media port, no source in the room.
        assert not calls.calls
        assert calls.ports._used == set()
        room = media_of(running).rooms.get(room_id)
        assert room is None or not room.sources
        assert calls.counters.rejected.get("not_gateway") == 1
        assert calls.counters.rejected.get("forbidden") == 1
    finally:
        probe.close()
        stranger.close()
        await running.server.close()


async def test_gateway_loss_ends_its_calls(sqlite_backend: Backend, tmp_path: Path) -> None:
    """A call in whose gateway then stops answering OPTIONS is dropped (the room goes on)."""
    probe_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe_sock.bind(("127.0.0.1", 0))
    gateway_port = probe_sock.getsockname()[1]
    probe_sock.close()
    running = await start_hub(
        backend_settings(
            sqlite_backend,
            consultations={"recordings_dir": tmp_path / "rooms", "record": False},
            videonet={"calls": call_settings(gateway_port, rtp_timeout=60.0)},
        )
    )
    calls = calls_of(running)
    probe = SipProbe("127.0.0.1", calls.port)
    try:
        async with Console(running) as console:
            room_id = (await open_room(console.api))["id"]
            code = (await console.api.as_(tok(HOST)).get(f"{BASE}/{room_id}")).body["dial_code"]
        uri = f"sip:{code}@127.0.0.1:{calls.port}"
        offer = OFFER.format(audio=40010, video=40012)
        challenge = header(await probe.ask(probe.invite(code, offer, None, "g1")),
                           "WWW-Authenticate")  # fmt: skip
        answered = await probe.ask(
            probe.invite(code, offer, digest(challenge, "INVITE", uri, USERNAME, PASSWORD), "g2")
        )
        assert " 200 " in answered[:20] and "m=video" in answered
        assert len(calls.calls) == 1
        # A session refresh (re-INVITE) is answered with the media the call already has.
        refreshed = await probe.ask(probe.invite(code, offer, None, "g2"))
        assert " 200 " in refreshed[:20]
        assert _media_lines(refreshed) == _media_lines(answered)
        assert len(calls.calls) == 1
        # Nothing answers the hub's OPTIONS pings at the gateway's port: after two misses
        # the call is dropped.
        await eventually(lambda: not calls.calls, "the call to be dropped", 15.0)
        assert calls.counters.gateway_lost == 1
        assert calls.counters.ended.get("gateway_lost") == 1
        # The call leaves the list before its leg has closed: wait for the ports to return.
        await eventually(lambda: calls.ports._used == set(), "the call's ports to be freed")
    finally:
        probe.close()
        await running.server.close()
