"""WHEP live view end to end: a real RTSP camera (GStreamer serving a PyAV-made H.264 High
clip), the hub pulling it, aiortc clients watching through POST .../whep."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass, field

import aiohttp
import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from tests.conftest import RunningHub
from tests.integration.cameras.conftest import GATE, STREET
from tests.support.rtsp_server import FPS, GOP, RtspServer, frame_number, gradient_ok

HIGH_PLID = "640028"


def high_profile_offer(sdp: str) -> str:
    """An aiortc offer made to offer H.264 High, as browsers do (aiortc offers only
    constrained baseline, though its libavcodec decoder plays High)."""
    return sdp.replace("profile-level-id=42e01f", f"profile-level-id={HIGH_PLID}")


def as_local_answer(sdp: str) -> str:
    """The hub's High answer shown to the aiortc client as the baseline it offered."""
    return re.sub(r"profile-level-id=[0-9a-fA-F]{6}", "profile-level-id=42e01f", sdp)


@dataclass
class WhepViewer:
    """An aiortc WHEP client that decodes what it receives."""

    base: str
    token: str
    camera_id: str = GATE
    pc: RTCPeerConnection = field(default_factory=RTCPeerConnection)
    location: str | None = None
    answer: str = ""
    frames: list[av.VideoFrame] = field(default_factory=list)
    started: float = 0.0
    first_frame_after: float | None = None
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)
    new_frame: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def connect(self, http: aiohttp.ClientSession, *, audio: bool = False) -> None:
        """Offer (video, and audio first if ``audio``), read the answer, start receiving."""
        self.started = time.monotonic()
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        async with http.post(
            f"{self.base}/api/v1/cameras/{self.camera_id}/whep",
            data=high_profile_offer(self.pc.localDescription.sdp),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/sdp"},
        ) as resp:
            body = await resp.text()
            assert resp.status == 201, body
            assert resp.content_type == "application/sdp"
            self.location = resp.headers["Location"]
            self.answer = body
        await self.pc.setRemoteDescription(
            RTCSessionDescription(as_local_answer(self.answer), "answer")
        )
        track = transceiver.receiver.track
        self._task = asyncio.get_running_loop().create_task(self._receive(track))

    async def _receive(self, track: object) -> None:
        while True:
            try:
                frame = await track.recv()  # type: ignore[attr-defined]
            except MediaStreamError:
                return
            if self.first_frame_after is None:
                self.first_frame_after = time.monotonic() - self.started
                self.first_frame.set()
            self.frames.append(frame)
            self.new_frame.set()

    async def wait_frames(self, count: int, timeout: float = 20.0) -> None:
        """Until ``count`` frames were decoded."""
        async with asyncio.timeout(timeout):
            while len(self.frames) < count:
                self.new_frame.clear()
                await self.new_frame.wait()

    async def delete(self, http: aiohttp.ClientSession) -> int:
        """DELETE the session; the status."""
        assert self.location is not None
        async with http.delete(
            f"{self.base}{self.location}", headers={"Authorization": f"Bearer {self.token}"}
        ) as resp:
            return resp.status

    async def close(self) -> None:
        """Stop receiving and close the peer connection."""
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()


async def test_viewer_receives_the_camera_frames_passed_through_in_high_profile(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    streams = media_hub.hub.streams
    assert streams is not None
    async with aiohttp.ClientSession() as http:
        first = WhepViewer(media_hub.url, STREET.token)
        await first.connect(http)
        assert f"profile-level-id={HIGH_PLID}" in first.answer
        await first.wait_frames(40)
        numbers = [frame_number(f) for f in first.frames[:40]]
        assert all(b > a for a, b in itertools.pairwise(numbers)), numbers
        assert all(gradient_ok(f) for f in first.frames[:40])
        assert first.frames[0].width == 640 and first.frames[0].height == 360

        second = WhepViewer(media_hub.url, STREET.token)
        await second.connect(http)
        await second.wait_frames(5)
        assert first.first_frame_after is not None and second.first_frame_after is not None
        print(
            f"\ntime to first decoded frame: first viewer {first.first_frame_after * 1000:.0f}"
            f" ms (pull started cold), second viewer {second.first_frame_after * 1000:.0f} ms;"
            f" GOP {GOP / FPS * 1000:.0f} ms"
        )
        assert second.first_frame_after < GOP / FPS / 2
        assert second.first_frame_after < first.first_frame_after

        # The hub neither decoded nor encoded anything on this path.
        assert streams.counters.frames_decoded == 0
        assert streams.counters.frames_encoded == 0
        assert streams.counters.relay.packets_forwarded > 40
        assert camera.sessions == 1

        assert await first.delete(http) == 204
        assert await second.delete(http) == 204
        assert await first.delete(http) == 404
        await first.close()
        await second.close()
    assert streams.counters.peer_connections_open == 0


async def test_an_offer_that_also_asks_for_audio_gets_video_only_with_audio_declined(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    async with aiohttp.ClientSession() as http:
        viewer = WhepViewer(media_hub.url, STREET.token)
        await viewer.connect(http, audio=True)
        audio = viewer.answer.split("m=audio", 1)[1].split("m=video", 1)[0]
        # The camera's audio is not forwarded: the answer declines that section.
        assert "a=inactive" in audio
        await viewer.wait_frames(5)
        assert await viewer.delete(http) == 204
        await viewer.close()


async def test_twenty_viewers_share_one_rtsp_session(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    streams = media_hub.hub.streams
    assert streams is not None
    viewers = [WhepViewer(media_hub.url, STREET.token) for _ in range(20)]
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(v.connect(http) for v in viewers))
        await asyncio.gather(*(v.wait_frames(3, timeout=30) for v in viewers))
        assert streams.viewers(GATE) == 20
        assert streams.counters.peer_connections_open == 20
        await asyncio.gather(*(v.delete(http) for v in viewers))
    await asyncio.gather(*(v.close() for v in viewers))
    assert camera.sessions == 1
    assert streams.counters.pulls_started == 1
    assert streams.counters.peer_connections_open == 0
