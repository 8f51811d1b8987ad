"""Devices register to the hub with digest auth, stay online on keepalives, go offline when
they stop (their channels' cameras with them), and come back."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from adapters.gb28181 import catalog
from tests.conftest import RunningHub
from tests.integration.gb28181.conftest import (
    DEVICE_PASSWORD,
    OWN_DEVICE,
    DeviceFactory,
    camera_events,
    device_row,
    eventually,
)
from tests.support.gb_device import DEFAULT_CHANNELS
from tests.support.hubs import token

DEVICE = "34020000001320000001"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_wrong_password_gets_403_and_no_registration(
    gb_hub: RunningHub, devices: DeviceFactory, transport: str
) -> None:
    intruder = await devices(transport=transport, password="not-the-password")
    assert await intruder.register() == 403
    adapter = gb_hub.hub.gb28181
    assert adapter is not None
    assert adapter.devices.get(DEVICE) is None
    assert await device_row(gb_hub, DEVICE) is None
    assert adapter.counters.registrations.get("forbidden") == 1
    assert await intruder.keepalive() == 403  # an unregistered device's messages are refused


async def test_a_device_with_its_own_password_needs_that_one(devices: DeviceFactory) -> None:
    default_password = await devices(device_id=OWN_DEVICE)
    assert await default_password.register() == 403
    own = await devices(device_id=OWN_DEVICE, password=DEVICE_PASSWORD)
    assert await own.register() == 200


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_keepalives_keep_a_device_online_and_silence_takes_it_offline_and_back(
    gb_hub: RunningHub, devices: DeviceFactory, transport: str
) -> None:
    device = await devices(transport=transport)
    assert await device.register() == 200
    device.start_keepalives(0.2)  # online until its channels are in
    row = await device_row(gb_hub, DEVICE)
    assert row is not None and row.status == "online" and row.transport == transport
    camera_id = f"{DEVICE}_{DEFAULT_CHANNELS[0][0]}"

    async def catalog_imported() -> bool:
        return await gb_hub.hub.cameras.get(camera_id) is not None  # type: ignore[union-attr]

    await eventually(catalog_imported, "the catalog import after registration")
    await device.stop_keepalives()

    for _ in range(8):  # a device's pace: 1.6 s in all, past the 1.5 s of allowed silence
        assert await device.keepalive() == 200
        await asyncio.sleep(0.2)
    row = await device_row(gb_hub, DEVICE)
    assert row is not None and row.status == "online"

    async def offline() -> bool:
        row = await device_row(gb_hub, DEVICE)
        return row is not None and row.status == "offline"

    await eventually(offline, "the device to go offline")

    async def camera_offline() -> bool:
        return await camera_events(gb_hub, "camera.offline", camera_id) == 1

    await eventually(camera_offline, "camera.offline of its channel")
    record = await gb_hub.hub.cameras.get(camera_id)  # type: ignore[union-attr]
    assert record is not None and record.status == "offline"

    assert await device.keepalive() == 200

    async def online_again() -> bool:
        row = await device_row(gb_hub, DEVICE)
        record = await gb_hub.hub.cameras.get(camera_id)  # type: ignore[union-attr]
        return row is not None and row.status == "online" and record.status == "online"

    await eventually(online_again, "the device and its camera back online")
    assert await camera_events(gb_hub, "camera.online", camera_id) >= 1


async def test_a_stalled_hub_does_not_take_its_devices_offline(
    gb_hub: RunningHub, devices: DeviceFactory
) -> None:
    device = await devices()
    assert await device.register() == 200
    device.start_keepalives(0.2)
    adapter = gb_hub.hub.gb28181
    assert adapter is not None
    camera_id = f"{DEVICE}_{DEFAULT_CHANNELS[0][0]}"

    async def catalog_imported() -> bool:
        return await gb_hub.hub.cameras.get(camera_id) is not None  # type: ignore[union-attr]

    await eventually(catalog_imported, "the catalog import after registration")
    before = await device_row(gb_hub, DEVICE)
    assert before is not None and before.status == "online"
    sweeps = adapter.sweeps

    # The stimulus, not a wait: the hub's loop (and the device's, the same one) blocked for
    # longer than the allowed silence (3 × 0.5 s), as on a starved or suspended machine.
    time.sleep(2.5)  # noqa: ASYNC251  (the stall under test)

    async def two_sweeps_after_the_stall() -> bool:
        return adapter.sweeps >= sweeps + 2

    await eventually(two_sweeps_after_the_stall, "two supervision sweeps after the stall")
    assert adapter.counters.supervision_stalls == 1
    after = await device_row(gb_hub, DEVICE)
    assert after is not None and after.status == "online"
    assert after.status_changed_at == before.status_changed_at  # never marked offline
    assert await camera_events(gb_hub, "camera.offline", camera_id) == 0


async def test_expires_zero_unregisters(gb_hub: RunningHub, devices: DeviceFactory) -> None:
    device = await devices()
    assert await device.register() == 200
    assert await device.unregister() == 200
    adapter = gb_hub.hub.gb28181
    assert adapter is not None and adapter.devices.get(DEVICE) is None

    async def offline() -> bool:
        row = await device_row(gb_hub, DEVICE)
        return row is not None and row.status == "offline"

    await eventually(offline, "the unregistered device stored offline")
    assert await device.keepalive() == 403


async def test_metrics_count_registrations_keepalives_and_refusals(
    gb_hub: RunningHub, devices: DeviceFactory
) -> None:
    intruder = await devices(device_id="34020000001320000002", password="wrong")
    assert await intruder.register() == 403
    device = await devices()
    assert await device.register() == 200
    assert await device.keepalive() == 200
    assert await intruder.keepalive() == 403
    async with aiohttp.ClientSession() as http, http.get(f"{gb_hub.url}/metrics") as resp:
        text = await resp.text()
    for line in (
        'hub_gb28181_registrations_total{outcome="ok"} 1.0',
        'hub_gb28181_registrations_total{outcome="forbidden"} 1.0',
        "hub_gb28181_keepalives_total 1.0",
        'hub_gb28181_rejected_total{reason="unknown_device"} 1.0',
        "hub_gb28181_devices_online 1.0",
        "hub_gb28181_media_timeouts_total 0.0",
        "hub_gb28181_ssrc_mismatches_total 0.0",
    ):
        assert line in text, line


async def test_a_device_silent_at_its_first_catalog_query_is_asked_when_heard_again(
    gb_hub: RunningHub, devices: DeviceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first query waits past the supervision (1.5 s of silence, checked each second).
    monkeypatch.setattr(catalog, "FIRST_SYNC_DELAY", 3.0)
    device = await devices()
    adapter = gb_hub.hub.gb28181
    assert adapter is not None
    assert await device.register() == 200

    async def skipped() -> bool:
        return adapter.counters.catalog_syncs.get("offline") == 1

    await eventually(skipped, "the first catalog sync skipped: the device went silent")
    row = await device_row(gb_hub, DEVICE)
    assert row is not None and row.status == "offline"
    assert device.catalog_queries == 0
    admin = {"Authorization": f"Bearer {token('admin', 'd01', ['admin'])}"}
    async with (
        aiohttp.ClientSession(headers=admin) as http,
        http.post(f"{gb_hub.url}/api/v1/video-devices/{DEVICE}/catalog") as resp,
    ):
        assert resp.status == 409
        body = await resp.json()
    assert body["error"]["code"] == "video_device.offline" and "silent" in body["error"]["message"]

    device.start_keepalives(0.2)  # back, and staying
    camera_id = f"{DEVICE}_{DEFAULT_CHANNELS[0][0]}"

    async def imported() -> bool:
        return await gb_hub.hub.cameras.get(camera_id) is not None  # type: ignore[union-attr]

    await eventually(imported, "the catalog asked for once the device was heard again")
    assert device.catalog_queries == 1
