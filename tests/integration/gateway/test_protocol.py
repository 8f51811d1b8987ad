"""The Centrifugo JSON client protocol as the hub speaks it, checked frame by frame with a
raw WebSocket client: connect, commands in one frame, subscriptions, history, presence,
rpc, publish, the server-side personal channel, server pings, stale and expiring
connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub.config import GatewaySettings
from protocols.client import DisconnectCode, ErrorCode
from protocols.envelope import Envelope
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.support.clients import Recorder, next_item, sdk_client
from tests.support.hubs import token
from tests.support.rawws import RawClient

DISPATCHER = ("s01-dispatcher", "d01.s01", ["dispatcher"])
WORKER = ("s01c01g01-worker", "d01.s01.c01.g01", ["grid_worker"])
COMMUNITY = ("s01c01-dispatcher", "d01.s01.c01", ["dispatcher"])


def event(org: str, title: str = "测试") -> Envelope:
    """An alert envelope about ``org``."""
    return Envelope(type="alert.raised", source="test/protocol", org=org, data={"title": title})


async def publish(hub: RunningHub, org: str, title: str = "测试") -> Envelope:
    """Publish an envelope on the org channel of ``org`` and its ancestors."""
    envelope = event(org, title)
    await hub.hub.publisher.publish_now(envelope)
    return envelope


async def connect(hub: RunningHub, who: tuple[str, str, list[str]], **kw: Any) -> RawClient:
    """A raw client that sent a successful connect."""
    client, _ = await RawClient.connected(hub.ws_url, token(*who), **kw)
    return client


@pytest.fixture
async def timed_hub(sqlite_backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub with fast pings and short stale/expiry timers."""
    gateway = GatewaySettings(ping_interval=0.3, pong_timeout=0.3, stale_timeout=0.5)
    hub = await start_hub(backend_settings(sqlite_backend, gateway=gateway))
    try:
        yield hub
    finally:
        await hub.server.close()


# -- connect --------------------------------------------------------------------------------


async def test_connect_reply_has_client_ping_expiry_and_personal_subscription(
    running_hub: RunningHub,
) -> None:
    client, result = await RawClient.connected(running_hub.ws_url, token(*WORKER, ttl=3600))
    try:
        assert isinstance(result["client"], str) and result["client"]
        assert result["ping"] == 25
        assert result["pong"] is True
        assert result["expires"] is True
        assert 3500 < result["ttl"] <= 3600
        assert set(result["subs"]) == {"user:s01c01g01-worker"}
        personal = result["subs"]["user:s01c01g01-worker"]
        assert personal["recoverable"] is True
        assert isinstance(personal["epoch"], str) and personal["epoch"]
        assert personal["offset"] == 0
        ids = {c.client_id for c in running_hub.hub.gateway.node.connections}
        assert result["client"] in ids
    finally:
        await client.close()


async def test_commands_in_one_frame_are_answered_in_frame_order(running_hub: RunningHub) -> None:
    client = await connect(running_hub, DISPATCHER)
    try:
        ids = await client.send(
            {"subscribe": {"channel": "org:d01.s01"}},
            {"history": {"channel": "org:d01.s01", "limit": 0}},
            {"ping": {}},
            {"rpc": {"method": "no.such.method"}},
            {"presence_stats": {"channel": "org:d01.s01"}},
            {"unsubscribe": {"channel": "org:d01.s01"}},
        )
        replies = [await client.reply(i) for i in ids]
        answered = [m["id"] for m in client.received if m.get("id") in ids]
        assert answered == ids
        assert [next(k for k in r if k != "id") for r in replies] == [
            "subscribe",
            "history",
            "ping",
            "error",
            "presence_stats",
            "unsubscribe",
        ]
    finally:
        await client.close()


# -- subscriptions ----------------------------------------------------------------------------


