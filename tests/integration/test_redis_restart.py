"""Redis restarted under a subscribed client: readiness goes red then green, events
accepted meanwhile wait in the outbox, and the client ends up with every publication —
recovered, or told to resync (recovered=false) and reloading from history. None silently
lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from centrifuge import (
    PublicationContext,
    SubscribedContext,
    SubscriptionEventHandler,
)

from tests.conftest import RunningHub, start_hub
from tests.support.clients import Recorder as ClientRecorder
from tests.support.clients import alert, post_event, sdk_client
from tests.support.hubs import make_settings, token
from tests.support.redis_server import RedisServer, private_redis

pytestmark = pytest.mark.timeout(120)
WAIT = 20.0


class Timeline(SubscriptionEventHandler):
    """Every subscription event in arrival order, on one queue."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def on_publication(self, ctx: PublicationContext) -> None:
        await self.events.put(("pub", ctx))

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        await self.events.put(("subscribed", ctx))


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async with private_redis() as server:
        yield server


@pytest.fixture
async def hub_on_private_redis(
    redis_server: RedisServer, postgres_database: str
) -> AsyncIterator[RunningHub]:
    settings = make_settings(postgres_database, redis_server.url)
    settings.outbox.retry_max_delay = 0.5
    hub = await start_hub(settings)
    try:
        yield hub
    finally:
        await hub.server.close()


async def _ready_status(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url + "/readyz") as resp:
        return resp.status


async def _wait_ready_status(url: str, status: int) -> None:
    """Readiness is observed from outside, as an orchestrator would: poll with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while await _ready_status(url) != status:
        assert loop.time() < deadline, f"/readyz never became {status}"
        await asyncio.sleep(0.05)


async def test_client_ends_up_with_every_publication_across_a_redis_restart(
    hub_on_private_redis: RunningHub, redis_server: RedisServer
) -> None:
    hub = hub_on_private_redis
    timeline = Timeline()
    client = sdk_client(
        hub.ws_url, token("s02-dispatcher", "d01.s02", ["dispatcher"]), ClientRecorder()
    )
    sub = client.new_subscription("org:d01.s02", events=timeline)
    await client.connect()
    await sub.subscribe()
    kind, ctx = await asyncio.wait_for(timeline.events.get(), WAIT)
    assert kind == "subscribed"

    expected: list[str] = []
    status, body = await post_event(hub.url, alert("d01.s02.c01", "重启前"))
    assert status == 202
    expected.append(body["id"])

    await redis_server.kill()
    await _wait_ready_status(hub.url, 503)
    for i in range(3):
        status, body = await post_event(hub.url, alert("d01.s02.c02", f"Redis 宕机期间 {i}"))
        assert status == 202, body  # accepted into the outbox: persisted before the answer
        expected.append(body["id"])

    await redis_server.start()
    await _wait_ready_status(hub.url, 200)
    status, body = await post_event(hub.url, alert("d01.s02.c03", "恢复后"))
    assert status == 202
    expected.append(body["id"])

    have: set[str] = set()
    resyncs = 0
    while not set(expected) <= have:
        kind, ctx = await asyncio.wait_for(timeline.events.get(), WAIT)
        if kind == "pub":
            have.add(ctx.pub.data["id"])
        elif ctx.was_recovering and not ctx.recovered:
            # Told to resync: reload the channel's state, here from its history.
            resyncs += 1
            history = await sub.history(limit=100)
            have.update(p.data["id"] for p in history.publications)
    assert set(expected) <= have
    # Redis kept nothing on disk, so the stream's epoch changed: the client must have been
    # told so rather than silently continuing.
    assert resyncs >= 1
    await client.disconnect()
