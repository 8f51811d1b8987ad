"""Live view of a GB/T 28181 channel: WHEP viewers (aiortc) watch it through the same
shared fan-out as RTSP cameras; the hub INVITEs the device once (unique SSRC, TCP passive
by default), demuxes its PS stream without re-encoding, and hangs up after the idle time."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import Backend, RunningHub
from tests.integration.cameras.conftest import STREET
from tests.integration.cameras.test_whep import WhepViewer
from tests.integration.gb28181.conftest import (
    CAMERA,
    DEVICE,
    STREET_CIVIL,
    channel_device,
    eventually,
    start_gb_hub,
)
from tests.support.gb_device import GbDevice
from tests.support.rtsp_server import frame_number, gradient_ok, make_clip


@pytest.fixture(scope="module")
def numbered_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The RTSP tests' clip (H.264 High, each frame's number drawn in) for the device."""
    return make_clip(tmp_path_factory.mktemp("gb-live") / "numbered.mp4")


async def _device(running: RunningHub, clip: Path) -> AsyncIterator[GbDevice]:
    """The channel device for the length of one ``async for`` body."""
    device = await channel_device(running, clip)
    try:
        yield device
    finally:
        await device.close()


@pytest.mark.parametrize("media_transport", ["tcp_passive", "udp", "tcp_active"])
async def test_whep_viewers_watch_a_channel_through_one_invite_and_the_last_one_leaving_hangs_up(
    sqlite_backend: Backend, tmp_path: Path, numbered_clip: Path, media_transport: str
) -> None:
    # Ten viewers decode in this process, alongside the hub and the device: on a slow
    # machine that can starve the loop past the tests' 2 s read timeout, which is not
    # what this test is about.
    running = await start_gb_hub(
        sqlite_backend, tmp_path, media={"read_timeout": 8.0}, media_transport=media_transport
    )
    viewers: list[WhepViewer] = []
    try:
        async for device in _device(running, numbered_clip):
            streams = running.hub.streams
            assert streams is not None
            async with aiohttp.ClientSession() as http:
                first = WhepViewer(running.url, STREET.token, camera_id=CAMERA)
                viewers.append(first)
                await first.connect(http)
                await first.wait_frames(30)

                invite = device.invites[0]
                assert invite.transport == ("udp" if media_transport == "udp" else "tcp")
                expected_setup = {"tcp_passive": "passive", "tcp_active": "active", "udp": None}
                assert invite.setup == expected_setup[media_transport]
                assert len(invite.ssrc) == 10 and invite.ssrc.isdigit()
                assert invite.ssrc.startswith("0")  # live, not playback
                assert invite.media_host == "127.0.0.1"  # the explicit media IP
                assert "s=Play" in invite.sdp and "PS/90000" in invite.sdp

                numbers = [frame_number(f) for f in first.frames[:30]]
                assert all(b > a for a, b in itertools.pairwise(numbers)), numbers
                assert all(gradient_ok(f) for f in first.frames[:30])
                assert (first.frames[0].width, first.frames[0].height) == (640, 360)

                async def codec_stored() -> bool:
                    found = await running.hub.video_devices.device(DEVICE)  # type: ignore[union-attr]
                    return found is not None and found[1][0].codec == "h264"

                await eventually(codec_stored, "the channel's codec in the device listing")

                for _ in range(9):
                    viewer = WhepViewer(running.url, STREET.token, camera_id=CAMERA)
                    viewers.append(viewer)
                    await viewer.connect(http)
                for viewer in viewers[1:]:
                    await viewer.wait_frames(5)
                assert len(device.invites) == 1  # ten viewers, one stream from the device
                assert streams.viewers(CAMERA) == 10
                assert streams.counters.frames_decoded == 0  # passed through: no decoding,
                assert streams.counters.frames_encoded == 0  # no re-encoding

                for viewer in viewers:
                    assert await viewer.delete(http) == 204
                    await viewer.close()
                await device.wait_bye()  # after the idle time (1 s in the test hubs)
                assert device.byes == 1
                adapter = running.hub.gb28181
                assert adapter is not None and adapter.counters.invites == {"ok": 1}
    finally:
        for viewer in viewers:
            await viewer.close()
        await running.server.close()


async def test_two_channels_live_at_once_get_different_ssrcs(
    sqlite_gb_hub: RunningHub, numbered_clip: Path
) -> None:
    second = "34020100001320000002"
    async for device in _device(sqlite_gb_hub, numbered_clip):
        device.channels.append((second, "西门", STREET_CIVIL))
        adapter = sqlite_gb_hub.hub.gb28181
        assert adapter is not None
        assert await adapter.catalog.sync(DEVICE) is not None
        async with aiohttp.ClientSession() as http:
            one = WhepViewer(sqlite_gb_hub.url, STREET.token, camera_id=CAMERA)
            two = WhepViewer(sqlite_gb_hub.url, STREET.token, camera_id=f"{DEVICE}_{second}")
            try:
                await one.connect(http)
                await two.connect(http)
                await one.wait_frames(5)
                await two.wait_frames(5)
            finally:
                await one.close()
                await two.close()
        assert len(device.invites) == 2
        assert device.invites[0].ssrc != device.invites[1].ssrc
