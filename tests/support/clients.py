"""Test clients: the official centrifuge-python SDK with event queues, a raw WebSocket
client for protocol-level tests, and a signed ingest client."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectedContext,
    DisconnectedContext,
    PublicationContext,
    ServerPublicationContext,
    ServerSubscribedContext,
    SubscribedContext,
    Subscription,
    SubscriptionEventHandler,
    UnsubscribedContext,
)

from protocols import signing
from tests.support.hubs import API_KEY

WAIT = 15.0


@dataclass
class Recorder(ClientEventHandler, SubscriptionEventHandler):
    """Collects SDK events into queues so tests await them instead of sleeping."""

    publications: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    subscribed: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    server_publications: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    server_subscribed: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    disconnected: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    connected: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    unsubscribed: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    async def on_publication(self, ctx: PublicationContext | ServerPublicationContext) -> None:
        if isinstance(ctx, ServerPublicationContext):
            await self.server_publications.put(ctx)
        else:
            await self.publications.put(ctx)

    async def on_subscribed(self, ctx: SubscribedContext | ServerSubscribedContext) -> None:
        if isinstance(ctx, ServerSubscribedContext):
            await self.server_subscribed.put(ctx)
        else:
            await self.subscribed.put(ctx)

    async def on_connected(self, ctx: ConnectedContext) -> None:
        await self.connected.put(ctx)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        await self.disconnected.put(ctx)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        await self.unsubscribed.put(ctx)


async def next_item(queue: asyncio.Queue[Any], timeout: float = WAIT) -> Any:
    """The next queued event, or fail after ``timeout``."""
    return await asyncio.wait_for(queue.get(), timeout)


def sdk_client(ws_url: str, token: str, recorder: Recorder) -> Client:
    """An SDK client with fast reconnects for tests."""
    return Client(
        ws_url,
        events=recorder,
        token=token,
        min_reconnect_delay=0.05,
        max_reconnect_delay=0.5,
        timeout=10.0,
    )


@dataclass
class Subscriber:
    """An SDK client subscribed to one channel, with its recorder."""

    client: Client
    subscription: Subscription
    recorder: Recorder
    subscribed: SubscribedContext


async def subscribe(ws_url: str, token: str, channel: str) -> Subscriber:
    """Connect an SDK client, subscribe to ``channel`` and wait until subscribed."""
    recorder = Recorder()
    client = sdk_client(ws_url, token, recorder)
    sub = client.new_subscription(channel, events=recorder)
    await client.connect()
    await sub.subscribe()
    return Subscriber(client, sub, recorder, await next_item(recorder.subscribed))


def signed_headers(
    body: bytes,
    *,
    key_id: str = API_KEY.id,
    secret: str = API_KEY.secret.get_secret_value(),
    timestamp: int | None = None,
    idempotency_key: str | None = None,
) -> dict[str, str]:
    """Headers of a correctly signed ingest request."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-Api-Key": key_id,
        "X-Timestamp": ts,
        "X-Signature": signing.sign(secret, ts, body),
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


async def post_event(
    base_url: str,
    event: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    **header_args: Any,
) -> tuple[int, dict[str, Any]]:
    """POST a signed event; returns (status, JSON body)."""
    body = json.dumps(event, ensure_ascii=False).encode()
    headers = signed_headers(body, idempotency_key=idempotency_key, **header_args)
    async with (
        aiohttp.ClientSession() as http,
        http.post(base_url + "/api/v1/events", data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


def alert(org: str, title: str = "测试告警", **data: Any) -> dict[str, Any]:
    """An ``alert.raised`` event body."""
    return {"type": "alert.raised", "org": org, "data": {"title": title, **data}}