async def test_subscribe_delivers_and_unsubscribe_stops_delivery(running_hub: RunningHub) -> None:
    client = await connect(running_hub, COMMUNITY)
    try:
        sub = await client.result("subscribe", {"channel": "org:d01.s01.c01"})
        assert sub["recoverable"] is True and sub["offset"] == 0 and sub["epoch"]
        first = await publish(running_hub, "d01.s01.c01.g02", "第一条")
        push = await client.publication("org:d01.s01.c01")
        assert push["pub"]["data"]["id"] == first.id
        assert push["pub"]["offset"] == 1

        assert await client.result("unsubscribe", {"channel": "org:d01.s01.c01"}) == {}
        await publish(running_hub, "d01.s01.c01", "退订之后")
        marker = event("d01.s01.c01", "marker")
        await running_hub.hub.publisher.publish_encoded(marker.encode(), ["user:s01c01-dispatcher"])
        nxt = await client.push()
        assert nxt["channel"] == "user:s01c01-dispatcher"
        assert nxt["pub"]["data"]["id"] == marker.id
        assert client.pending() == []
    finally:
        await client.close()


async def test_subscribe_errors_already_subscribed_unknown_channel_permission(
    running_hub: RunningHub,
) -> None:
    client = await connect(running_hub, COMMUNITY)
    try:
        await client.result("subscribe", {"channel": "org:d01.s01.c01"})
        assert await client.error("subscribe", {"channel": "org:d01.s01.c01"}) == 105
        assert await client.error("subscribe", {"channel": "user:s01c01-dispatcher"}) == 105
        for name in ["foo:bar", "org:", "org:D01", "org:d01..s01", "org", "", 7, None, "user:a b"]:
            code = await client.error("subscribe", {"channel": name})
            assert code == ErrorCode.UNKNOWN_CHANNEL, name
        for name in ["org:d01.s02", "org:d01.s01", "case:42", "camera:c1", "user:admin"]:
            code = await client.error("subscribe", {"channel": name})
            assert code == ErrorCode.PERMISSION_DENIED, name
    finally:
        await client.close()


# -- history ----------------------------------------------------------------------------------


async def test_history_limit_since_reverse_and_epoch_mismatch(running_hub: RunningHub) -> None:
    sent = [(await publish(running_hub, "d01.s01.c03", f"事件{i}")).id for i in range(5)]
    client = await connect(running_hub, DISPATCHER)
    channel = "org:d01.s01.c03"
    try:

        def ids(result: dict[str, Any]) -> list[str]:
            return [p["data"]["id"] for p in result["publications"]]

        def offsets(result: dict[str, Any]) -> list[int]:
            return [p["offset"] for p in result["publications"]]

        latest = await client.result("history", {"channel": channel, "limit": 2})
        assert ids(latest) == sent[3:] and offsets(latest) == [4, 5]
        assert latest["offset"] == 5
        epoch = latest["epoch"]

        backwards = await client.result(
            "history", {"channel": channel, "limit": 2, "reverse": True}
        )
        assert ids(backwards) == [sent[4], sent[3]]

        everything = await client.result("history", {"channel": channel, "limit": -1})
        assert ids(everything) == sent

        position_only = await client.result("history", {"channel": channel})
        assert position_only["publications"] == [] and position_only["offset"] == 5

        since = await client.result(
            "history",
            {"channel": channel, "limit": 10, "since": {"offset": 2, "epoch": epoch}},
        )
        assert ids(since) == sent[2:] and offsets(since) == [3, 4, 5]

        stale = {"channel": channel, "limit": 10, "since": {"offset": 2, "epoch": "not-it"}}
        assert await client.error("history", stale) == ErrorCode.UNRECOVERABLE_POSITION
        assert await client.error("history", {"channel": channel, "limit": "3"}) == 107
        assert await client.error("history", {"channel": "org:d02"}) == 103
    finally:
        await client.close()


# -- presence ---------------------------------------------------------------------------------


