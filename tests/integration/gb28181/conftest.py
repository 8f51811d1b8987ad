"""Fixtures of the GB/T 28181 tests: a hub whose SIP server listens on a free port of
127.0.0.1, and devices (the stand-in in tests/support/gb_device.py) that register to it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.db.models import OutboxEvent, VideoDevice
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.support.gb_clip import make_clip
from tests.support.gb_device import GbDevice

PASSWORD = "gb-test-password"
DEVICE_PASSWORD = "device-own-password"
OWN_DEVICE = "34020000001180000009"
"""A device with a password of its own in the hub's config."""
MEDIA: dict[str, Any] = {
    "idle_timeout": 1.0,
    "read_timeout": 2.0,
    "reconnect_min_delay": 0.2,
    "reconnect_max_delay": 1.0,
    "ready_timeout": 8.0,
}
CIVIL_ORGS = {"340201": "d01.s01", "340202": "d01.s02", "3402": "d01"}
"""CivilCode prefixes of the test catalogs → org paths of the demo org tree."""
WAIT = 15.0
DEVICE = "34020000001320000001"
CHANNEL = "34020100001320000001"
CAMERA = f"{DEVICE}_{CHANNEL}"
"""The one-channel device most tests use, and its channel's camera."""
STREET_CIVIL = "34020101"
"""The channel's CivilCode: → d01.s01, the street of the camera tests' STREET dispatcher."""


def gb_settings(**overrides: Any) -> dict[str, Any]:
    """The hub's GB/T 28181 settings for tests (fast keepalive supervision, a media port
    range of its own so parallel hubs do not collide)."""
    low = random.randrange(31000, 60000, 100)
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": 0,
        "password": PASSWORD,
        "devices": [{"id": OWN_DEVICE, "password": DEVICE_PASSWORD}],
        "civil_code_orgs": CIVIL_ORGS,
        "keepalive_interval": 0.5,
        "keepalive_misses": 3,
        "media_ip": "127.0.0.1",
        "media_port_min": low,
        "media_port_max": low + 99,
        "invite_timeout": 5.0,
        "media_timeout": 4.0,
        "request_timeout": 4.0,
        "catalog_timeout": 10.0,
    }
    values.update(overrides)
    return values


async def start_gb_hub(
    backend: Backend,
    tmp_path: Path,
    *,
    consultations: dict[str, Any] | None = None,
    media: dict[str, Any] | None = None,
    **gb: Any,
) -> RunningHub:
    """A hub with GB/T 28181 on (``gb`` over the test settings, ``media`` over MEDIA)."""
    return await start_hub(
        backend_settings(
            backend,
            cases={"attachments_dir": tmp_path / "attachments"},
            media={**MEDIA, **(media or {})},
            gb28181=gb_settings(**gb),
            consultations={"recordings_dir": tmp_path / "rooms", **(consultations or {})},
        )
    )


def sip_port(running: RunningHub) -> int:
    """The port the hub's SIP server is bound to."""
    adapter = running.hub.gb28181
    assert adapter is not None and adapter.ready
    return adapter.port


@pytest.fixture
async def gb_hub(backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A GB/T 28181 hub on the parametrised backend."""
    running = await start_gb_hub(backend, tmp_path)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture
async def sqlite_gb_hub(sqlite_backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A GB/T 28181 hub on SQLite and the memory bus."""
    running = await start_gb_hub(sqlite_backend, tmp_path)
    try:
        yield running
    finally:
        await running.server.close()


@pytest.fixture(scope="session")
def gb_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The device's H.264 clip, made once."""
    return make_clip(tmp_path_factory.mktemp("gb") / "device.mp4")


DeviceFactory = Callable[..., Awaitable[GbDevice]]


@pytest.fixture
async def devices(gb_hub: RunningHub) -> AsyncIterator[DeviceFactory]:
    """Make started devices pointed at ``gb_hub`` (closed at the end)."""
    made: list[GbDevice] = []

    async def make(**kwargs: Any) -> GbDevice:
        kwargs.setdefault("password", PASSWORD)
        device = GbDevice(hub_port=sip_port(gb_hub), **kwargs)
        await device.start()
        made.append(device)
        return device

    try:
        yield make
    finally:
        for device in made:
            await device.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT
) -> None:
    """Wait until ``check()`` holds (polling the database: the state the test awaits is
    written by the hub's background tasks, which signal nothing a test could await)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def device_row(running: RunningHub, device_id: str) -> VideoDevice | None:
    """The stored device."""
    async with running.hub.sessions() as session:
        return await session.get(VideoDevice, device_id)


async def camera_events(running: RunningHub, event_type: str, camera_id: str) -> int:
    """How many events of ``event_type`` about ``camera_id`` were written (outbox)."""
    async with running.hub.sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.type == event_type)
        )
        return sum(1 for payload in rows if f'"subject":"{camera_id}"' in payload)


async def enlist(running: RunningHub, device: GbDevice) -> GbDevice:
    """Register a started device, keep it alive (0.2 s) and wait for its channels' cameras."""
    assert await device.register() == 200
    device.start_keepalives(0.2)

    async def imported() -> bool:
        registry = running.hub.cameras
        assert registry is not None
        ids = [f"{device.device_id}_{channel[0]}" for channel in device.channels]
        return all([await registry.get(camera_id) is not None for camera_id in ids])

    await eventually(imported, "the device's channels as cameras")
    return device


async def channel_device(running: RunningHub, clip: Path | None, **kwargs: Any) -> GbDevice:
    """DEVICE with its one channel (STREET_CIVIL), started, registered and kept alive; the
    caller closes it."""
    device = GbDevice(
        hub_port=sip_port(running), password=PASSWORD, device_id=DEVICE,
        channels=[(CHANNEL, "东门广场", STREET_CIVIL)], clip=clip, **kwargs,
    )  # fmt: skip
    await device.start()
    try:
        return await enlist(running, device)
    except BaseException:
        await device.close()
        raise
