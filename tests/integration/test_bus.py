"""The bus: one contract on both backends (memory, Redis), then what only Redis has —
fan-out between nodes, recovery of the live feed after Redis dies, restarts or goes silent,
and malformed pub/sub payloads."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from hub.bus import Bus, BusUnavailable, Publication, StreamPosition
from hub.bus.memory import MemoryBus
from hub.bus.redis import RedisBus
from hub.config import BusSettings
from tests.support.redis_server import RedisServer, free_port, private_redis
from tests.support.services import REDIS_URL, require_redis

WAIT = 5.0  # generous deadline for conditions that normally hold within milliseconds
POLL = 0.01

BusFactory = Callable[..., Awaitable[tuple[Bus, "Recorder"]]]


async def wait_until(
    condition: Callable[[], bool] | Callable[[], Awaitable[bool]],
    what: str,
    within: float = WAIT,
) -> None:
    """Poll ``condition`` (sync or async) until true; fail the test at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(POLL)


class Recorder:
    """The node's side of the bus: records publications and reconnections."""

    def __init__(self) -> None:
        self.pubs: list[Publication] = []
        self.reconnects = 0

    def on_publication(self, pub: Publication) -> None:
        self.pubs.append(pub)

    def on_reconnected(self) -> None:
        self.reconnects += 1

    def on(self, channel: str) -> list[Publication]:
        return [p for p in self.pubs if p.channel == channel]

    async def wait_for(self, channel: str, count: int = 1) -> list[Publication]:
        await wait_until(lambda: len(self.on(channel)) >= count, f"{count} pubs on {channel}")
        return self.on(channel)


def bus_settings(prefix: str, **overrides: Any) -> BusSettings:
    values: dict[str, Any] = {
        "history_size": 5,
        "history_ttl": 60,
        "meta_ttl": 600,
        "redis_prefix": prefix,
        "reconnect_max_delay": 0.3,
    }
    values.update(overrides)
    return BusSettings(**values)


def data(n: int) -> bytes:
    return b'{"n":%d}' % n


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def shared_redis(prefix: str) -> AsyncIterator[Redis]:
    """A plain client on the shared Redis; deletes every key under ``prefix`` on exit."""
    require_redis()
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def redis_client(prefix: str) -> AsyncIterator[Redis]:
    """The shared Redis, this test's keys removed afterwards."""
    async with shared_redis(prefix) as client:
        yield client