async def test_presence_shows_subscribed_clients_and_forgets_those_that_leave(
    running_hub: RunningHub,
) -> None:
    a = await connect(running_hub, DISPATCHER)
    a2 = await connect(running_hub, DISPATCHER)  # the same user on a second device
    b = await connect(running_hub, ("s01-leader", "d01.s01", ["leader"]))
    channel = {"channel": "org:d01.s01"}
    try:
        for client in (a, a2, b):
            await client.result("subscribe", channel)
        presence = (await a.result("presence", channel))["presence"]
        users = sorted(info["user"] for info in presence.values())
        assert users == ["s01-dispatcher", "s01-dispatcher", "s01-leader"]
        for client_id, info in presence.items():
            assert info["client"] == client_id
        assert await b.result("presence_stats", channel) == {"num_clients": 3, "num_users": 2}

        await b.close()  # gone without a word
        await a2.result("unsubscribe", channel)
        # Presence is updated in the background: ask until it shows, bounded.
        for _ in range(200):
            stats = await a.result("presence_stats", channel)
            if stats == {"num_clients": 1, "num_users": 1}:
                break
            await asyncio.sleep(0.02)
        assert stats == {"num_clients": 1, "num_users": 1}
        presence = (await a.result("presence", channel))["presence"]
        assert [info["user"] for info in presence.values()] == ["s01-dispatcher"]
    finally:
        for client in (a, a2, b):
            await client.close()


async def test_rpc_unknown_method_is_method_not_found(running_hub: RunningHub) -> None:
    client = await connect(running_hub, DISPATCHER)
    try:
        assert await client.error("rpc", {"method": "no.such.method"}) == 104
        assert await client.error("rpc", {"data": {}}) == 104
    finally:
        await client.close()


# -- publish ----------------------------------------------------------------------------------


async def test_dispatcher_publish_delivers_message_posted_with_author(
    running_hub: RunningHub,
) -> None:
    dispatcher = await connect(running_hub, DISPATCHER)
    worker = await connect(running_hub, ("s01c01-leader", "d01.s01.c01", ["grid_leader"]))
    try:
        await worker.result("subscribe", {"channel": "org:d01.s01.c01"})
        await dispatcher.result("subscribe", {"channel": "org:d01.s01"})
        data = {"text": "请立即处理", "author": "forged-author"}
        assert (
            await dispatcher.result("publish", {"channel": "org:d01.s01.c01", "data": data}) == {}
        )
        for client, channel in ((worker, "org:d01.s01.c01"), (dispatcher, "org:d01.s01")):
            envelope = (await client.publication(channel))["pub"]["data"]
            assert envelope["type"] == "message.posted"
            assert envelope["org"] == "d01.s01.c01"
            assert envelope["source"] == "hub/console/s01-dispatcher"
            assert envelope["data"] == {"text": "请立即处理", "author": "s01-dispatcher"}
    finally:
        await dispatcher.close()
        await worker.close()


async def test_grid_worker_may_not_publish(running_hub: RunningHub) -> None:
    client = await connect(running_hub, WORKER)
    try:
        params = {"channel": "org:d01.s01.c01.g01", "data": {"text": "hi"}}
        assert await client.error("publish", params) == ErrorCode.PERMISSION_DENIED
        params = {"channel": "user:s01c01g01-worker", "data": {"text": "hi"}}
        assert await client.error("publish", params) == ErrorCode.PERMISSION_DENIED
    finally:
        await client.close()


@pytest.mark.parametrize(
    "data",
    [None, {}, {"text": ""}, {"text": "x", "extra": 1}, "text", [1], {"text": "x" * 2001}],
    ids=["none", "empty", "empty-text", "extra-field", "string", "list", "too-long"],
)
async def test_publish_with_invalid_data_is_bad_request(sqlite_hub: RunningHub, data: Any) -> None:
    client = await connect(sqlite_hub, DISPATCHER)
    try:
        await client.result("subscribe", {"channel": "org:d01.s01"})
        params = {"channel": "org:d01.s01", "data": data}
        assert await client.error("publish", params) == ErrorCode.BAD_REQUEST
        assert sqlite_hub.hub.publisher.published == 0
    finally:
        await client.close()


# -- the server-side personal channel ---------------------------------------------------------


