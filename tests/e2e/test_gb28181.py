"""GB/T 28181 in the console in a real browser: a device (the stand-in of
tests/support/gb_device.py) registers to the hub over SIP and keeps alive; a street
dispatcher sees it online in the cameras pane's "视频设备" section, sees its channel in the
camera list with a GB28181 badge, and watches the channel live over WHEP in Chromium (the
<video>'s time advances) through a single INVITE to the device; closing the player ends
the WHEP session and the hub hangs up on the device. No request leaves the machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.e2e.conftest import CAMERA_MEDIA, LIVE_INTERVAL, screenshot
from tests.e2e.test_cameras import close_player, open_console, player, plays
from tests.integration.gb28181.conftest import (
    PASSWORD,
    device_row,
    eventually,
    gb_settings,
    sip_port,
)
from tests.support.gb_device import GbDevice
from tests.support.hubs import token

STREET = "d01.s01"
DISPATCHER = token("s01-dispatcher", STREET, ["dispatcher"])
LIAISON = token("s01-liaison", STREET, ["department"])
"""A street user in a role the devices API refuses (403)."""
# Civil code 340201… maps to d01.s01 (gb_settings' civil_code_orgs), for the device (whose
# org comes from its id's first 8 digits) as for its channel (from the catalog's CivilCode).
DEVICE = "34020101001180000001"
CHANNEL = "34020101001310000001"
CHANNEL_NAME = "东门广场国标球机"
CIVIL_CODE = "34020101"
CAMERA = f"{DEVICE}_{CHANNEL}"
DEVICES_ANSWER = """
() => {
  const seen = performance.getEntriesByType("resource")
    .find((entry) => entry.name.includes("/api/v1/video-devices"));
  return seen && seen.responseStatus ? seen.responseStatus : false;
}
"""
KEEPALIVE_SECONDS = 0.2
BYE_TIMEOUT = 15.0
"""The hub hangs up once the last viewer left and the idle time (1 s here) ran out."""


@pytest.fixture
async def gb_console_hub(sqlite_backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A console hub with GB/T 28181 on (SIP on a free port of 127.0.0.1)."""
    settings = backend_settings(
        sqlite_backend,
        locations={"live_interval": LIVE_INTERVAL},
        cases={"attachments_dir": tmp_path / "attachments"},
        media=CAMERA_MEDIA,
        gb28181=gb_settings(),
    )
    running = await start_hub(settings)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def gb_device(gb_console_hub: RunningHub, camera_clip: Path) -> AsyncIterator[GbDevice]:
    """A device registered to the hub with one channel in STREET, keeping alive; its
    channel imported as a camera and a keepalive stored before the test opens the console."""
    hub = gb_console_hub
    device = GbDevice(
        hub_port=sip_port(hub),
        password=PASSWORD,
        device_id=DEVICE,
        channels=[(CHANNEL, CHANNEL_NAME, CIVIL_CODE)],
        clip=camera_clip,
    )
    await device.start()
    try:
        assert await device.register() == 200
        device.start_keepalives(KEEPALIVE_SECONDS)
        cameras = hub.hub.cameras
        assert cameras is not None

        async def imported() -> bool:
            return await cameras.get(CAMERA) is not None

        async def kept_alive() -> bool:
            row = await device_row(hub, DEVICE)
            return row is not None and row.last_keepalive_at is not None

        await eventually(imported, "the channel's camera")
        await eventually(kept_alive, "a stored keepalive")
        yield device
    finally:
        await device.close()


async def test_dispatcher_sees_the_device_online_and_watches_its_channel_live_over_whep(
    gb_console_hub: RunningHub, gb_device: GbDevice, camera_browser: Browser
) -> None:
    hub = gb_console_hub
    streams = hub.hub.streams
    assert streams is not None
    console = await open_console(camera_browser, hub, DISPATCHER)
    page = console.page
    await page.locator("#pane-tab-cameras").click()

    # The device, online, in the devices section under the cameras.
    section = page.locator("#video-devices")
    await expect(section).to_be_visible()
    await expect(section.locator("h3")).to_contain_text("视频设备")
    rows = section.locator("tbody tr")
    await expect(rows).to_have_count(1)
    device = section.locator(f'tr[data-device-id="{DEVICE}"]')
    await expect(device.locator("td.status .badge")).to_have_text("在线")
    await expect(device).to_have_class("video-device-row status-online")
    await expect(device.locator("td.transport")).to_have_text("UDP")
    await expect(device.locator("td.channels")).to_have_text("1")
    await expect(device.locator("td.keepalive")).not_to_have_text("—")
    await expect(section.locator("#video-devices-count")).to_have_text("1/1 在线")

    # Its channel in the camera list, badged; RTSP seed cameras are not.
    row = page.locator(f'#cameras tr[data-camera-id="{CAMERA}"]')
    await expect(row).to_contain_text(CHANNEL_NAME)
    await expect(row.locator(".camera-tag-gb28181")).to_have_text("GB28181")
    await expect(page.locator("#cameras .camera-tag-gb28181")).to_have_count(1)
    await screenshot(page, "gb28181_devices.png")

    # English follows the language switch.
    await page.locator("#lang-toggle").click()
    await expect(section.locator("h3")).to_contain_text("Video devices")
    await expect(device.locator("td.status .badge")).to_have_text("Online")
    await page.locator("#lang-toggle").click()
    await expect(section.locator("h3")).to_contain_text("视频设备")

    # Live over WHEP: the hub INVITEs the device once and passes its stream to Chromium.
    await row.click()
    await expect(player(page, CAMERA)).to_be_visible()
    await plays(page, CAMERA)
    await screenshot(page, "gb28181_live.png")
    assert len(gb_device.invites) == 1
    assert streams.viewers(CAMERA) == 1

    assert await close_player(page, CAMERA) == 204
    await expect(player(page, CAMERA)).to_have_count(0)
    await gb_device.wait_bye(BYE_TIMEOUT)
    assert gb_device.byes == 1
    assert len(gb_device.invites) == 1
    assert gb_device.errors == []
    assert console.errors == []


async def test_a_role_that_may_not_read_devices_sees_no_devices_section(
    gb_console_hub: RunningHub, gb_device: GbDevice, browser: Browser
) -> None:
    console = await open_console(browser, gb_console_hub, LIAISON)
    page = console.page
    await page.locator("#pane-tab-cameras").click()
    await expect(page.locator(f'#cameras tr[data-camera-id="{CAMERA}"]')).to_be_visible()
    # The role may not read devices: the console never asks (a 403 would be a console error).
    assert await page.evaluate(DEVICES_ANSWER) is False
    await expect(page.locator("#video-devices")).to_be_hidden()
    await expect(page.locator("#video-devices-error")).to_be_hidden()
    await expect(page.locator("#cameras-error")).to_be_hidden()
    assert console.errors == []
