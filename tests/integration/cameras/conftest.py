"""Fixtures of the camera registry tests: a hub on the parametrised backend with the
seed cameras and an alarm-to-case rule, the JSON API client, and signed alarm pushes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update

from hub.db.models import Camera
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.support.clients import signed_headers
from tests.support.hubs import API_KEY, token
from tests.support.rtsp_server import RtspServer, make_clip

FIRE_CATEGORY = "safety.fire"


@dataclass(frozen=True)
class Person:
    """A demo user with their org and roles."""

    id: str
    org: str
    roles: tuple[str, ...]

    @property
    def token(self) -> str:
        """A token for them."""
        return token(self.id, self.org, list(self.roles))


ADMIN = Person("admin", "d01", ("admin",))
STREET = Person("s01-dispatcher", "d01.s01", ("dispatcher",))
OTHER_STREET = Person("s02-dispatcher", "d01.s02", ("dispatcher",))
WORKER = Person("s01c01g01-worker", "d01.s01.c01.g01", ("grid_worker",))

GATE = "s01c01g01-gate"
"""A seed camera of street d01.s01 (config/cameras.json)."""
SCHOOL = "s02c01g01-school"
"""A seed camera of street d01.s02."""


@pytest.fixture
async def running_hub(backend: Backend, tmp_path: Path) -> AsyncIterator[RunningHub]:
    """A hub on the parametrised backend; fire alarms report cases."""
    settings = backend_settings(
        backend,
        cases={"attachments_dir": tmp_path / "attachments"},
        cameras={"alarm_case_rules": {"fire": FIRE_CATEGORY}},
    )
    hub = await start_hub(settings)
    try:
        yield hub
    finally:
        await hub.server.close()


@pytest.fixture
async def api(running_hub: RunningHub) -> AsyncIterator[Api]:
    """The API client, signed in as nobody (use ``as_``)."""
    async with aiohttp.ClientSession() as http:
        yield Api(http, running_hub.url, None)


async def push_alarm(
    base_url: str,
    camera_id: str,
    alarm: Any,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    **header_args: Any,
) -> tuple[int, Any]:
    """POST a signed alarm (or exactly ``body`` with ``headers``); (status, JSON body)."""
    raw = body if body is not None else json.dumps(alarm, ensure_ascii=False).encode()
    sent = headers if headers is not None else signed_headers(raw, **header_args)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base_url}/api/v1/cameras/{camera_id}/alarms", data=raw, headers=sent) as r,
    ):
        return r.status, await r.json(content_type=None)


__all__ = ["API_KEY", "push_alarm"]


MEDIA: dict[str, Any] = {
    "idle_timeout": 1.0,
    "read_timeout": 2.0,
    "open_timeout": 3.0,
    "reconnect_min_delay": 0.2,
    "reconnect_max_delay": 1.0,
    "ready_timeout": 8.0,
}
"""Media settings of the test hubs: short timers so pulls stop and reconnect quickly."""


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The camera's clip (H.264 High, frame numbers drawn in), made once."""
    return make_clip(tmp_path_factory.mktemp("media") / "camera.mp4")


@pytest.fixture
def camera(clip: Path) -> Iterator[RtspServer]:
    """A running RTSP camera serving the clip."""
    server = RtspServer(clip)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def start_camera_hub(
    backend: Backend,
    tmp_path: Path,
    camera: RtspServer,
    *,
    media: dict[str, Any] | None = None,
    **settings: Any,
) -> RunningHub:
    """A hub on ``backend`` whose camera GATE is ``camera`` (MEDIA timers, ``media`` over
    them, other settings groups as given)."""
    running = await start_hub(
        backend_settings(
            backend,
            cases={"attachments_dir": tmp_path / "attachments"},
            media={**MEDIA, **(media or {})},
            **settings,
        )
    )
    async with running.hub.sessions() as session, session.begin():
        await session.execute(update(Camera).where(Camera.id == GATE).values(source_url=camera.url))
    return running


@pytest.fixture
async def media_hub(
    sqlite_backend: Backend, tmp_path: Path, camera: RtspServer
) -> AsyncIterator[RunningHub]:
    """A SQLite hub whose camera GATE is the test RTSP server."""
    running = await start_camera_hub(sqlite_backend, tmp_path, camera)
    try:
        yield running
    finally:
        await running.server.close()
