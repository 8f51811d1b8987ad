"""The transcoding fallback end to end: an H.265 camera (a PyAV-made HEVC clip served by
GStreamer's RTSP server) and forced transcoding of the H.264 camera, watched by aiortc WHEP
clients that decode what they get; one decode/encode per camera, one RTSP session."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
from aiortc import RTCSessionDescription

from tests.conftest import Backend, RunningHub
from tests.integration.cameras.conftest import GATE, STREET, start_camera_hub
from tests.integration.cameras.test_whep import (
    WhepViewer,
    as_local_answer,
    high_profile_offer,
)
from tests.support.rtsp_server import RtspServer, frame_number, gradient_ok, make_clip

HEVC_AVAILABLE = "libx265" in av.codecs_available
CLIP_SECONDS = 40.0
FRAMES = 30


@dataclass
class PathViewer(WhepViewer):
    """A WHEP viewer that asks for a media path and records which one it got."""

    query: str = ""
    media_path: str = ""
    high_offer: bool = True

    async def connect(self, http: aiohttp.ClientSession) -> None:
        """Offer (High, as browsers do, or aiortc's own constrained baseline only)."""
        self.started = time.monotonic()
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        offer = self.pc.localDescription.sdp
        async with http.post(
            f"{self.base}/api/v1/cameras/{self.camera_id}/whep{self.query}",
            data=high_profile_offer(offer) if self.high_offer else offer,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/sdp"},
        ) as resp:
            body = await resp.text()
            assert resp.status == 201, body
            self.location = resp.headers["Location"]
            self.media_path = resp.headers["X-Hub-Media-Path"]
            self.answer = body
        await self.pc.setRemoteDescription(
            RTCSessionDescription(as_local_answer(self.answer), "answer")
        )
        track = transceiver.receiver.track
        self._task = asyncio.get_running_loop().create_task(self._receive(track))


def assert_clip_frames(viewer: WhepViewer, count: int = FRAMES) -> None:
    """The viewer decoded the clip's frames, in order, with the clip's picture."""
    numbers = [frame_number(f) for f in viewer.frames[:count]]
    assert all(b > a for a, b in itertools.pairwise(numbers)), numbers
    assert all(gradient_ok(f) for f in viewer.frames[:count])


@pytest.fixture(scope="session")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The H.264 camera's clip."""
    return make_clip(tmp_path_factory.mktemp("transcode") / "camera.mp4", CLIP_SECONDS)


@pytest.fixture(scope="session")
def hevc_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The H.265 camera's clip."""
    if not HEVC_AVAILABLE:
        pytest.fail("PyAV's FFmpeg has no libx265: the H.265 camera cannot be made")
    return make_clip(tmp_path_factory.mktemp("transcode") / "hevc.mp4", CLIP_SECONDS, "h265")


def serve(clip: Path, codec: str) -> Iterator[RtspServer]:
    """A running RTSP camera serving ``clip``."""
    server = RtspServer(clip, codec=codec)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def h264_camera(h264_clip: Path) -> Iterator[RtspServer]:
    """The H.264 camera."""
    yield from serve(h264_clip, "h264")


@pytest.fixture
def hevc_camera(hevc_clip: Path) -> Iterator[RtspServer]:
    """The H.265 camera."""
    yield from serve(hevc_clip, "h265")


async def hub_watching(
    backend: Backend, tmp_path: Path, camera: RtspServer, **media: Any
) -> RunningHub:
    """A hub whose camera GATE is ``camera``."""
    return await start_camera_hub(backend, tmp_path, camera, media=media)


@pytest.fixture
async def hevc_hub(
    sqlite_backend: Backend, tmp_path: Path, hevc_camera: RtspServer
) -> AsyncIterator[RunningHub]:
    """A hub watching the H.265 camera."""
    running = await hub_watching(sqlite_backend, tmp_path, hevc_camera)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def forcing_hub(
    sqlite_backend: Backend, tmp_path: Path, h264_camera: RtspServer
) -> AsyncIterator[RunningHub]:
    """A hub watching the H.264 camera with ``media.force_transcode`` on."""
    running = await hub_watching(sqlite_backend, tmp_path, h264_camera, force_transcode=True)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def h264_hub(
    sqlite_backend: Backend, tmp_path: Path, h264_camera: RtspServer
) -> AsyncIterator[RunningHub]:
    """A hub watching the H.264 camera (passthrough unless a viewer asks otherwise)."""
    running = await hub_watching(sqlite_backend, tmp_path, h264_camera)
    try:
        yield running
    finally:
        await running.server.close()


async def test_h265_camera_is_transcoded_to_h264_a_baseline_viewer_decodes(
    hevc_hub: RunningHub, hevc_camera: RtspServer
) -> None:
    streams = hevc_hub.hub.streams
    assert streams is not None
    async with aiohttp.ClientSession() as http:
        viewer = PathViewer(hevc_hub.url, STREET.token, high_offer=False)
        await viewer.connect(http)
        assert viewer.media_path == "transcoded"
        assert "H264/90000" in viewer.answer
        await viewer.wait_frames(FRAMES, timeout=30)
        assert_clip_frames(viewer)
        assert streams.counters.frames_decoded >= FRAMES
        assert streams.counters.frames_encoded >= FRAMES
        assert [s.media_path for s in streams.sessions(GATE)] == ["transcoded"]
        assert await viewer.delete(http) == 204
        await viewer.close()
    assert hevc_camera.sessions == 1
    assert streams.counters.peer_connections_open == 0


async def test_forced_transcoding_serves_the_h264_camera_decoded_and_reencoded(
    forcing_hub: RunningHub, h264_camera: RtspServer
) -> None:
    streams = forcing_hub.hub.streams
    assert streams is not None
    async with aiohttp.ClientSession() as http:
        viewer = PathViewer(forcing_hub.url, STREET.token)
        await viewer.connect(http)
        assert viewer.media_path == "transcoded"
        assert "profile-level-id=42" in viewer.answer  # baseline, whatever the camera's
        await viewer.wait_frames(FRAMES, timeout=30)
        assert_clip_frames(viewer)
        assert streams.counters.frames_decoded >= FRAMES
        assert streams.counters.frames_encoded >= FRAMES
        assert await viewer.delete(http) == 204
        await viewer.close()
    assert h264_camera.sessions == 1


async def test_passthrough_and_transcoded_viewers_share_one_rtsp_session_and_one_encoder(
    h264_hub: RunningHub, h264_camera: RtspServer
) -> None:
    streams = h264_hub.hub.streams
    assert streams is not None
    plain = [PathViewer(h264_hub.url, STREET.token) for _ in range(2)]
    transcoded = [PathViewer(h264_hub.url, STREET.token, query="?transcode=1") for _ in range(2)]
    async with aiohttp.ClientSession() as http:
        await plain[0].connect(http)
        await plain[0].wait_frames(3, timeout=30)
        decoded_before = streams.counters.frames_decoded
        assert decoded_before == 0  # passthrough decodes nothing
        await asyncio.gather(*(v.connect(http) for v in [*transcoded, plain[1]]))
        assert [v.media_path for v in plain] == ["passthrough"] * 2
        assert [v.media_path for v in transcoded] == ["transcoded"] * 2
        await asyncio.gather(*(v.wait_frames(FRAMES, timeout=30) for v in [*plain, *transcoded]))
        for viewer in [*plain, *transcoded]:
            assert_clip_frames(viewer)
        assert streams.viewers(GATE) == 4
        # One decode and one encode per camera frame, however many transcoded viewers.
        encoded = streams.counters.frames_encoded
        decoded = streams.counters.frames_decoded
        assert decoded >= FRAMES and encoded >= FRAMES
        received = len(transcoded[0].frames) + len(transcoded[1].frames)
        assert encoded < received
        assert h264_camera.sessions == 1

        # The transcoded viewers leave: encoding stops, passthrough goes on.
        assert all([await v.delete(http) == 204 for v in transcoded])
        await asyncio.gather(*(v.close() for v in transcoded))
        stopped_at = streams.counters.frames_encoded
        seen = len(plain[0].frames)
        await plain[0].wait_frames(seen + 25, timeout=20)
        assert streams.counters.frames_encoded - stopped_at <= 2  # a frame in flight at most
        assert streams.viewers(GATE) == 2
        assert all([await v.delete(http) == 204 for v in plain])
        await asyncio.gather(*(v.close() for v in plain))
    assert h264_camera.sessions == 1
    assert streams.counters.pulls_started == 1
    assert streams.counters.peer_connections_open == 0