async def test_personal_channel_receives_what_is_published_to_it(
    running_hub: RunningHub,
) -> None:
    mine = await connect(running_hub, WORKER)
    other = await connect(running_hub, COMMUNITY)
    recorder = Recorder()
    sdk = sdk_client(running_hub.ws_url, token(*WORKER), recorder)
    await sdk.connect()
    try:
        await next_item(recorder.server_subscribed)
        notice = event("d01.s01.c01.g01", "个人通知")
        publisher = running_hub.hub.publisher
        await publisher.publish_encoded(notice.encode(), ["user:s01c01g01-worker"])
        push = await mine.publication()
        assert push["channel"] == "user:s01c01g01-worker"
        assert push["pub"]["data"]["id"] == notice.id and push["pub"]["offset"] == 1
        server_pub = await next_item(recorder.server_publications)
        assert server_pub.channel == "user:s01c01g01-worker"
        assert server_pub.pub.data["id"] == notice.id

        marker = event("d01.s01.c01", "marker")
        await publisher.publish_encoded(marker.encode(), ["user:s01c01-dispatcher"])
        got = await other.publication()
        assert got["pub"]["data"]["id"] == marker.id  # and not the worker's notice
        assert other.pending() == []
    finally:
        await sdk.disconnect()
        await mine.close()
        await other.close()


# -- timers: pings, stale connections, token expiry -------------------------------------------


async def test_client_answering_pings_stays_and_silent_client_is_closed_no_pong(
    timed_hub: RunningHub,
) -> None:
    answering = await connect(timed_hub, DISPATCHER, auto_pong=True)
    silent = await connect(timed_hub, COMMUNITY, auto_pong=False)
    try:
        assert await silent.closed() == DisconnectCode.NO_PONG
        assert silent.pings >= 1
        # The answering client was pinged in the same round and is still served.
        assert answering.pings >= 1 and not answering.is_closed
        assert await answering.result("ping", {}) == {}
        before = answering.pings
        await answering.next_ping()
        await answering.next_ping()
        assert answering.pings >= before + 2
        assert await answering.result("ping", {}) == {}
        assert not answering.is_closed
    finally:
        await answering.close()
        await silent.close()


async def test_socket_that_never_sends_connect_is_closed_stale(timed_hub: RunningHub) -> None:
    client = await RawClient.open(timed_hub.ws_url)
    try:
        assert await client.closed() == DisconnectCode.STALE
        assert client.received == []
    finally:
        await client.close()


async def test_connection_is_closed_expired_when_its_token_expires(timed_hub: RunningHub) -> None:
    client, result = await RawClient.connected(timed_hub.ws_url, token(*DISPATCHER, ttl=2))
    try:
        assert result["expires"] is True and 1 <= result["ttl"] <= 2
        assert await client.closed() == DisconnectCode.EXPIRED
    finally:
        await client.close()


async def test_refresh_extends_the_connection_past_the_old_expiry(timed_hub: RunningHub) -> None:
    short = token(*DISPATCHER, ttl=2)
    refreshed, _ = await RawClient.connected(timed_hub.ws_url, short)
    control, _ = await RawClient.connected(timed_hub.ws_url, short)
    try:
        result = await refreshed.result("refresh", {"token": token(*DISPATCHER, ttl=3600)})
        assert result["expires"] is True and result["ttl"] > 3500
        assert result["client"]
        # The control connection with the same token runs out; the refreshed one does not.
        assert await control.closed() == DisconnectCode.EXPIRED
        assert await refreshed.result("ping", {}) == {}
        await refreshed.next_ping()
        assert not refreshed.is_closed
    finally:
        await refreshed.close()
        await control.close()


async def test_refresh_with_another_users_token_is_invalid_token(sqlite_hub: RunningHub) -> None:
    client = await connect(sqlite_hub, DISPATCHER)
    try:
        await client.send({"refresh": {"token": token(*WORKER)}})
        assert await client.closed() == DisconnectCode.INVALID_TOKEN
    finally:
        await client.close()


async def test_refresh_with_expired_token_is_token_expired_error(sqlite_hub: RunningHub) -> None:
    client = await connect(sqlite_hub, DISPATCHER)
    try:
        code = await client.error("refresh", {"token": token(*DISPATCHER, ttl=-10)})
        assert code == ErrorCode.TOKEN_EXPIRED
        assert await client.result("ping", {}) == {}
    finally:
        await client.close()
