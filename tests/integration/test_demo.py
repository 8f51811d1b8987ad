"""``hub demo`` drives a real hub through its public interfaces only: phones over MQTT (the
shared Mosquitto, under a per-test topic prefix), cases, notices and its camera over REST.
What it does is observed as the console would: live events on ``org:d01``, the street
leaders' personal channels, and the REST API (a snapshot of the demo camera)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from hub.demo import DemoOptions, DemoSummary, DemoTimings, run_demo
from hub.demo.camera import CAMERA_ID
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.locations.helpers import unique_mqtt
from tests.integration.mqtt.helpers import SHARED_URL, forget_session
from tests.integration.notices.helpers import Live, connect_user
from tests.support.clients import Subscriber, next_item, subscribe
from tests.support.hubs import token
from tests.support.services import require_port

pytestmark = pytest.mark.timeout(60)

WAIT = 40.0
DISTRICT = ("d01-dispatcher", "d01", ["dispatcher"])
STREET_LEADERS = [(f"s0{i}-leader", f"d01.s0{i}", ["leader"]) for i in (1, 2, 3)]
FAST = DemoTimings(
    ping_interval=0.5,
    walk_s=5.0,
    case_interval=0.3,
    notice_interval=2.0,
    wander_interval=1.0,
    wander_fixes=6,
    silence_interval=2.0,
    silence_s=3.0,
    status_interval=5.0,
    advance_probability=0.8,
    first_case_delay=0.0,
)
CAMERA_CLIP_S = 4.0
"""The demo camera's clip in these tests: short to make, long enough for a snapshot."""
ADMIN = ("admin", "d01", ["admin"])
BEYOND_REPORTED = frozenset({"assigned", "handling", "fed_back", "closed", "evaluated"})


