"""Fixtures for the MQTT adapter tests: the shared Mosquitto must be up (never skipped)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hub.config import MqttSettings
from hub.tasks import TaskRegistry
from tests.integration.mqtt.helpers import SHARED_URL, forget_session, unique_settings
from tests.support.services import require_port


@pytest.fixture
def mosquitto() -> str:
    """The shared Mosquitto's URL (fails loudly when it is down)."""
    require_port("127.0.0.1", 1883, "Mosquitto")
    return SHARED_URL


@pytest.fixture
async def tasks() -> AsyncIterator[TaskRegistry]:
    """A task registry closed after the test."""
    registry = TaskRegistry()
    yield registry
    await registry.close(timeout=5.0)


@pytest.fixture
async def settings(mosquitto: str) -> AsyncIterator[MqttSettings]:
    """Unique MQTT settings; the persistent session is removed from the broker afterwards."""
    value = unique_settings()
    yield value
    await forget_session(mosquitto, value.client_id)
