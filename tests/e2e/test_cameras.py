"""Cameras in the console (雪亮工程) in a real browser against real RTSP cameras: a street
dispatcher sees the street's cameras as map markers and in the camera list, opens one from
its marker and one from the list, and both play live over WHEP (the <video>'s time advances);
a snapshot shows the camera's picture; closing a player ends its WHEP session on the hub; a
camera that goes dark is greyed on the map; a camera alarm flashes the marker and raises a
toast whose button opens the camera. No request leaves the machine (the e2e guard)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from playwright.async_api import Browser, Locator, Page, expect

from tests.conftest import RunningHub
from tests.e2e.conftest import Console, screenshot
from tests.e2e.conftest import open_console as shared_open_console
from tests.support.clients import signed_headers
from tests.support.hubs import token
from tests.support.rtsp_server import HEIGHT, WIDTH, RtspServer

STREET = "d01.s01"
DISPATCHER = token("s01-dispatcher", STREET, ["dispatcher"])
GATE = "s01c01g01-gate"
MARKET = "s01c02-market"
CROSSING = "s01-crossing"
STREET_CAMERAS = (GATE, MARKET, CROSSING)
OTHER_STREET_CAMERA = "s02c01g01-school"
PLAYED_SECONDS = 1.0
VIDEO_TIMEOUT_MS = 30_000
"""First picture: RTSP pull, ICE and DTLS on a busy test machine."""
OFFLINE_TIMEOUT_MS = 30_000
"""A dark camera: the pull's read timeout, then reconnect attempts with backoff."""

PLAYING = """
([id, seconds]) => {
  const video = document.querySelector(`.camera-player[data-camera-id="${id}"] video`);
  return video !== null && video.videoWidth > 0 && video.currentTime > seconds;
}
"""

SNAPSHOT_LOADED = """
(id) => {
  const img = document.querySelector(
    `.camera-player[data-camera-id="${id}"] img.camera-snapshot-image`);
  return img !== null && img.complete && img.naturalWidth > 0 ? img.naturalWidth : false;
}
"""


async def open_console(
    browser: Browser, hub: RunningHub, bearer: str, width: int = 1920, height: int = 1080
) -> Console:
    """The console signed in with ``bearer`` (1920×1080 unless told), subscribed."""
    console = await shared_open_console(
        browser, hub, bearer, viewport={"width": width, "height": height}
    )
    await expect(console.page.locator("body")).to_have_attribute("data-subscription", "subscribed")
    return console


def marker(page: Page, camera_id: str) -> Locator:
    """The camera's marker on the map."""
    return page.locator(f'#map g.camera-marker[data-camera-id="{camera_id}"]')


def player(page: Page, camera_id: str) -> Locator:
    """The camera's floating player."""
    return page.locator(f'#camera-players .camera-player[data-camera-id="{camera_id}"]')


async def plays(page: Page, camera_id: str) -> None:
    """Until the camera's <video> shows the clip and its time has run past PLAYED_SECONDS."""
    await page.wait_for_function(PLAYING, arg=[camera_id, PLAYED_SECONDS], timeout=VIDEO_TIMEOUT_MS)
    await expect(player(page, camera_id)).to_have_attribute("data-state", "playing")
    size = (
        await player(page, camera_id)
        .locator("video")
        .evaluate("(v) => [v.videoWidth, v.videoHeight]")
    )
    assert size == [WIDTH, HEIGHT]


async def close_player(page: Page, camera_id: str) -> int:
    """Close the camera's player; the status of the DELETE of its WHEP session."""
    async with page.expect_response(
        lambda r: r.request.method == "DELETE" and f"/cameras/{camera_id}/whep/" in r.url
    ) as deleted:
        await player(page, camera_id).locator(".camera-player-close").click()
    return (await deleted.value).status