@pytest.fixture
async def demo_hub(sqlite_backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub with MQTT on against the shared Mosquitto, boundary and offline timers short
    enough for a fast demo run to trip them."""
    require_port("127.0.0.1", 1883, "Mosquitto")
    mqtt = unique_mqtt()
    locations = {
        "boundary_confirm_s": 1.0,
        "offline_after": 1.5,
        "offline_check_interval": 0.2,
        "live_interval": 0.2,
    }
    settings = backend_settings(sqlite_backend, mqtt=mqtt, mqtt_url=SHARED_URL, locations=locations)
    running = await start_hub(settings)
    try:
        yield running
    finally:
        await running.server.close()
        await forget_session(SHARED_URL, mqtt["client_id"])


async def _first_notice_sent(leaders: list[Live]) -> dict[str, Any]:
    """The first ``notice.sent`` on any street leader's personal channel."""
    waits = [asyncio.ensure_future(leader.next_of("notice.sent")) for leader in leaders]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()  # type: ignore[no-any-return]
    finally:
        for wait in waits:
            wait.cancel()


async def _watch(console: Subscriber, until: set[str], states: set[str]) -> list[str]:
    """Read ``org:d01`` until every event type in ``until`` was seen and cases reached
    ``reported``, ``registered`` and a state beyond; returns the event types seen."""
    seen: list[str] = []
    while not (until <= set(seen) and {"reported", "registered"} <= states
               and states & BEYOND_REPORTED):  # fmt: skip
        envelope = (await next_item(console.recorder.publications, WAIT)).pub.data
        seen.append(envelope["type"])
        if envelope["type"].startswith("case."):
            states.add(envelope["data"]["state"])
    return seen


async def test_demo_drives_phones_cases_and_notices_through_the_real_interfaces(
    demo_hub: RunningHub,
) -> None:
    settings = demo_hub.hub.settings
    console = await subscribe(demo_hub.ws_url, token(*DISTRICT), "org:d01")
    leaders = [await connect_user(demo_hub.ws_url, *user) for user in STREET_LEADERS]
    options = DemoOptions(
        url=demo_hub.url,
        mqtt_url=SHARED_URL,
        topic_prefix=settings.mqtt.topic_prefix,
        workers=6,
        seed=7,
        timings=FAST,
        ready_timeout=10.0,
        camera=False,  # the camera has its own test below
    )
    lines: list[str] = []
    stop = asyncio.Event()
    demo: asyncio.Task[DemoSummary] = asyncio.ensure_future(
        run_demo(settings, options, say=lines.append, stop=stop)
    )
    states: set[str] = set()
    try:
        async with asyncio.timeout(WAIT):
            wanted = {"worker.position", "worker.left_grid", "worker.offline"}
            notice, seen = await asyncio.gather(
                _first_notice_sent(leaders), _watch(console, wanted, states)
            )
    finally:
        stop.set()
        summary = await asyncio.wait_for(demo, 15)
        await console.client.disconnect()
        for leader in leaders:
            await leader.client.disconnect()

    assert notice["data"]["recipient_count"] > 0
    assert {"worker.position", "worker.left_grid", "worker.offline"} <= set(seen)
    assert summary.pings > 0 and summary.cases_reported > 0 and summary.notices > 0
    assert any("通知" in line for line in lines), lines

    # The REST API agrees: the demo's cases stand in several states of the loop.
    headers = {"Authorization": f"Bearer {token(*DISTRICT)}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(demo_hub.url + "/api/v1/cases?limit=200", headers=headers) as resp,
    ):
        assert resp.status == 200
        cases = (await resp.json())["items"]
    stored = {c["state"] for c in cases}
    assert len(cases) >= summary.cases_reported
    assert "reported" in stored or "registered" in stored, stored
    assert stored & BEYOND_REPORTED, stored
    assert all(c["reporter_id"].endswith("-worker") for c in cases)


async def test_demo_stops_cleanly_when_cancelled(demo_hub: RunningHub) -> None:
    settings = demo_hub.hub.settings
    console = await subscribe(demo_hub.ws_url, token(*DISTRICT), "org:d01")
    options = DemoOptions(
        url=demo_hub.url,
        mqtt_url=SHARED_URL,
        topic_prefix=settings.mqtt.topic_prefix,
        workers=2,
        seed=1,
        timings=FAST,
        camera=False,
    )
    demo = asyncio.ensure_future(run_demo(settings, options, say=lambda _: None))
    try:
        async with asyncio.timeout(WAIT):
            while (await next_item(console.recorder.publications)).pub.data[
                "type"
            ] != "worker.position":
                pass
    finally:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
        await console.client.disconnect()
    assert demo.cancelled()


@pytest.fixture(scope="module")
def demo_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the demo camera's clip is made (once for the module)."""
    return tmp_path_factory.mktemp("demo-media")


async def _camera_registered(console: Subscriber) -> None:
    """Until ``org:d01`` announces a change of the demo camera."""
    while True:
        envelope = (await next_item(console.recorder.publications, WAIT)).pub.data
        if envelope["type"].startswith("camera.") and envelope["subject"] == CAMERA_ID:
            return


async def test_demo_serves_a_camera_over_rtsp_that_the_hub_opens_and_stops_it_after(
    demo_hub: RunningHub, demo_media: Path
) -> None:
    settings = demo_hub.hub.settings
    console = await subscribe(demo_hub.ws_url, token(*DISTRICT), "org:d01")
    options = DemoOptions(
        url=demo_hub.url,
        mqtt_url=SHARED_URL,
        topic_prefix=settings.mqtt.topic_prefix,
        workers=2,
        seed=3,
        timings=replace(FAST, camera_clip_s=CAMERA_CLIP_S),
        media_dir=demo_media,
    )
    lines: list[str] = []
    stop = asyncio.Event()
    demo = asyncio.ensure_future(run_demo(settings, options, say=lines.append, stop=stop))
    headers = {"Authorization": f"Bearer {token(*ADMIN)}"}
    try:
        await asyncio.wait_for(_camera_registered(console), WAIT)
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"{demo_hub.url}/api/v1/cameras/{CAMERA_ID}") as resp:
                assert resp.status == 200
                camera = await resp.json()
            snapshot = f"{demo_hub.url}/api/v1/cameras/{CAMERA_ID}/snapshot.jpg"
            async with http.get(snapshot) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.content_type == "image/jpeg"
                assert (await resp.read())[:2] == b"\xff\xd8"
    finally:
        stop.set()
        await asyncio.wait_for(demo, 15)
        await console.client.disconnect()

    # GStreamer's RTSP server is installed here (.ci/ensure-media): the demo used it, said
    # so, and stopped it with the demo.
    source = urlsplit(camera["source_url"])
    assert source.scheme == "rtsp" and source.hostname == "127.0.0.1", camera
    assert any(f"RTSP {camera['source_url']}" in line for line in lines), lines
    assert (demo_media / f"camera-{CAMERA_CLIP_S:g}s.mp4").is_file()
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", source.port)
        writer.close()
