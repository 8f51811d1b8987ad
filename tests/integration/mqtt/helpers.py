"""Test doubles and tools for the MQTT adapter tests: a recording sink (a fake of our own
service; the broker is always real), a paho publisher and event waits."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.config import MqttSettings
from hub.errors import NotReadyError
from hub.locations.ports import InboundMessage

WAIT = 20.0
SHARED_URL = "mqtt://127.0.0.1:1883"
PUBLISH_TIMEOUT = 20.0
POLL = 0.01


def unique_settings(**overrides: object) -> MqttSettings:
    """Settings with a unique client id and topic prefix, a short session expiry (the
    shared broker forgets the session soon after the test) and short timers."""
    tag = uuid.uuid4().hex[:12]
    values: dict[str, object] = {
        "client_id": f"test-{tag}",
        "topic_prefix": f"t{tag}/",
        "session_expiry": 300,
        "batch_interval": 0.01,
        "reconnect_max_delay": 0.5,
    }
    values.update(overrides)
    return MqttSettings.model_validate(values)


def location_topic(settings: MqttSettings, worker: str = "w1") -> str:
    """The grid location topic of ``worker`` under the test's prefix."""
    return f"{settings.topic_prefix}grid/{worker}/location"


def ping(n: int | str) -> bytes:
    """A payload identified by ``n`` (the adapter does not parse payloads)."""
    return json.dumps({"id": n}).encode()


def ping_id(message: InboundMessage) -> object:
    """The id in a payload made by ``ping``."""
    return json.loads(message.payload)["id"]


class RecordingSink:
    """A LocationSink that records every batch it accepted. It can be held (ingest blocks
    until released) and made to fail (NotReadyError) a number of times first."""

    def __init__(self, *, held: bool = False, failures: int = 0) -> None:
        self.batches: list[list[InboundMessage]] = []
        self.calls = 0
        self.failures = failures
        self.entered = asyncio.Event()
        self._release = asyncio.Event()
        if not held:
            self._release.set()
        self._changed = asyncio.Event()

    def release(self) -> None:
        """Let held ingests return."""
        self._release.set()

    async def ingest(self, batch: Sequence[InboundMessage]) -> None:
        self.calls += 1
        self.entered.set()
        if self.failures > 0:
            self.failures -= 1
            raise NotReadyError("test sink not ready")
        await self._release.wait()
        self.batches.append(list(batch))
        self._changed.set()

    @property
    def messages(self) -> list[InboundMessage]:
        """Everything accepted, in order."""
        return [m for batch in self.batches for m in batch]

    @property
    def ids(self) -> list[object]:
        """The ping ids accepted, in order."""
        return [ping_id(m) for m in self.messages]

    async def wait_for(
        self, predicate: Callable[[RecordingSink], bool], timeout: float = WAIT
    ) -> None:
        """Wait until ``predicate(self)`` holds, woken by each accepted batch."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_id(self, n: object, timeout: float = WAIT) -> None:
        """Wait until the ping with id ``n`` was accepted."""
        await self.wait_for(lambda s: n in s.ids, timeout)


async def until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition that has no event to wait on (``adapter.ready``, ``buffered``)."""
    for _ in range(int(timeout / POLL)):
        if predicate():
            return
        await asyncio.sleep(POLL)
    raise TimeoutError(f"condition not met within {timeout} s")


def _publish_blocking(
    url: str, topic: str, payloads: list[bytes], qos: int, protocol: MQTTProtocolVersion
) -> None:
    parts = urlsplit(url)
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"pub-{uuid.uuid4().hex[:12]}",
        protocol=protocol,
    )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for payload in payloads]
        for info in infos:
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT)
            if not info.is_published():
                raise TimeoutError(f"publish {info.mid} not acknowledged")
    finally:
        client.disconnect()
        client.loop_stop()


async def publish(
    url: str,
    topic: str,
    payloads: list[bytes],
    *,
    qos: int = 1,
    protocol: MQTTProtocolVersion = paho.MQTTv5,
) -> None:
    """Publish with paho (its network thread) and return once the broker acked them all."""
    await asyncio.to_thread(_publish_blocking, url, topic, payloads, qos, protocol)


async def mosquitto_pub(url: str, topic: str, payload: bytes) -> bool:
    """Publish once with the ``mosquitto_pub`` CLI; False if it is not installed."""
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        return False
    parts = urlsplit(url)
    proc = await asyncio.create_subprocess_exec(
        binary, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 1883),
        "-q", "1", "-t", topic, "-m", payload.decode(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"mosquitto_pub failed: {err.decode()}")
    return True


def _forget_session_blocking(url: str, client_id: str) -> None:
    parts = urlsplit(url)
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
    )
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, clean_start=True)
    client.loop_start()
    try:
        client.disconnect()
    finally:
        client.loop_stop()


async def forget_session(url: str, client_id: str) -> None:
    """Drop a test's persistent session from the shared broker."""
    await asyncio.to_thread(_forget_session_blocking, url, client_id)
