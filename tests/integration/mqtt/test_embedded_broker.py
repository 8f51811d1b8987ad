"""The embedded broker: with no broker URL the adapter runs one, on a free port when the
configured one is taken (the shared Mosquitto holds 1883 here)."""

from __future__ import annotations

from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest

from adapters.mqtt import MqttAdapter, start_embedded_broker
from hub.tasks import TaskRegistry
from tests.integration.mqtt.helpers import (
    RecordingSink,
    location_topic,
    ping,
    publish,
    unique_settings,
)

pytestmark = pytest.mark.timeout(60)


async def test_a_taken_port_moves_the_embedded_broker_and_pings_still_arrive(
    mosquitto: str, tasks: TaskRegistry
) -> None:
    settings = unique_settings(embedded_port=1883)  # taken by the shared Mosquitto
    sink = RecordingSink()
    adapter = MqttAdapter(None, settings, sink, tasks)
    try:
        await adapter.start()
        assert adapter.ready
        url = adapter.broker_url
        assert url is not None
        assert urlsplit(url).port not in (None, 1883)
        await publish(url, location_topic(settings), [ping("embedded")], protocol=paho.MQTTv311)
        await sink.wait_for_id("embedded")
    finally:
        await adapter.stop()
        await adapter.stop()


async def test_start_embedded_broker_on_port_zero_hands_back_a_working_url() -> None:
    settings = unique_settings(embedded_port=0)
    broker, url = await start_embedded_broker(settings)
    try:
        assert url.startswith("mqtt://127.0.0.1:")
        assert url.endswith("?protocol=3.1.1")
    finally:
        await broker.stop()
        await broker.stop()
