"""Camera media plane: offline/online with reconnect, snapshots, and refused WHEP requests
that leak no peer connection or pull."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import av

from tests.conftest import RunningHub
from tests.integration.cameras.conftest import ADMIN, GATE, OTHER_STREET, SCHOOL, STREET
from tests.integration.cameras.test_whep import WhepViewer, high_profile_offer
from tests.support.rtsp_server import HEIGHT, WIDTH, RtspServer, frame_number


async def _status_changes(media_hub: RunningHub) -> asyncio.Queue[tuple[str, bool]]:
    """Record every status report the media plane makes (then passes on to the registry)."""
    streams = media_hub.hub.streams
    assert streams is not None
    forward = streams._on_status
    assert forward is not None
    seen: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()

    async def record(camera_id: str, online: bool, reason: str) -> None:
        await forward(camera_id, online, reason)
        seen.put_nowait((camera_id, online))

    streams._on_status = record
    return seen


async def test_stopped_camera_goes_offline_and_comes_back_online(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    seen = await _status_changes(media_hub)
    registry = media_hub.hub.cameras
    assert registry is not None
    async with aiohttp.ClientSession() as http:
        viewer = WhepViewer(media_hub.url, STREET.token)
        await viewer.connect(http)
        await viewer.wait_frames(3)
        assert await asyncio.wait_for(seen.get(), 10) == (GATE, True)

        camera.stop()
        loop = asyncio.get_running_loop()
        stopped = loop.time()
        assert await asyncio.wait_for(seen.get(), 10) == (GATE, False)
        print(f"\ncamera.offline {loop.time() - stopped:.1f} s after the camera stopped")
        record = await registry.get(GATE)
        assert record is not None and record.status == "offline"

        camera.start()  # same port
        assert await asyncio.wait_for(seen.get(), 15) == (GATE, True)
        record = await registry.get(GATE)
        assert record is not None and record.status == "online"
        # The viewer that stayed connected gets pictures again.
        before = len(viewer.frames)
        await viewer.wait_frames(before + 5, timeout=15)
        assert await viewer.delete(http) == 204
        await viewer.close()


async def test_hung_camera_goes_offline_after_the_read_timeout(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    seen = await _status_changes(media_hub)
    async with aiohttp.ClientSession() as http:
        viewer = WhepViewer(media_hub.url, STREET.token)
        await viewer.connect(http)
        await viewer.wait_frames(3)
        assert await asyncio.wait_for(seen.get(), 10) == (GATE, True)
        camera.freeze()  # the TCP connection stays open, nothing arrives
        loop = asyncio.get_running_loop()
        frozen = loop.time()
        try:
            assert await asyncio.wait_for(seen.get(), 10) == (GATE, False)
            took = loop.time() - frozen
        finally:
            camera.thaw()
        print(f"\nhung camera: camera.offline after {took:.1f} s (read timeout 2 s)")
        assert took < 6
        assert await asyncio.wait_for(seen.get(), 15) == (GATE, True)
        await viewer.delete(http)
        await viewer.close()


async def test_snapshot_decodes_one_keyframe_and_is_cached(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    streams = media_hub.hub.streams
    assert streams is not None
    headers = {"Authorization": f"Bearer {STREET.token}"}
    url = f"{media_hub.url}/api/v1/cameras/{GATE}/snapshot.jpg"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert resp.content_type == "image/jpeg"
            jpeg = await resp.read()
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200
            assert await resp.read() == jpeg
        async with http.get(url, headers={"Authorization": f"Bearer {OTHER_STREET.token}"}) as r:
            assert r.status == 404
    codec = av.CodecContext.create("mjpeg", "r")
    frames = codec.decode(av.Packet(jpeg))
    assert frames and frames[0].width == WIDTH and frames[0].height == HEIGHT
    assert frame_number(frames[0]) % 50 == 0  # a keyframe of the GOP-50 clip
    assert streams.counters.snapshots_taken == 1
    assert streams.counters.frames_decoded == 1


async def test_refused_requests_get_clear_codes_and_leak_nothing(
    media_hub: RunningHub, camera: RtspServer
) -> None:
    streams = media_hub.hub.streams
    assert streams is not None
    probe = WhepViewer(media_hub.url, STREET.token)
    probe.pc.addTransceiver("video", direction="recvonly")
    await probe.pc.setLocalDescription(await probe.pc.createOffer())
    assert probe.pc.localDescription is not None
    good = high_profile_offer(probe.pc.localDescription.sdp)
    no_h264 = good.replace("packetization-mode=1", "packetization-mode=0")
    await probe.pc.close()

    def post(
        camera_id: str, token: str, body: str, ctype: str = "application/sdp"
    ) -> tuple[str, dict[str, Any]]:
        return (
            f"{media_hub.url}/api/v1/cameras/{camera_id}/whep",
            {"data": body, "headers": {"Authorization": f"Bearer {token}", "Content-Type": ctype}},
        )

    cases = [
        (post(GATE, STREET.token, "not sdp at all"), 400, "camera.bad_sdp"),
        (post(GATE, STREET.token, "v=0\r\nthis is broken\r\n"), 400, "camera.bad_sdp"),
        (post("no-such-camera", STREET.token, good), 404, "camera.not_found"),
        (post(SCHOOL, STREET.token, good), 404, "camera.not_found"),
        (post(GATE, OTHER_STREET.token, good), 404, "camera.not_found"),
        (post(GATE, STREET.token, "v=0\r\n" + "a=x\r\n" * 20000), 413, "request.too_large"),
        (post(GATE, STREET.token, good, "application/json"), 415, "request.unsupported_media_type"),
        (post(GATE, "garbage", good), 401, "auth.invalid_token"),
        (post(GATE, STREET.token, no_h264), 422, "camera.codec_unsupported"),
    ]
    async with aiohttp.ClientSession() as http:
        for attempt in range(100):
            (url, kwargs), status, code = cases[attempt % len(cases)]
            async with http.post(url, **kwargs) as resp:
                body = await resp.json()
                assert resp.status == status, (code, body)
                assert body["error"]["code"] == code
        async with http.delete(
            f"{media_hub.url}/api/v1/cameras/{GATE}/whep/nope",
            headers={"Authorization": f"Bearer {ADMIN.token}"},
        ) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "camera.session_not_found"
    assert streams.counters.peer_connections_open == 0
    assert not streams.sessions()
    # Only the codec refusals opened the camera, all on one pull; it stops once idle.
    assert camera.sessions <= 1
    async with asyncio.timeout(10):
        while streams.pulls_running or streams.counters.pull.threads_alive:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
