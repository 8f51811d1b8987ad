"""Fixtures of the consultation tests: a hub on the parametrised backend with the seed
directory, sending SMS through a test SMSC; the JSON API client; live SDK clients and raw
protocol clients that are always closed; and a stand-in media plane for the tests that
need one (media fixtures of the real media plane belong next to these)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api, reset_directory
from tests.integration.consultations.fakes import FakeRoomMedia
from tests.integration.notices.helpers import Live, connect_user
from tests.support.hubs import token
from tests.support.rawws import RawClient
from tests.support.smsc import TestSmsc

Who = tuple[str, str, list[str]]
Connect = Callable[[Who], Awaitable[Live]]
RawConnect = Callable[[Who], Awaitable[RawClient]]
SMS_FAST: dict[str, Any] = {
    "provider": "smpp",
    "poll_interval": 0.05,
    "retry_min_delay": 0.05,
    "retry_max_delay": 0.2,
    "reconnect_max_delay": 0.2,
    "rate_per_second": 1000.0,
    "response_timeout": 2.0,
    "submit_timeout": 5.0,
}


def tok(who: Who) -> str:
    """A token for a demo user ``(id, org, roles)``."""
    return token(*who)


@pytest.fixture
async def smsc() -> AsyncIterator[TestSmsc]:
    """A running test SMSC the hub sends invitations through."""
    server = TestSmsc()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def running_hub(
    backend: Backend, smsc: TestSmsc, tmp_path: Path
) -> AsyncIterator[RunningHub]:
    """A hub on the parametrised backend, with the seed directory and no rooms."""
    settings = backend_settings(
        backend,
        sms={**SMS_FAST, "smpp_port": smsc.port},
        consultations={"recordings_dir": tmp_path / "consultations"},
    )
    hub = await start_hub(settings)
    try:
        await reset_directory(hub.hub)
        yield hub
    finally:
        await hub.server.close()


@pytest.fixture
async def api(running_hub: RunningHub) -> AsyncIterator[Api]:
    """The API client, signed in as nobody (use ``as_``)."""
    async with aiohttp.ClientSession() as http:
        yield Api(http, running_hub.url, None)


@pytest.fixture
async def live(running_hub: RunningHub) -> AsyncIterator[Connect]:
    """Connect SDK clients as users; all are disconnected at the end."""
    clients: list[Live] = []

    async def connect(who: Who) -> Live:
        client = await connect_user(running_hub.ws_url, *who)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.client.disconnect()


@pytest.fixture
async def raw(running_hub: RunningHub) -> AsyncIterator[RawConnect]:
    """Connect raw protocol clients as users (rpc, subscribe); all are closed at the end."""
    clients: list[RawClient] = []

    async def connect(who: Who) -> RawClient:
        client, _ = await RawClient.connected(running_hub.ws_url, tok(who))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


@pytest.fixture
def media(running_hub: RunningHub) -> FakeRoomMedia:
    """The stand-in media plane, installed in the hub's consultation service."""
    fake = FakeRoomMedia()
    service = running_hub.hub.consultations
    assert service is not None
    service.media = fake
    return fake
