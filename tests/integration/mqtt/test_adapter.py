"""The MQTT adapter on the shared Mosquitto: pings reach the sink, acks follow persistence,
a persistent session carries what was published while the hub was away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from adapters.mqtt import MqttAdapter
from hub.config import MqttSettings
from hub.tasks import TaskRegistry
from tests.integration.mqtt.helpers import (
    RecordingSink,
    location_topic,
    mosquitto_pub,
    ping,
    publish,
)

pytestmark = pytest.mark.timeout(60)

AdapterFactory = Callable[[RecordingSink], MqttAdapter]


@pytest.fixture
async def make_adapter(
    mosquitto: str, settings: MqttSettings, tasks: TaskRegistry
) -> AsyncIterator[AdapterFactory]:
    """Adapters on the shared broker with the test's client id; all stopped at the end."""
    made: list[MqttAdapter] = []

    def make(sink: RecordingSink) -> MqttAdapter:
        adapter = MqttAdapter(mosquitto, settings, sink, tasks, drain_timeout=0.2)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.stop()


async def test_a_published_ping_reaches_the_sink(
    make_adapter: AdapterFactory, settings: MqttSettings, mosquitto: str
) -> None:
    sink = RecordingSink()
    adapter = make_adapter(sink)
    await adapter.start()
    assert adapter.ready
    await publish(mosquitto, location_topic(settings), [ping("paho")])
    await sink.wait_for_id("paho")
    if await mosquitto_pub(mosquitto, location_topic(settings, "w2"), ping("cli")):
        await sink.wait_for_id("cli")
    message = sink.messages[0]
    assert message.topic == location_topic(settings)
    assert message.received_at > 0
    await adapter.stop()
    assert not adapter.ready
    await adapter.stop()  # safe twice


async def test_no_ack_before_ingest_returns_so_the_broker_redelivers(
    make_adapter: AdapterFactory, settings: MqttSettings, mosquitto: str
) -> None:
    held = RecordingSink(held=True)
    first = make_adapter(held)
    await first.start()
    await publish(mosquitto, location_topic(settings), [ping("held")])
    await held.entered.wait()
    await first.stop()  # the sink never returned: nothing may have been acked
    assert held.batches == []

    second_sink = RecordingSink()
    second = make_adapter(second_sink)
    await second.start()
    await second_sink.wait_for_id("held")  # redelivered to the same session
    await second.stop()  # this time ingest returned and the ack went out

    third_sink = RecordingSink()
    third = make_adapter(third_sink)
    await third.start()
    # Redelivery comes right after CONNACK, before anything published now.
    await publish(mosquitto, location_topic(settings), [ping("marker")])
    await third_sink.wait_for_id("marker")
    assert third_sink.ids == ["marker"]


async def test_pings_published_while_stopped_arrive_exactly_once_after_restart(
    make_adapter: AdapterFactory, settings: MqttSettings, mosquitto: str
) -> None:
    first = make_adapter(RecordingSink())
    await first.start()  # creates the persistent session and its subscriptions
    await first.stop()

    count = 1000
    await publish(mosquitto, location_topic(settings), [ping(n) for n in range(count)])

    sink = RecordingSink()
    second = make_adapter(sink)
    await second.start()
    await sink.wait_for(lambda s: len(set(s.ids)) >= count)
    await publish(mosquitto, location_topic(settings), [ping("marker")])
    await sink.wait_for_id("marker")
    ids = sink.ids
    assert sorted(int(str(i)) for i in ids if i != "marker") == list(range(count))
    assert len(ids) == count + 1  # none twice


async def test_a_sink_not_ready_keeps_the_batch_unacked_and_retries(
    make_adapter: AdapterFactory, settings: MqttSettings, mosquitto: str
) -> None:
    sink = RecordingSink(failures=2)
    adapter = make_adapter(sink)
    await adapter.start()
    await publish(mosquitto, location_topic(settings), [ping("retry")])
    await sink.wait_for_id("retry")
    assert sink.calls == 3
    assert sink.ids == ["retry"]
    await adapter.stop()

    after = RecordingSink()
    again = make_adapter(after)
    await again.start()
    await publish(mosquitto, location_topic(settings), [ping("marker")])
    await after.wait_for_id("marker")
    assert after.ids == ["marker"]  # acked once accepted: not redelivered
