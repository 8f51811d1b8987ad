"""PTZ of a GB/T 28181 camera through the hub's REST API arrives at the device as the
standard DeviceControl bytes (and a move stops by itself); a device's alarm becomes the
camera's camera.alarm event."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select, update

from hub.db.models import Camera, OutboxEvent
from tests.conftest import RunningHub
from tests.integration.cameras.conftest import STREET
from tests.integration.gb28181.conftest import (
    CAMERA,
    CHANNEL,
    DEVICE,
    STREET_CIVIL,
    DeviceFactory,
    enlist,
    eventually,
)

PTZ_STOP = "A50F0100000000B5"


async def _registered(running: RunningHub, devices: DeviceFactory, ptz: bool) -> object:
    device = await enlist(
        running, await devices(device_id=DEVICE, channels=[(CHANNEL, "东门广场", STREET_CIVIL)])
    )
    if ptz:  # the stand-in's catalog names no PTZType: make it a dome as an operator would
        async with running.hub.sessions() as session, session.begin():
            await session.execute(update(Camera).where(Camera.id == CAMERA).values(ptz=True))
    return device


async def test_ptz_moves_reach_the_device_as_standard_bytes_and_stop_by_themselves(
    gb_hub: RunningHub, devices: DeviceFactory
) -> None:
    device = await _registered(gb_hub, devices, ptz=True)
    auth = {"Authorization": f"Bearer {STREET.token}"}
    base = f"{gb_hub.url}/api/v1/cameras/{CAMERA}/ptz"
    async with aiohttp.ClientSession(headers=auth) as http:
        move = {"pan": 1.0, "tilt": 0.0, "zoom": 0.0, "timeout_s": 0.3}
        async with http.post(f"{base}/move", json=move) as resp:
            assert resp.status == 204, await resp.text()
        assert await device.next_ptz() == "A50F0101FF0000B5"  # right at full speed
        assert await device.next_ptz() == PTZ_STOP  # timeout_s later, by itself

        async with http.post(f"{base}/move", json={"tilt": -0.5, "timeout_s": 5}) as resp:
            assert resp.status == 204
        assert await device.next_ptz() == "A50F010400800039"  # down at half speed
        async with http.post(f"{base}/stop") as resp:
            assert resp.status == 204
        assert await device.next_ptz() == PTZ_STOP
        async with http.get(f"{base}/presets") as resp:
            assert resp.status == 409
    adapter = gb_hub.hub.gb28181
    assert adapter is not None and adapter.counters.ptz_commands == 4


async def test_a_camera_without_ptz_is_not_steered(
    gb_hub: RunningHub, devices: DeviceFactory
) -> None:
    device = await _registered(gb_hub, devices, ptz=False)
    auth = {"Authorization": f"Bearer {STREET.token}"}
    async with (
        aiohttp.ClientSession(headers=auth) as http,
        http.post(f"{gb_hub.url}/api/v1/cameras/{CAMERA}/ptz/move", json={"pan": 1}) as resp,
    ):
        assert resp.status == 409
    assert device.ptz_commands == []


async def test_a_device_alarm_becomes_the_cameras_alarm_event(
    gb_hub: RunningHub, devices: DeviceFactory
) -> None:
    device = await _registered(gb_hub, devices, ptz=False)
    assert await device.send_alarm(priority=1, method=5, description="视频丢失报警") == 200

    async def raised() -> bool:
        async with gb_hub.hub.sessions() as session:
            payloads = list(
                await session.scalars(
                    select(OutboxEvent.payload).where(OutboxEvent.type == "camera.alarm")
                )
            )
        return any(CAMERA in p and "视频丢失报警" in p and '"critical"' in p for p in payloads)

    await eventually(raised, "camera.alarm of the channel")
    adapter = gb_hub.hub.gb28181
    assert adapter is not None and adapter.counters.alarms == 1
