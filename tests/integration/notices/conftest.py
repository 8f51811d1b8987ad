"""Fixtures of the notice tests: a hub on the parametrised backend with the seed directory
and no notices, the JSON API client, and live SDK clients that are always closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api, reset_directory
from tests.integration.notices.helpers import Live, connect_user, delete_notices

Connect = Callable[[str, str, list[str]], Awaitable[Live]]


@pytest.fixture
async def running_hub(backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub on the parametrised backend, with the seed directory and no notices."""
    hub = await start_hub(backend_settings(backend))
    try:
        await delete_notices(hub.hub)
        await reset_directory(hub.hub)
        yield hub
    finally:
        for task in list(hub.hub.notices.fanouts.values()):
            await task
        await delete_notices(hub.hub)
        await reset_directory(hub.hub)
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

    async def connect(user: str, org: str, roles: list[str]) -> Live:
        client = await connect_user(running_hub.ws_url, user, org, roles)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.client.disconnect()
