"""Fixtures of the location acceptance tests: the shared Mosquitto (required, never
skipped), a unique MQTT namespace whose persistent session is removed afterwards, hubs and
console clients that are always stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from hub.config import Settings
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.locations.helpers import unique_mqtt
from tests.integration.mqtt.helpers import SHARED_URL, forget_session
from tests.support.clients import Subscriber, subscribe
from tests.support.hubs import token
from tests.support.services import require_port

HubStarter = Callable[[Settings], Awaitable[RunningHub]]
ConsoleFactory = Callable[[RunningHub, tuple[str, str, list[str]], str], Awaitable[Subscriber]]


@pytest.fixture
def mosquitto() -> str:
    """The shared Mosquitto's URL (fails loudly when it is down)."""
    require_port("127.0.0.1", 1883, "Mosquitto")
    return SHARED_URL


@pytest.fixture
async def mqtt(mosquitto: str) -> AsyncIterator[dict[str, Any]]:
    """This test's MQTT settings on the shared broker; the hub's persistent session is
    removed from the broker afterwards."""
    values = unique_mqtt()
    yield values
    await forget_session(mosquitto, values["client_id"])


def phone_settings(
    backend: Backend, mqtt: dict[str, Any] | None, mqtt_url: str | None = None, **overrides: Any
) -> Settings:
    """Hub settings for a backend, with MQTT on (``mqtt``) against ``mqtt_url`` or off."""
    if mqtt is None:
        return backend_settings(backend, **overrides)
    return backend_settings(backend, mqtt=mqtt, mqtt_url=mqtt_url or SHARED_URL, **overrides)


@pytest.fixture
async def hubs() -> AsyncIterator[HubStarter]:
    """Starts in-process hubs; each is stopped at the end (stopping twice is harmless)."""
    started: list[RunningHub] = []

    async def start(settings: Settings) -> RunningHub:
        running = await start_hub(settings)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.server.close()


@pytest.fixture
async def consoles(hubs: HubStarter) -> AsyncIterator[ConsoleFactory]:
    """Console clients (centrifuge SDK) subscribed to one channel; disconnected at the end,
    before the hubs stop."""
    made: list[Subscriber] = []

    async def make(
        running: RunningHub, user: tuple[str, str, list[str]], channel: str
    ) -> Subscriber:
        subscriber = await subscribe(running.ws_url, token(*user), channel)
        made.append(subscriber)
        return subscriber

    yield make
    for subscriber in made:
        await subscriber.client.disconnect()
