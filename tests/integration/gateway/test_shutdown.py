"""Graceful shutdown: every WebSocket is closed with the reconnect advice (3001 shutdown),
so SDK clients go back to connecting instead of giving up."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from centrifuge import ClientState, ConnectingContext

from protocols.client import DisconnectCode
from tests.conftest import RunningHub
from tests.support.clients import Recorder, next_item, sdk_client
from tests.support.hubs import token
from tests.support.rawws import RawClient

USER = ("s01-dispatcher", "d01.s01", ["dispatcher"])


@dataclass
class ConnectingRecorder(Recorder):
    """Also records on_connecting (a lost connection the SDK will reconnect)."""

    connecting: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        await self.connecting.put(ctx)


async def test_shutdown_closes_sockets_with_shutdown_code_and_sdk_reconnects(
    running_hub: RunningHub,
) -> None:
    raw, _ = await RawClient.connected(running_hub.ws_url, token(*USER))
    await raw.result("subscribe", {"channel": "org:d01.s01"})
    idle = await RawClient.open(running_hub.ws_url)  # not even connected yet
    recorder = ConnectingRecorder()
    sdk = sdk_client(running_hub.ws_url, token(*USER), recorder)
    sub = sdk.new_subscription("org:d01.s01", events=recorder)
    await sdk.connect()
    try:
        await sub.subscribe()
        await next_item(recorder.subscribed)
        assert (await next_item(recorder.connecting)).reason == "connect called"
        assert len(running_hub.hub.gateway.node.connections) == 3

        await running_hub.server.close()

        assert await raw.closed() == DisconnectCode.SHUTDOWN
        assert await idle.closed() == DisconnectCode.SHUTDOWN
        connecting = await next_item(recorder.connecting)
        assert connecting.code == DisconnectCode.SHUTDOWN
        assert sdk.state == ClientState.CONNECTING
        assert recorder.disconnected.empty()
        assert not running_hub.hub.gateway.node.connections
    finally:
        await sdk.disconnect()
        await raw.close()
        await idle.close()
