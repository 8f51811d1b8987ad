"""Participant process of the consultation benchmark: aiortc participants of 4-party rooms
that send a pre-encoded clip and count what the hub relays to them without decoding.

    python -m tests.bench.room_peers URL CLIP

Every participant has one peer connection (max-bundle) offering a sendrecv audio+video pair
(its upstream, also a receive slot) and ``SLOTS - 1`` recvonly pairs, as the console does.
It sends the clip made by :func:`make_clip` — 640×480 25 fps H.264 constrained baseline
(SPS/PPS before every keyframe) and 20 ms Opus packets — as ``av.Packet``s that aiortc
packetises without encoding, looped with rebased timestamps and paced by the wall clock.
What the hub relays is counted from the receivers' taps (streams/forwarding.py), so no
frame is decoded here: this process spends its CPU on RTP, SRTP and ICE like the hub.

Commands on stdin, one per line; answers on stdout:

* ``ADD <k>`` — open k rooms (REST ``POST /api/v1/consultations`` as the host, the three
  invitees accept over the WebSocket rpc, all four join) → ``ADDED <rooms>`` or ``ERROR <text>``
* ``SNAP <n>`` → ``SNAP <n> <json>``: frames sent and received so far (:func:`snapshot`)

Exits, closing every connection, when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import struct
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import orjson
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from streams import forwarding
from tests.bench.procutil import die_with_parent, raise_nofile_limit
from tests.support.hubs import token

WIDTH, HEIGHT, FPS, GOP = 640, 480, 25, 50
CLIP_SECONDS = 10
VIDEO_BITRATE = 1_000_000
AUDIO_RATE, AUDIO_SAMPLES, AUDIO_BITRATE = 48000, 960, 32000
AUDIO_SECONDS = 2
NOISE = 4
CLOCK = {"audio": AUDIO_RATE, "video": 90000}
PERIOD = {"audio": AUDIO_SAMPLES / AUDIO_RATE, "video": 1 / FPS}
STEP = {"audio": AUDIO_SAMPLES, "video": CLOCK["video"] // FPS}
SLOTS = 3
"""Receive slots per participant: the other three of a 4-party room."""
USERS = [
    ("s01-dispatcher", "d01.s01", ["dispatcher"]),  # the host
    ("s01c01-leader", "d01.s01.c01", ["grid_leader"]),
    ("s01c01g01-worker", "d01.s01.c01.g01", ["grid_worker"]),
    ("s01c01g02-worker", "d01.s01.c01.g02", ["grid_worker"]),
]
"""Four users of street d01.s01 that its dispatcher may invite."""
BASE = "/api/v1/consultations"
RPC_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
_RECORD = struct.Struct("!cBI")


# -- the clip ---------------------------------------------------------------------------


@dataclass
class Clip:
    """Pre-encoded media: H.264 access units (Annex B) and Opus packets."""

    video: list[bytes] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    keyframes: int = 0

    @property
    def video_bitrate(self) -> float:
        """Mean bit/s of the video over the clip."""
        return sum(len(p) for p in self.video) * 8 / (len(self.video) / FPS)


def _encode_video(clip: Clip) -> None:
    rng = np.random.default_rng(11)
    texture = rng.integers(40, 220, (HEIGHT // 16, WIDTH // 16), dtype=np.uint8)
    texture = np.kron(texture, np.ones((16, 16), dtype=np.uint8))
    chroma = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
    noise = rng.integers(-NOISE, NOISE + 1, (5, HEIGHT, WIDTH), dtype=np.int16)
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS)
    codec.bit_rate = VIDEO_BITRATE
    codec.gop_size = GOP
    codec.options = {
        "preset": "veryfast", "profile": "baseline", "tune": "zerolatency", "bf": "0",
        "keyint_min": str(GOP), "sc_threshold": "0",
        "x264-params": f"repeat-headers=1:vbv-maxrate={VIDEO_BITRATE // 1000}"
                       f":vbv-bufsize={VIDEO_BITRATE // 1000}",
    }  # fmt: skip
    for n in range(CLIP_SECONDS * FPS + 1):
        frame = None
        if n < CLIP_SECONDS * FPS:
            moved = np.roll(texture, (n * 2, n * 3), axis=(0, 1)).astype(np.int16)
            y = np.clip(moved + noise[n % len(noise)], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            frame.pts = n
        for packet in codec.encode(frame):
            clip.video.append(bytes(packet))
            clip.keyframes += int(packet.is_keyframe)


def _encode_audio(clip: Clip) -> None:
    codec = av.CodecContext.create("libopus", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate, codec.layout, codec.format = AUDIO_RATE, "stereo", "s16"
    codec.bit_rate = AUDIO_BITRATE
    rng = np.random.default_rng(5)
    total = AUDIO_SECONDS * AUDIO_RATE
    t = np.arange(total)
    wave = np.sin(2 * np.pi * 440 * t / AUDIO_RATE) * 6000 + rng.normal(0, 800, total)
    samples = np.repeat(wave.astype(np.int16), 2).reshape(1, -1)
    for start in range(0, total, AUDIO_SAMPLES):
        chunk = samples[:, start * 2 : (start + AUDIO_SAMPLES) * 2]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), "s16", "stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        clip.audio += [bytes(p) for p in codec.encode(frame)]
    clip.audio += [bytes(p) for p in codec.encode(None)]
    del clip.audio[total // AUDIO_SAMPLES :]


def make_clip(path: Path) -> Clip:
    """Encode the clip once and store it at ``path``; the clip."""
    clip = Clip()
    _encode_video(clip)
    _encode_audio(clip)
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as out:
        for kind, packets in ((b"v", clip.video), (b"a", clip.audio)):
            for data in packets:
                out.write(_RECORD.pack(kind, 0, len(data)) + data)
    tmp.rename(path)
    return clip


def read_clip(path: Path) -> Clip:
    """The clip stored by :func:`make_clip`."""
    clip = Clip()
    blob = path.read_bytes()
    offset = 0
    while offset < len(blob):
        kind, _, size = _RECORD.unpack_from(blob, offset)
        offset += _RECORD.size
        (clip.video if kind == b"v" else clip.audio).append(blob[offset : offset + size])
        offset += size
    return clip


class LoopTrack(MediaStreamTrack):
    """Pre-encoded packets, looped on a continuous timeline and paced by the wall clock.
    A sender that falls more than two periods behind (a saturated process) is re-anchored
    instead of bursting to catch up: its frame rate then drops, which ``sent`` shows."""

    def __init__(self, kind: str, packets: list[bytes]) -> None:
        super().__init__()
        self.kind = kind
        self.sent = 0
        self._packets = packets
        self._period = PERIOD[kind]
        self._step = STEP[kind]
        self._tb = Fraction(1, CLOCK[kind])
        self._origin: float | None = None

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        due = self._origin + self.sent * self._period
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > 2 * self._period:
            self._origin = now - self.sent * self._period
        packet = av.Packet(self._packets[self.sent % len(self._packets)])
        packet.pts = packet.dts = self.sent * self._step
        packet.time_base = self._tb
        self.sent += 1
        return packet


# -- signalling -------------------------------------------------------------------------


class RpcError(RuntimeError):
    """The hub answered a command with an error."""


class WsClient:
    """The Centrifugo JSON protocol, just enough for ``connect`` and ``rpc``; answers the
    hub's pings and ignores its pushes."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="ws reader")

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, ws_url: str, bearer: str) -> WsClient:
        """Open the WebSocket and send ``connect``."""
        ws = await http.ws_connect(ws_url, max_msg_size=0)
        client = cls(ws)
        await client.call("connect", {"token": bearer})
        return client

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One command; its result (an RpcError for an error reply)."""
        cmd_id = next(self._ids)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[cmd_id] = waiter
        try:
            await self._ws.send_str(orjson.dumps({"id": cmd_id, method: params}).decode())
            async with asyncio.timeout(RPC_TIMEOUT):
                reply = await waiter
        finally:
            self._waiting.pop(cmd_id, None)
        if "error" in reply:
            raise RpcError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply[method]
        return result

    async def rpc(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        """An rpc method's reply data."""
        result = await self.call("rpc", {"method": method, "data": data})
        reply: dict[str, Any] = result.get("data") or {}
        return reply

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            for line in message.data.split("\n"):
                if not line.strip():
                    continue
                body = orjson.loads(line)
                if body == {}:
                    await self._ws.send_str("{}")
                    continue
                waiter = self._waiting.get(body.get("id", 0))
                if waiter is not None and not waiter.done():
                    waiter.set_result(body)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("the hub closed the WebSocket"))

    async def close(self) -> None:
        """Close the WebSocket."""
        await self._ws.close()
        self._reader.cancel()


