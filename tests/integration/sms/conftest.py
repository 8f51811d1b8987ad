"""Fixtures for the SMS tests: a test SMSC, a stand-in Jasmin, hubs wired to them and a
console subscriber that collects sms.* events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.support.clients import Subscriber, subscribe
from tests.support.hubs import token
from tests.support.jasmin import FakeJasmin
from tests.support.smsc import TestSmsc

WAIT = 15.0
FAST: dict[str, Any] = {
    "poll_interval": 0.05,
    "retry_min_delay": 0.05,
    "retry_max_delay": 0.2,
    "reconnect_max_delay": 0.2,
    "rate_per_second": 1000.0,
    "response_timeout": 2.0,
    "submit_timeout": 5.0,
    "enquire_link_interval": 5.0,
}


@pytest.fixture
async def smsc() -> AsyncIterator[TestSmsc]:
    """A running test SMSC."""
    server = TestSmsc()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def jasmin() -> AsyncIterator[FakeJasmin]:
    """A running stand-in Jasmin HTTP API."""
    gateway = FakeJasmin()
    await gateway.start()
    yield gateway
    await gateway.go_down()


async def sms_hub(backend: Backend, **sms: Any) -> RunningHub:
    """A hub on ``backend`` with fast SMS timers and the given SMS settings."""
    return await start_hub(backend_settings(backend, sms={**FAST, **sms}))


@pytest.fixture
async def smpp_hub(backend: Backend, smsc: TestSmsc) -> AsyncIterator[RunningHub]:
    """A hub sending through the test SMSC."""
    hub = await sms_hub(backend, provider="smpp", smpp_port=smsc.port)
    try:
        yield hub
    finally:
        await hub.server.close()


@pytest.fixture
async def http_hub(backend: Backend, jasmin: FakeJasmin) -> AsyncIterator[RunningHub]:
    """A hub sending through the stand-in Jasmin; its DLR URL points back at the hub."""
    hub = await sms_hub(backend, provider="http", gateway_url=jasmin.url)
    hub.hub.settings.sms.callback_base_url = hub.url
    try:
        yield hub
    finally:
        await hub.server.close()


class Events:
    """sms.* events seen on the console's org channel."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.seen: list[dict[str, Any]] = []

    async def next(
        self, event_type: str, where: Callable[[dict[str, Any]], bool] = lambda d: True
    ) -> dict[str, Any]:
        """The next event of ``event_type`` whose data satisfies ``where``."""
        async with asyncio.timeout(WAIT):
            while True:
                ctx = await self.subscriber.recorder.publications.get()
                envelope: dict[str, Any] = ctx.pub.data
                self.seen.append(envelope)
                if envelope["type"] == event_type and where(envelope["data"]):
                    return envelope["data"]

    async def close(self) -> None:
        """Disconnect."""
        await self.subscriber.client.disconnect()


async def console_events(hub: RunningHub) -> Events:
    """Subscribe to the district channel the sms.* events go to."""
    sub = await subscribe(hub.ws_url, token("d01-leader", "d01", ["leader"]), "org:d01")
    return Events(sub)


async def state_of(hub: RunningHub, message_id: str) -> str:
    """A message's stored state."""
    assert hub.hub.sms is not None
    row = await hub.hub.sms.get(message_id)
    assert row is not None
    return row.state
