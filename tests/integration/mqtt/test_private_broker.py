"""The MQTT adapter against a private Mosquitto this test owns: restarted under a running
adapter, and the broker's in-flight window that bounds throughput when acking after
persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import paho.mqtt.client as paho
import pytest

from adapters.mqtt import MqttAdapter
from hub.tasks import TaskRegistry
from tests.integration.mqtt.helpers import (
    RecordingSink,
    location_topic,
    ping,
    publish,
    unique_settings,
    until,
)
from tests.support.mosquitto import MosquittoServer, private_mosquitto

pytestmark = pytest.mark.timeout(60)

MOSQUITTO_DEFAULT_MAX_INFLIGHT = 20
"""mosquitto.conf ``max_inflight_messages`` default; it applies to MQTT 3.1.1 clients."""


@pytest.fixture
async def broker() -> AsyncIterator[MosquittoServer]:
    async with private_mosquitto() as server:
        yield server


async def test_broker_restart_under_a_running_adapter_flips_ready_and_resumes(
    broker: MosquittoServer, tasks: TaskRegistry
) -> None:
    settings = unique_settings()
    sink = RecordingSink()
    adapter = MqttAdapter(broker.url, settings, sink, tasks)
    try:
        await adapter.start()
        await publish(broker.url, location_topic(settings), [ping("before")])
        await sink.wait_for_id("before")

        await broker.kill()
        await until(lambda: not adapter.ready)
        await broker.start()
        await until(lambda: adapter.ready)

        # The fresh broker (persistence off) has no session: the adapter subscribed again.
        await publish(broker.url, location_topic(settings), [ping(n) for n in range(50)])
        await sink.wait_for(lambda s: set(range(50)) <= set(s.ids))
    finally:
        await adapter.stop()


@pytest.mark.parametrize(
    ("protocol", "receive_maximum", "window"),
    [
        ("5", 50, 50),  # MQTT 5: the broker honours our Receive Maximum
        ("3.1.1", 1000, MOSQUITTO_DEFAULT_MAX_INFLIGHT),  # 3.1.1: the broker's own limit
    ],
)
async def test_the_broker_sends_at_most_its_in_flight_window_while_acks_wait(
    broker: MosquittoServer,
    tasks: TaskRegistry,
    protocol: str,
    receive_maximum: int,
    window: int,
) -> None:
    settings = unique_settings(protocol=protocol, receive_maximum=receive_maximum)
    sink = RecordingSink(held=True)
    adapter = MqttAdapter(broker.url, settings, sink, tasks)
    try:
        await adapter.start()
        topic = location_topic(settings)
        await publish(broker.url, topic, [ping(n) for n in range(3 * window)])
        # QoS 0 is not held back by the window: it arrives after exactly the messages the
        # broker let through, which shows the window without waiting on a clock.
        await publish(broker.url, topic, [ping("marker")], qos=0, protocol=paho.MQTTv311)
        await until(lambda: adapter.buffered == window + 1)
        sink.release()
        await sink.wait_for(lambda s: len(s.ids) == 3 * window + 1)
        assert sink.ids.index("marker") == window
    finally:
        await adapter.stop()


async def test_a_full_buffer_stops_reading_until_the_sink_catches_up(
    tasks: TaskRegistry,
) -> None:
    # A broker with no in-flight limit and an MQTT 3.1.1 client (no Receive Maximum):
    # only the adapter's own bound (receive_maximum) holds the flood back.
    async with private_mosquitto(
        global_config="allow_anonymous true\nmax_inflight_messages 0\n"
    ) as server:
        settings = unique_settings(protocol="3.1.1", receive_maximum=30, batch_size=10)
        sink = RecordingSink(held=True)
        adapter = MqttAdapter(server.url, settings, sink, tasks)
        try:
            await adapter.start()
            await publish(server.url, location_topic(settings), [ping(n) for n in range(100)])
            await until(lambda: adapter.reading_paused)
            assert adapter.buffered == 30
            sink.release()
            await sink.wait_for(lambda s: len(s.ids) >= 100)
            assert sorted(int(str(i)) for i in sink.ids) == list(range(100))
            await until(lambda: not adapter.reading_paused)
        finally:
            await adapter.stop()