# -- participants and rooms -------------------------------------------------------------


class Participant:
    """One participant's connection: its upstream and its counted receive slots."""

    def __init__(self, user: str, clip: Clip) -> None:
        self.user = user
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.tracks = {"audio": LoopTrack("audio", clip.audio),
                       "video": LoopTrack("video", clip.video)}  # fmt: skip
        self.received: dict[str, list[int]] = {"audio": [], "video": []}
        """Per kind, the encoded frames each receive slot assembled."""

    async def offer(self) -> str:
        """The offer: the sendrecv upstream pair, then recvonly pairs (all taps set)."""
        for index in range(SLOTS):
            for kind in ("audio", "video"):
                if index == 0:
                    transceiver = self.pc.addTransceiver(self.tracks[kind], direction="sendrecv")
                else:
                    transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                forwarding.tap_receiver(transceiver.receiver, self._counter(kind))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        return str(self.pc.localDescription.sdp)

    def _counter(self, kind: str) -> forwarding.FrameSink:
        counts = self.received[kind]
        slot = len(counts)
        counts.append(0)

        def sink(mime: str, data: bytes, timestamp: int) -> None:
            counts[slot] += 1

        return sink

    async def accept(self, answer: str) -> None:
        """Apply the hub's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()


@dataclass
class Room:
    """One 4-party room of this process."""

    room_id: str
    participants: list[Participant]


class Peers:
    """Every room of this process, their users' WebSockets and the clip they send."""

    def __init__(self, url: str, clip: Clip, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://") + "/connection/websocket"
        self.clip = clip
        self.http = http
        self.rooms: list[Room] = []
        self.tokens = {user: token(user, org, roles) for user, org, roles in USERS}
        self.clients: dict[str, WsClient] = {}

    async def start(self) -> None:
        """One WebSocket per user, shared by all rooms."""
        clients = await asyncio.gather(
            *(WsClient.connect(self.http, self.ws_url, self.tokens[u]) for u, _, _ in USERS)
        )
        self.clients = {user: c for (user, _, _), c in zip(USERS, clients, strict=True)}

    async def add_room(self) -> Room:
        """Open a room, have everyone accept and join; returns once all are answered."""
        host, *guests = (user for user, _, _ in USERS)
        headers = {"Authorization": f"Bearer {self.tokens[host]}"}
        body = {"title": "bench consultation", "invite_users": guests}
        async with self.http.post(self.url + BASE, json=body, headers=headers) as reply:
            created = await reply.json()
            if reply.status != 201:
                raise RpcError(f"POST {BASE}: {reply.status} {created}")
        room_id = created["id"]
        for guest in guests:
            await self.clients[guest].rpc("consultation.accept", {"consultation_id": room_id})
        room = Room(room_id, [Participant(user, self.clip) for user, _, _ in USERS])
        self.rooms.append(room)
        await asyncio.gather(*(self._join(room_id, p) for p in room.participants))
        return room

    async def _join(self, room_id: str, participant: Participant) -> None:
        offer = await participant.offer()
        reply = await self.clients[participant.user].rpc(
            "consultation.join", {"consultation_id": room_id, "offer": offer}
        )
        await participant.accept(reply["answer"])

    def snapshot(self) -> dict[str, Any]:
        """Totals so far: participants connected, frames sent, frames expected at the
        receivers (each source's frames × the other participants of its room), frames
        received, and the fewest video frames any receive slot got (warm-up)."""
        snap: dict[str, Any] = {"rooms": len(self.rooms), "participants": 0, "connected": 0}
        for kind in ("audio", "video"):
            snap[f"sent_{kind}"] = snap[f"expected_{kind}"] = snap[f"received_{kind}"] = 0
        min_slot: int | None = None
        for room in self.rooms:
            others = len(room.participants) - 1
            for p in room.participants:
                snap["participants"] += 1
                snap["connected"] += p.pc.connectionState == "connected"
                for kind in ("audio", "video"):
                    sent = p.tracks[kind].sent
                    snap[f"sent_{kind}"] += sent
                    snap[f"expected_{kind}"] += sent * others
                    snap[f"received_{kind}"] += sum(p.received[kind])
                fewest = min(p.received["video"][:others])
                min_slot = fewest if min_slot is None else min(min_slot, fewest)
        snap["min_slot_video"] = min_slot or 0
        return snap

    async def close(self) -> None:
        """Hang up every participant and close the WebSockets."""
        await asyncio.gather(
            *(p.close() for r in self.rooms for p in r.participants), return_exceptions=True
        )
        await asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True)


