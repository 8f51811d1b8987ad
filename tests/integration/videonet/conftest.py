"""Fixtures of the video network tests: an upper platform (tests/support/gb_upper.py) the
hub cascades to, a hub whose camera GATE is a real RTSP camera, and the hub's cascade."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from adapters.videonet import CascadeAdapter
from hub.db.models import Camera
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.cameras.conftest import (  # noqa: F401  (camera, clip: fixtures)
    GATE,
    MEDIA,
    camera,
    clip,
)
from tests.support.gb_upper import UpperPlatform
from tests.support.rtsp_server import RtspServer

HUB_ID = "34020000002000000077"
UPPER_ID = "34020000002000000001"
DOMAIN = "3402000000"
PASSWORD = "cascade-pa55"
WAIT = 15.0


def cascade_settings(upper_port: int, **overrides: Any) -> dict[str, Any]:
    """The hub's cascade settings for tests: fast keepalives and retries, a media port range
    of its own so parallel hubs do not collide."""
    low = random.randrange(31000, 60000, 100)
    values: dict[str, Any] = {
        "enabled": True,
        "sip_id": HUB_ID,
        "host": "127.0.0.1",
        "port": 0,
        "upper_id": UPPER_ID,
        "upper_domain": DOMAIN,
        "upper_host": "127.0.0.1",
        "upper_port": upper_port,
        "password": PASSWORD,
        "keepalive_interval": 0.3,
        "keepalive_misses": 2,
        "retry_min_delay": 0.1,
        "retry_max_delay": 0.5,
        "request_timeout": 2.0,
        "civil_codes": {"d01.s01": "34020101", "d01": "340201"},
        "catalog_batch": 2,
        "media_ip": "127.0.0.1",
        "media_port_min": low,
        "media_port_max": low + 99,
        "connect_timeout": 5.0,
    }
    values.update(overrides)
    return values


@pytest.fixture
async def upper() -> AsyncIterator[UpperPlatform]:
    """The video network's GB/T 28181 gateway, as the upper platform."""
    async with UpperPlatform(
        upper_id=UPPER_ID, domain=DOMAIN, password=PASSWORD, hub_id=HUB_ID
    ) as platform:
        yield platform


async def start_cascade_hub(
    backend: Backend,
    tmp_path: Path,
    upper_port: int,
    rtsp_camera: RtspServer | None = None,
    **cascade: Any,
) -> RunningHub:
    """A hub cascading to the upper platform on ``upper_port`` of 127.0.0.1 (``cascade``
    over the test settings), its camera GATE the test RTSP camera when given."""
    running = await start_hub(
        backend_settings(
            backend,
            cases={"attachments_dir": tmp_path / "attachments"},
            media=MEDIA,
            videonet={"cascade": cascade_settings(upper_port, **cascade)},
        )
    )
    if rtsp_camera is not None:
        async with running.hub.sessions() as session, session.begin():
            await session.execute(
                update(Camera).where(Camera.id == GATE).values(source_url=rtsp_camera.url)
            )
    return running


@pytest.fixture
async def cascade_hub(
    sqlite_backend: Backend,
    tmp_path: Path,
    upper: UpperPlatform,
    camera: RtspServer,  # noqa: F811  (the cameras' fixture)
) -> AsyncIterator[RunningHub]:
    """A SQLite hub cascading to ``upper`` over UDP, GATE being the RTSP camera."""
    running = await start_cascade_hub(sqlite_backend, tmp_path, upper.port, camera)
    try:
        yield running
    finally:
        await running.server.close()


def cascade_of(running: RunningHub) -> CascadeAdapter:
    """The hub's cascade adapter."""
    adapter = running.hub.cascade
    assert adapter is not None, "the cascade is not enabled"
    return adapter


async def camera_ids(running: RunningHub) -> list[str]:
    """Every camera id in the hub's database."""
    async with running.hub.sessions() as session:
        return list((await session.scalars(select(Camera.id))).all())


async def channel_of(running: RunningHub, camera_id: str) -> str:
    """The channel id the cascade shows ``camera_id`` as."""
    for shared in await cascade_of(running).directory.cameras():
        if shared.record.id == camera_id:
            return shared.channel_id
    raise AssertionError(f"camera {camera_id} is not shared")
