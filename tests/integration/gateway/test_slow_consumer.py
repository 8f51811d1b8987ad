"""A client that stops reading is disconnected with the slow code while other clients keep
receiving, and hub memory stays bounded (ARCHITECTURE.md, "Bounded everything")."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator

import aiohttp
import orjson
import psutil
import pytest
from centrifuge import PublicationContext, SubscribedContext, SubscriptionEventHandler

from hub.config import GatewaySettings
from hub.gateway.connection import Connection
from protocols.client import DisconnectCode
from protocols.envelope import Envelope
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.support.clients import Recorder, sdk_client
from tests.support.hubs import token
from tests.support.rawws import WAIT, SocketClient, eventually

CHANNEL = "org:d01.s01"
USER = ("s01-dispatcher", "d01.s01", ["dispatcher"])
HIGH_WATER = 64 * 1024
MAX_BYTES = 1024 * 1024
EVENT_BYTES = 2000
TOTAL_BYTES = 20 * 1024 * 1024
WARM_UP_BYTES = 2 * 1024 * 1024
RSS_GROWTH_LIMIT = 8 * 1024 * 1024
BATCH = 64


class Counter(SubscriptionEventHandler):
    """Counts publications without keeping them; checks there is no gap."""

    def __init__(self) -> None:
        self.offset = 0
        self.gaps: list[tuple[int, int]] = []
        self.subscribed = asyncio.Event()
        self._target = 0
        self._reached = asyncio.Event()

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.subscribed.set()

    async def on_publication(self, ctx: PublicationContext) -> None:
        offset = ctx.pub.offset
        if offset != self.offset + 1:
            self.gaps.append((self.offset, offset))
        self.offset = offset
        if offset >= self._target:
            self._reached.set()

    async def reach(self, offset: int) -> None:
        """Wait until the publication at ``offset`` has been received."""
        if self.offset >= offset:
            return
        self._target = offset
        self._reached.clear()
        await asyncio.wait_for(self._reached.wait(), WAIT)


@pytest.fixture
async def small_limits_hub(backend: Backend) -> AsyncIterator[RunningHub]:
    gateway = GatewaySettings(
        queue_high_water=HIGH_WATER, queue_max_bytes=MAX_BYTES, slow_timeout=1.0
    )
    hub = await start_hub(backend_settings(backend, gateway=gateway))
    try:
        yield hub
    finally:
        await hub.server.close()


def payload() -> bytes:
    """One encoded envelope of about EVENT_BYTES bytes."""
    envelope = Envelope(
        type="alert.raised",
        source="test/slow",
        org="d01.s01",
        data={"title": "大量事件", "description": "x" * EVENT_BYTES},
    )
    return envelope.encode()


async def open_slow_reader(hub: RunningHub) -> tuple[SocketClient, str]:
    """A subscribed client on a socket with a small receive buffer; returns it and its
    client id. From here on it reads nothing until the test drains it."""
    slow = await SocketClient.open(hub.ws_url, rcvbuf=4096)
    await slow.send_json({"id": 1, "connect": {"token": token(*USER)}})
    client_id = (await slow.reply(1))["connect"]["client"]
    await slow.send_json({"id": 2, "subscribe": {"channel": CHANNEL}})
    assert "subscribe" in await slow.reply(2)
    return slow, client_id


def connection(hub: RunningHub, client_id: str) -> Connection | None:
    for conn in hub.hub.gateway.node.connections:
        if conn.client_id == client_id:
            return conn
    return None


async def slow_disconnects_metric(hub: RunningHub) -> float:
    async with aiohttp.ClientSession() as http, http.get(hub.url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("hub_slow_disconnects_total "):
            return float(line.split()[1])
    raise AssertionError("hub_slow_disconnects_total not exported")


def check_drained(texts: list[bytes]) -> int:
    """What the slow reader got before the close: publications from offset 1 on, in
    order, without a gap. Returns how many."""
    offsets = []
    for frame in texts:
        for line in frame.split(b"\n"):
            message = orjson.loads(line)
            if "push" in message:
                assert message["push"]["channel"] == CHANNEL
                offsets.append(message["push"]["pub"]["offset"])
    assert offsets == list(range(1, len(offsets) + 1))
    return len(offsets)


async def test_reader_that_stops_is_disconnected_slow_others_keep_receiving_memory_bounded(
    small_limits_hub: RunningHub,
) -> None:
    hub = small_limits_hub
    node = hub.hub.gateway.node
    counter = Counter()
    healthy = sdk_client(hub.ws_url, token(*USER), Recorder())
    sub = healthy.new_subscription(CHANNEL, events=counter)
    await healthy.connect()
    await sub.subscribe()
    await asyncio.wait_for(counter.subscribed.wait(), WAIT)
    slow, slow_id = await open_slow_reader(hub)
    assert connection(hub, slow_id) is not None

    data = payload()
    publisher = hub.hub.publisher
    process = psutil.Process()
    published = 0
    baseline_rss: int | None = None
    drained = False
    try:
        while published * len(data) < TOTAL_BYTES:
            # One batch in flight at once (with Redis, pipelined over the pool).
            await asyncio.gather(
                *(publisher.publish_encoded(data, [CHANNEL]) for _ in range(BATCH))
            )
            published += BATCH
            # Flow control for the healthy client only: it must receive every one.
            await counter.reach(published)
            if baseline_rss is None and published * len(data) >= WARM_UP_BYTES:
                baseline_rss = process.memory_info().rss
            if not drained and node.slow_disconnects:
                # Disconnected while the hub went on serving; now it reads again and
                # finds the slow close code after what was buffered for it.
                assert connection(hub, slow_id) is None
                texts, code = await slow.drain()
                assert code == DisconnectCode.SLOW
                received = check_drained(texts)
                assert 0 < received <= published
                drained = True
        assert drained, "the reader that stopped was never disconnected"
        assert counter.gaps == [] and counter.offset == published
        assert node.slow_disconnects == 1
        assert await slow_disconnects_metric(hub) == 1.0
        assert baseline_rss is not None
        growth = process.memory_info().rss - baseline_rss
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth / 2**20:.1f} MiB"
        # The healthy client is still connected and subscribed.
        assert len(node.connections) == 1
        assert node.queued_bytes() < HIGH_WATER
    finally:
        slow.close()
        await healthy.disconnect()


async def test_reader_over_high_water_is_disconnected_after_slow_timeout_without_new_traffic(
    sqlite_backend: Backend,
) -> None:
    """Below the hard limit, the time limit applies, and it is enforced even when nothing
    more is sent to the client (no flush to notice it)."""
    gateway = GatewaySettings(
        queue_high_water=HIGH_WATER, queue_max_bytes=64 * MAX_BYTES, slow_timeout=0.5
    )
    hub = await start_hub(backend_settings(sqlite_backend, gateway=gateway))
    slow, slow_id = await open_slow_reader(hub)
    try:
        conn = connection(hub, slow_id)
        assert conn is not None
        data = payload()
        published = 0
        while conn.transport.get_write_buffer_size() <= HIGH_WATER:
            assert published * len(data) < 32 * MAX_BYTES, "the write buffer never grew"
            for _ in range(16):
                await hub.hub.publisher.publish_encoded(data, [CHANNEL])
            published += 16
            await asyncio.sleep(0)  # let the node flush this batch
        assert not conn.closed
        node = hub.hub.gateway.node
        await eventually(lambda: node.slow_disconnects == 1, "the slow client is disconnected")
        assert conn.closed and connection(hub, slow_id) is None
        texts, code = await slow.drain()
        assert code == DisconnectCode.SLOW
        assert check_drained(texts) == published
    finally:
        slow.close()
        await hub.server.close()


async def test_one_frame_of_large_history_requests_does_not_balloon_hub_memory(
    running_hub: RunningHub,
) -> None:
    """100 history commands in one 6 KB frame ask for ~200 MB of replies. The outbound
    limit (queue_max_bytes) must bound what the hub builds up for a client, not only what
    it has already handed to the socket: the client is disconnected slow, and the hub's
    peak memory never holds the whole burst."""
    publisher = running_hub.hub.publisher
    data = payload()
    history_size = running_hub.hub.settings.bus.history_size
    for _ in range(history_size // BATCH + 1):
        await asyncio.gather(*(publisher.publish_encoded(data, [CHANNEL]) for _ in range(BATCH)))
    burst = history_size * len(data) * 100
    limit = running_hub.hub.settings.gateway.queue_max_bytes
    reader, _ = await open_slow_reader(running_hub)
    try:
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        frame = b"\n".join(
            orjson.dumps({"id": i, "history": {"channel": CHANNEL, "limit": -1}})
            for i in range(10, 110)
        )
        await reader.send_text(frame)
        node = running_hub.hub.gateway.node
        await eventually(lambda: node.slow_disconnects == 1, "the client is disconnected slow")
        peak_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
        assert peak_growth < 16 * limit + 32 * 2**20, (
            f"peak RSS grew {peak_growth / 2**20:.0f} MiB for a {burst / 2**20:.0f} MiB burst"
        )
        texts, code = await reader.drain()
        assert code == DisconnectCode.SLOW
        ids = [orjson.loads(line)["id"] for text in texts for line in text.split(b"\n")]
        assert ids == list(range(10, 10 + len(ids)))  # whole replies, in order
    finally:
        reader.close()