async def _make_factory(
    kind: str, prefix: str, url: str = REDIS_URL, **bus_options: Any
) -> tuple[BusFactory, list[Bus]]:
    buses: list[Bus] = []

    async def make(**overrides: Any) -> tuple[Bus, Recorder]:
        settings = bus_settings(prefix, **overrides)
        bus: Bus
        if kind == "memory":
            bus = MemoryBus(settings)
        else:
            bus = RedisBus(url, settings, node=f"node{len(buses)}", **bus_options)
        recorder = Recorder()
        bus.set_handlers(recorder.on_publication, recorder.on_reconnected)
        await bus.start()
        buses.append(bus)
        return bus, recorder

    return make, buses


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[BusFactory]:
    """Builds started buses of the parametrised backend; stops them afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "redis":
            await stack.enter_async_context(shared_redis(prefix))
        make, buses = await _make_factory(request.param, prefix)
        try:
            yield make
        finally:
            for bus in buses:
                await bus.stop()


@pytest.fixture
async def make_redis_bus(prefix: str, redis_client: Redis) -> AsyncIterator[BusFactory]:
    """Builds started RedisBus nodes on the shared Redis, one prefix for all of them."""
    make, buses = await _make_factory("redis", prefix)
    try:
        yield make
    finally:
        for bus in buses:
            await bus.stop()


# -- the contract, on both backends ---------------------------------------------------------


async def test_offsets_increase_by_one_and_the_epoch_stays(make_bus: BusFactory) -> None:
    bus, _ = await make_bus()
    positions = [await bus.publish("org:d01", data(n)) for n in range(1, 4)]
    assert [p.offset for p in positions] == [1, 2, 3]
    assert len({p.epoch for p in positions}) == 1
    result = await bus.history("org:d01", since=None, limit=0)
    assert result.position == positions[-1]
    assert result.publications == []


async def test_unpublished_channel_has_offset_zero_and_keeps_its_epoch(
    make_bus: BusFactory,
) -> None:
    bus, _ = await make_bus()
    first = await bus.history("org:new", since=None, limit=10)
    again = await bus.history("org:new", since=first.position, limit=10)
    assert first.position.offset == 0
    assert first.publications == [] and again.publications == []
    assert again.position == first.position
    published = await bus.publish("org:new", data(1))
    assert published == StreamPosition(1, first.position.epoch)


async def test_history_latest_returns_the_newest_oldest_first(make_bus: BusFactory) -> None:
    bus, _ = await make_bus()
    positions = [await bus.publish("case:7", data(n)) for n in range(1, 5)]
    result = await bus.history("case:7", since=None, limit=2)
    assert [(p.offset, p.data) for p in result.publications] == [(3, data(3)), (4, data(4))]
    assert all(p.epoch == positions[0].epoch and p.channel == "case:7" for p in result.publications)
    assert result.position == positions[-1]


async def test_history_since_returns_later_publications_up_to_limit(
    make_bus: BusFactory,
) -> None:
    bus, _ = await make_bus()
    last = StreamPosition(0, "")
    for n in range(1, 5):
        last = await bus.publish("case:8", data(n))
    since = StreamPosition(1, last.epoch)
    everything = await bus.history("case:8", since=since, limit=10)
    assert [p.offset for p in everything.publications] == [2, 3, 4]
    assert [p.data for p in everything.publications] == [data(2), data(3), data(4)]
    limited = await bus.history("case:8", since=since, limit=2)
    assert [p.offset for p in limited.publications] == [2, 3]
    assert limited.position == last
    current = await bus.history("case:8", since=last, limit=10)
    assert current.publications == [] and current.position == last


async def test_history_since_another_epoch_returns_only_the_position(
    make_bus: BusFactory,
) -> None:
    bus, _ = await make_bus()
    await bus.publish("case:9", data(1))
    last = await bus.publish("case:9", data(2))
    result = await bus.history("case:9", since=StreamPosition(1, "not-" + last.epoch), limit=10)
    assert result.publications == []
    assert result.position == last


async def test_history_limit_zero_returns_only_the_position(make_bus: BusFactory) -> None:
    bus, _ = await make_bus()
    first = await bus.publish("case:10", data(1))
    last = await bus.publish("case:10", data(2))
    for since in (None, StreamPosition(0, first.epoch)):
        result = await bus.history("case:10", since=since, limit=0)
        assert result.publications == [] and result.position == last


async def test_history_is_trimmed_to_history_size(make_bus: BusFactory) -> None:
    bus, _ = await make_bus(history_size=5)
    last = StreamPosition(0, "")
    for n in range(1, 9):
        last = await bus.publish("case:11", data(n))
    latest = await bus.history("case:11", since=None, limit=100)
    assert [p.offset for p in latest.publications] == [4, 5, 6, 7, 8]
    # A client that was at offset 1 sees the gap: the first offset returned is not 2.
    since = await bus.history("case:11", since=StreamPosition(1, last.epoch), limit=100)
    assert [p.offset for p in since.publications] == [4, 5, 6, 7, 8]
    assert since.position == last


async def test_history_expires_after_ttl_without_publications(make_bus: BusFactory) -> None:
    bus, _ = await make_bus(history_ttl=1)
    await bus.publish("case:12", data(1))
    last = await bus.publish("case:12", data(2))

    async def forgotten() -> bool:
        return not (await bus.history("case:12", since=None, limit=10)).publications

    await wait_until(forgotten, "history to expire")
    result = await bus.history("case:12", since=None, limit=10)
    assert result.position == last  # offset and epoch outlive the history
    assert (await bus.publish("case:12", data(3))) == StreamPosition(3, last.epoch)


async def test_add_channel_delivers_that_channel_only(make_bus: BusFactory) -> None:
    bus, recorder = await make_bus()
    await bus.add_channel("org:d01")
    await bus.publish("org:d02", data(1))
    position = await bus.publish("org:d01", data(2))
    await recorder.wait_for("org:d01")
    # Publications on one node arrive in publish order: org:d02 would have come first.
    assert recorder.pubs == [Publication("org:d01", position.offset, position.epoch, data(2))]


async def test_remove_channel_stops_delivery(make_bus: BusFactory) -> None:
    bus, recorder = await make_bus()
    await bus.add_channel("org:a")
    await bus.add_channel("org:b")
    await bus.publish("org:a", data(1))
    await recorder.wait_for("org:a")
    await bus.remove_channel("org:a")
    await bus.publish("org:a", data(2))
    await bus.publish("org:b", data(3))
    await recorder.wait_for("org:b")
    assert [p.data for p in recorder.pubs] == [data(1), data(3)]


async def test_presence_add_refresh_and_remove(make_bus: BusFactory) -> None:
    bus, _ = await make_bus()
    await bus.presence_add("room:1", "c1", {"user": "u1"})
    await bus.presence_add("room:1", "c2", {"user": "u2"})
    assert await bus.presence("room:1") == {"c1": {"user": "u1"}, "c2": {"user": "u2"}}
    await bus.presence_add("room:1", "c1", {"user": "u1", "device": "phone"})
    assert (await bus.presence("room:1"))["c1"] == {"user": "u1", "device": "phone"}
    await bus.presence_remove("room:1", "c1")
    assert await bus.presence("room:1") == {"c2": {"user": "u2"}}
    await bus.presence_remove("room:1", "c2")
    await bus.presence_remove("room:1", "never-there")
    assert await bus.presence("room:1") == {}
    assert await bus.presence("room:other") == {}


async def test_presence_entry_expires_unless_refreshed(make_bus: BusFactory) -> None:
    bus, _ = await make_bus()
    assert isinstance(bus, MemoryBus | RedisBus)
    bus.set_presence_ttl(0.3)
    await bus.presence_add("room:2", "stale", {"user": "u1"})
    await bus.presence_add("room:2", "fresh", {"user": "u2"})

    async def stale_gone() -> bool:
        await bus.presence_add("room:2", "fresh", {"user": "u2"})  # the refresh
        return "stale" not in await bus.presence("room:2")

    await wait_until(stale_gone, "the unrefreshed entry to expire")
    assert await bus.presence("room:2") == {"fresh": {"user": "u2"}}


# -- Redis: several nodes ------------------------------------------------------------------


async def test_publication_reaches_another_node_that_listens(make_redis_bus: BusFactory) -> None:
    node_a, _ = await make_redis_bus()
    node_b, seen_by_b = await make_redis_bus()
    await node_b.add_channel("org:d01.s03")
    position = await node_a.publish("org:d01.s03", data(1))
    (pub,) = await seen_by_b.wait_for("org:d01.s03")
    assert pub == Publication("org:d01.s03", position.offset, position.epoch, data(1))


async def test_node_that_does_not_listen_receives_nothing(make_redis_bus: BusFactory) -> None:
    node_a, seen_by_a = await make_redis_bus()
    node_b, seen_by_b = await make_redis_bus()
    await node_b.add_channel("org:listened")
    await node_a.publish("org:ignored", data(1))
    await node_a.publish("org:listened", data(2))
    await seen_by_b.wait_for("org:listened")
    assert [p.channel for p in seen_by_b.pubs] == ["org:listened"]
    assert seen_by_a.pubs == []


async def test_history_is_shared_between_nodes(make_redis_bus: BusFactory) -> None:
    node_a, _ = await make_redis_bus()
    node_b, _ = await make_redis_bus()
    first = await node_a.publish("case:1", data(1))
    second = await node_b.publish("case:1", data(2))
    assert second == StreamPosition(first.offset + 1, first.epoch)
    result = await node_a.history("case:1", since=None, limit=10)
    assert [p.data for p in result.publications] == [data(1), data(2)]


# -- Redis: the live feed ------------------------------------------------------------------


async def test_feed_recovers_after_redis_restarts(prefix: str) -> None:
    async with private_redis() as server:
        make, buses = await _make_factory(
            "redis", prefix, server.url, op_timeout=0.5, ping_interval=0.5
        )
        try:
            bus, recorder = await make()
            await bus.add_channel("org:d01")
            before = await bus.publish("org:d01", data(1))
            await recorder.wait_for("org:d01")

            await server.kill()
            await wait_until(lambda: not bus.ready, "the bus to notice Redis is gone")
            with pytest.raises(BusUnavailable):
                await bus.publish("org:d01", data(2))
            with pytest.raises(BusUnavailable):
                await bus.add_channel("org:d02")

            await server.start()
            await wait_until(lambda: bus.ready, "the bus to reconnect")
            assert recorder.reconnects == 1
            after = await bus.publish("org:d01", data(3))
            assert after.epoch != before.epoch  # nothing persisted: a new epoch
            assert after.offset == 1
            pubs = await recorder.wait_for("org:d01", 2)
            assert pubs[-1] == Publication("org:d01", 1, after.epoch, data(3))
            assert recorder.reconnects == 1
        finally:
            for bus in buses:
                await bus.stop()


async def test_feed_recovers_from_a_silent_redis(prefix: str) -> None:
    async with private_redis() as server:
        make, buses = await _make_factory(
            "redis", prefix, server.url, op_timeout=0.5, ping_interval=0.2
        )
        try:
            bus, recorder = await make()
            await bus.add_channel("org:d01")
            server.freeze()  # TCP stays up, nothing answers: only the PING can tell
            await wait_until(lambda: not bus.ready, "the ping to find the feed dead")
            with pytest.raises(BusUnavailable):
                await bus.publish("org:d01", data(1))  # times out, never hangs
            server.thaw()
            await wait_until(lambda: bus.ready, "the bus to reconnect")
            assert recorder.reconnects == 1
            position = await bus.publish("org:d01", data(2))
            pubs = await recorder.wait_for("org:d01")
            assert pubs[-1] == Publication("org:d01", position.offset, position.epoch, data(2))
            assert recorder.reconnects == 1
        finally:
            for bus in buses:
                await bus.stop()


async def test_feed_recovers_when_its_connection_is_killed(
    make_redis_bus: BusFactory, redis_client: Redis, prefix: str
) -> None:
    bus, recorder = await make_redis_bus()
    await bus.add_channel("org:d01")
    await bus.add_channel("org:d02")
    clients = await redis_client.client_list()
    (feed,) = [c for c in clients if c.get("name") == f"{prefix}:node0:feed"]
    await redis_client.client_kill_filter(_id=feed["id"])
    await wait_until(lambda: recorder.reconnects == 1, "on_reconnected")
    assert bus.ready
    # Both channels were resubscribed on the new connection.
    await bus.publish("org:d01", data(1))
    await bus.publish("org:d02", data(2))
    await recorder.wait_for("org:d02")
    assert [p.data for p in recorder.pubs] == [data(1), data(2)]
    assert recorder.reconnects == 1


async def test_malformed_payload_is_counted_and_the_feed_goes_on(
    make_redis_bus: BusFactory, redis_client: Redis, prefix: str
) -> None:
    bus, recorder = await make_redis_bus()
    assert isinstance(bus, RedisBus)
    await bus.add_channel("org:d01")
    bad = [b"garbage", b"", b"7:ab", b"x:ab:{}", b"0:ab:{}", b"5::{}", b"-1:ab:{}"]
    for payload in bad:
        await redis_client.publish(f"{prefix}:pub:org:d01", payload)
    position = await bus.publish("org:d01", data(1))
    await recorder.wait_for("org:d01")
    assert recorder.pubs == [Publication("org:d01", position.offset, position.epoch, data(1))]
    assert bus.malformed_messages == len(bad)
    assert bus.ready and recorder.reconnects == 0


async def test_a_failing_handler_does_not_stop_the_feed(make_redis_bus: BusFactory) -> None:
    bus, recorder = await make_redis_bus()
    calls: list[Publication] = []

    def flaky(pub: Publication) -> None:
        calls.append(pub)
        if len(calls) == 1:
            raise RuntimeError("handler bug")

    bus.set_handlers(flaky, recorder.on_reconnected)
    await bus.add_channel("org:d01")
    await bus.publish("org:d01", data(1))
    await bus.publish("org:d01", data(2))
    await wait_until(lambda: len(calls) == 2, "the second publication")
    assert bus.ready


async def test_start_fails_when_redis_is_unreachable(prefix: str) -> None:
    bus = RedisBus(
        f"redis://127.0.0.1:{free_port()}/0", bus_settings(prefix), node="n", op_timeout=0.5
    )
    with pytest.raises(BusUnavailable):
        await bus.start()
    assert not bus.ready
    await bus.stop()


async def test_start_can_be_retried_once_redis_is_up(prefix: str) -> None:
    server = RedisServer()
    bus = RedisBus(server.url, bus_settings(prefix), node="n", op_timeout=0.5)
    try:
        with pytest.raises(BusUnavailable):
            await bus.start()
        await server.start()
        await bus.start()
        assert bus.ready
        await bus.add_channel("org:d01")
        assert (await bus.publish("org:d01", data(1))).offset == 1
    finally:
        await bus.stop()
        await server.close()


async def test_stop_twice_is_harmless(make_redis_bus: BusFactory) -> None:
    bus, _ = await make_redis_bus()
    await bus.add_channel("org:d01")
    await bus.stop()
    await bus.stop()
    assert not bus.ready


async def test_private_server_restarts_on_the_same_port() -> None:
    server = RedisServer()
    try:
        await server.start()
        port = server.port
        await server.restart()
        assert server.running and server.port == port
        client = Redis.from_url(server.url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
    finally:
        await server.close()
    assert not server.running