async def serve(peers: Peers) -> None:
    """Answer the orchestrator's commands until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    adding: set[asyncio.Task[None]] = set()

    async def add(count: int) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT * count):
                for _ in range(count):
                    await peers.add_room()
            print(f"ADDED {len(peers.rooms)}", flush=True)
        except Exception as err:  # report, the orchestrator decides
            print(f"ERROR {type(err).__name__}: {err}".replace("\n", " "), flush=True)

    while line := (await reader.readline()).decode().strip():
        command, _, arg = line.partition(" ")
        if command == "ADD":
            task = loop.create_task(add(int(arg)), name="add rooms")
            adding.add(task)
            task.add_done_callback(adding.discard)
        elif command == "SNAP":
            print(f"SNAP {arg} {orjson.dumps(peers.snapshot()).decode()}", flush=True)
    for task in adding:
        task.cancel()


async def main(args: argparse.Namespace) -> None:
    """Load the clip, connect the users, serve commands, hang up."""
    clip = read_clip(Path(args.clip))
    async with aiohttp.ClientSession() as http:
        peers = Peers(args.url, clip, http)
        try:
            await peers.start()
            print("READY", flush=True)
            await serve(peers)
        except Exception as err:
            print(f"ERROR {type(err).__name__}: {err}".replace("\n", " "), flush=True)
        finally:
            await peers.close()


if __name__ == "__main__":
    die_with_parent()
    raise_nofile_limit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("clip")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