async def test_dispatcher_watches_two_cameras_live_takes_a_snapshot_and_closing_ends_the_session(
    camera_hub: RunningHub, camera_browser: Browser
) -> None:
    hub = camera_hub
    streams = hub.hub.streams
    assert streams is not None
    console = await open_console(camera_browser, hub, DISPATCHER)
    page = console.page
    for camera_id in STREET_CAMERAS:
        await expect(marker(page, camera_id)).to_be_visible()
    await expect(page.locator("#map g.camera-marker")).to_have_count(len(STREET_CAMERAS))
    await expect(marker(page, OTHER_STREET_CAMERA)).to_have_count(0)
    await screenshot(page, "cameras_map.png")

    await marker(page, GATE).click()
    await expect(player(page, GATE)).to_be_visible()
    await plays(page, GATE)
    await expect(marker(page, GATE)).to_have_attribute("data-status", "online")
    await expect(marker(page, GATE)).to_have_class("camera-marker status-online open")
    gate = player(page, GATE)
    await expect(gate.locator(".camera-ptz")).to_be_hidden()  # the gate camera has no PTZ

    await gate.locator(".camera-snapshot").click()
    await expect(gate.locator("img.camera-snapshot-image")).to_be_visible()
    width = await page.wait_for_function(SNAPSHOT_LOADED, arg=GATE)
    assert await width.json_value() == WIDTH

    # The second camera from the list beside the map: it has PTZ, which the hub cannot drive.
    await page.locator("#pane-tab-cameras").click()
    rows = page.locator("#cameras tbody tr")
    await expect(rows).to_have_count(len(STREET_CAMERAS))
    await page.locator(f'#cameras tr[data-camera-id="{MARKET}"]').click()
    await plays(page, MARKET)
    ptz = player(page, MARKET).locator(".camera-ptz")
    await expect(ptz).to_be_disabled()
    await expect(ptz).to_have_attribute("title", "云台控制暂不支持")
    assert streams.counters.peer_connections_open == 2
    await screenshot(page, "camera_players.png")
    await page.set_viewport_size({"width": 1366, "height": 768})
    await expect(player(page, MARKET)).to_be_in_viewport()
    await expect(player(page, GATE)).to_be_in_viewport()
    await screenshot(page, "camera_players_1366.png")

    assert await close_player(page, MARKET) == 204
    await expect(player(page, MARKET)).to_have_count(0)
    assert streams.counters.peer_connections_open == 1
    await expect(marker(page, MARKET)).not_to_have_class("camera-marker status-online open")
    assert await close_player(page, GATE) == 204
    assert streams.counters.peer_connections_open == 0
    await expect(page.locator("#camera-players")).to_be_hidden()

    assert console.errors == []


async def push_alarm(hub: RunningHub, camera_id: str, alarm: dict[str, Any]) -> None:
    """A camera platform's signed alarm (POST .../alarms), accepted."""
    body = json.dumps(alarm, ensure_ascii=False).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{hub.url}/api/v1/cameras/{camera_id}/alarms", data=body, headers=signed_headers(body)
        ) as response,
    ):
        assert response.status == 202, await response.text()


async def test_a_dark_camera_is_greyed_and_an_alarm_toast_opens_the_camera(
    camera_hub: RunningHub, camera_browser: Browser, rtsp_cameras: dict[str, RtspServer]
) -> None:
    hub = camera_hub
    console = await open_console(camera_browser, hub, DISPATCHER, 1366, 768)
    page = console.page
    await marker(page, GATE).click()
    await plays(page, GATE)

    rtsp_cameras[GATE].stop()
    await expect(marker(page, GATE)).to_have_attribute(
        "data-status", "offline", timeout=OFFLINE_TIMEOUT_MS
    )
    await expect(marker(page, GATE)).to_have_css("opacity", "0.7")
    await expect(player(page, GATE)).to_have_attribute("data-state", "offline")

    await push_alarm(hub, MARKET, {"kind": "crowd", "level": "critical", "description": "人员聚集"})
    toast = page.locator(f'#camera-alerts .camera-toast[data-camera-id="{MARKET}"]')
    await expect(toast).to_be_visible()
    await expect(toast).to_contain_text("钢花新村农贸市场")
    await expect(marker(page, MARKET)).to_have_class("camera-marker status-unknown alarm")
    await screenshot(page, "camera_offline_alarm.png")
    await toast.locator(".camera-toast-open").click()
    await expect(toast).to_have_count(0)
    await plays(page, MARKET)
    await screenshot(page, "camera_alarm_opened.png")

    await close_player(page, MARKET)
    await close_player(page, GATE)
    assert console.errors == []
