"""Catalogs: a device's channels, sent in several GB2312 messages, become cameras in the
orgs their CivilCodes map to; the REST API lists the device and its channels."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from hub.db.models import Camera
from tests.conftest import RunningHub
from tests.integration.gb28181.conftest import DeviceFactory, eventually
from tests.support.hubs import token

NVR = "34020000001110000001"
STREETS = {"34020101": "d01.s01", "34020201": "d01.s02"}
NAMES = ("东门广场", "西湖路口", "北站停车场", "人民医院南门", "鑫源小区")


def channels(count: int) -> list[tuple[str, str, str]]:
    """``count`` channels: Chinese names, alternating between two streets' CivilCodes."""
    made = []
    for n in range(count):
        civil = list(STREETS)[n % 2]
        made.append((f"3402000000132{n:07d}", f"{NAMES[n % len(NAMES)]}{n}号", civil))
    return made


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_catalog_of_300_channels_in_several_messages_is_imported_whole(
    gb_hub: RunningHub, devices: DeviceFactory, transport: str
) -> None:
    sent = channels(300)
    nvr = await devices(device_id=NVR, transport=transport, channels=sent, catalog_per_message=7)
    assert await nvr.register() == 200
    nvr.start_keepalives(0.2)  # the import may outlast the keepalive supervision (1.5 s)

    async def imported() -> bool:
        async with gb_hub.hub.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(Camera).where(Camera.id.like(f"{NVR}_%"))
            )
        return count == len(sent)

    await eventually(imported, "300 cameras from the catalog")
    assert nvr.catalog_queries == 1
    async with gb_hub.hub.sessions() as session:
        cameras = {c.id: c for c in await session.scalars(select(Camera))}
    for channel_id, name, civil in sent:
        camera = cameras[f"{NVR}_{channel_id}"]
        assert camera.name == name  # GB2312 decoded right
        assert camera.org == STREETS[civil]
        assert camera.source_url == f"gb28181://{NVR}/{channel_id}"

    headers = {"Authorization": f"Bearer {token('admin', 'd01', ['admin'])}"}
    body: dict[str, Any] = {}

    async def online() -> bool:
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.get(f"{gb_hub.url}/api/v1/video-devices/{NVR}") as resp,
        ):
            assert resp.status == 200
            body.update(await resp.json())
        return bool(body["status"] == "online")

    # A loaded machine can stall the keepalives past the supervision while the import
    # runs; the device is then marked offline and comes back with its next keepalive.
    await eventually(online, "the device reported online after the import")
    assert body["registered"] is True
    assert body["transport"] == transport and body["last_keepalive_at"]
    assert body["channel_count"] == 300
    assert [c["channel_id"] for c in body["channels"]] == sorted(c[0] for c in sent)
    assert body["channels"][0]["name"] == sent[0][1]


async def test_a_street_dispatcher_sees_the_device_with_only_the_streets_channels(
    gb_hub: RunningHub, devices: DeviceFactory
) -> None:
    sent = channels(4)  # two in d01.s01, two in d01.s02
    nvr = await devices(device_id=NVR, channels=sent)
    assert await nvr.register() == 200
    nvr.start_keepalives(0.2)

    async def imported() -> bool:
        row = await gb_hub.hub.video_devices.device(NVR)  # type: ignore[union-attr]
        return row is not None and len(row[1]) == 4

    await eventually(imported, "the catalog import after registration")
    street = {"Authorization": f"Bearer {token('s02-dispatcher', 'd01.s02', ['dispatcher'])}"}
    elsewhere = {"Authorization": f"Bearer {token('s03-dispatcher', 'd01.s03', ['dispatcher'])}"}
    district = {"Authorization": f"Bearer {token('admin', 'd01', ['admin'])}"}
    device_url = f"{gb_hub.url}/api/v1/video-devices/{NVR}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gb_hub.url}/api/v1/video-devices", headers=district) as resp:
            assert resp.status == 200
            assert [d["id"] for d in (await resp.json())["items"]] == [NVR]
        async with http.get(f"{gb_hub.url}/api/v1/video-devices", headers=street) as resp:
            assert [d["id"] for d in (await resp.json())["items"]] == [NVR]  # via its channels
        async with http.get(device_url, headers=street) as resp:
            assert resp.status == 200
            shown = [c["channel_id"] for c in (await resp.json())["channels"]]
            assert shown == [c[0] for c in sent if STREETS[c[2]] == "d01.s02"]
        async with http.get(f"{gb_hub.url}/api/v1/video-devices", headers=elsewhere) as resp:
            assert (await resp.json())["items"] == []
        async with http.get(device_url, headers=elsewhere) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "video_device.not_found"
        async with http.post(f"{device_url}/catalog", headers=district) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["added"] == 0  # all four were imported on registration
    assert nvr.catalog_queries == 2

    async def described() -> bool:  # each sync also asks DeviceInfo; the answer is stored
        row = await gb_hub.hub.video_devices.device(NVR)  # type: ignore[union-attr]
        return row is not None and row[0].manufacturer == "GridHub" and row[0].model == "StandIn"

    await eventually(described, "the device's DeviceInfo stored")
