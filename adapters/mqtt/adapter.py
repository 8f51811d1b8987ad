"""The grid phones' MQTT adapter: broker messages in, batches to the location service,
acknowledgements back to the broker only once a batch is persisted.

Flow: paho's ``on_message`` (on the loop, see connection.py) appends the message to a
bounded buffer; a flusher task hands batches of at most ``batch_size`` (or whatever arrived
within ``batch_interval``) to ``LocationSink.ingest`` and then acks every message of the
batch. If the sink is not ready the batch is kept and retried with capped backoff; the
broker stops sending once ``receive_maximum`` messages are unacked (MQTT 5) and, should the
buffer fill anyway, the adapter stops reading the socket. Nothing is acked before it is
persisted, nothing is dropped, memory stays bounded.

A connection loss flips ``ready`` and a supervisor reconnects with capped, jittered
exponential backoff; the persistent session makes the broker keep and redeliver what was
not acked. Delivery is at least once: after a reconnect the broker may redeliver messages
the sink already has (their acks were lost with the connection); the location service
deduplicates by (worker, fix time).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from typing import Any

import structlog

from adapters.mqtt.address import BadBrokerUrl, BrokerAddress, parse_broker_url
from adapters.mqtt.broker import EmbeddedBroker, start_embedded_broker
from adapters.mqtt.connection import (
    ConnectFailed,
    ConnectionOptions,
    Delivery,
    MqttConnection,
)
from hub.config import MqttSettings
from hub.errors import HubError, NotReadyError
from hub.locations.ports import InboundMessage, LocationSink
from hub.tasks import TaskRegistry
from protocols.mqtt.parser import subscription_filters

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT = 10.0
"""Seconds one connection attempt (TCP, TLS, CONNACK, SUBACK) may take."""
DISCONNECT_TIMEOUT = 2.0
"""Seconds stop() waits for DISCONNECT to be written before closing the socket."""
DRAIN_TIMEOUT = 5.0
"""Seconds stop() lets buffered messages reach the sink (and be acked) before giving up;
what is left is not acked and the broker redelivers it to the next session."""
RECONNECT_MIN_DELAY = 0.1
SINK_RETRY_MIN_DELAY = 0.05
SINK_RETRY_MAX_DELAY = 5.0

Pending = tuple[InboundMessage, Delivery]


def backoff_delay(attempt: int, minimum: float, maximum: float) -> float:
    """Capped exponential backoff with jitter (so hub processes do not retry in step)."""
    delay = min(maximum, minimum * (2 ** min(attempt, 32)))
    return random.uniform(delay / 2, delay)


def topic_filters(settings: MqttSettings) -> tuple[str, ...]:
    """The filters to subscribe: our topics under the prefix, shared if so configured."""
    filters = subscription_filters(settings.topic_prefix.rstrip("/"))
    if settings.shared_group:
        filters = [f"$share/{settings.shared_group}/{f}" for f in filters]
    return tuple(filters)


class MqttAdapter:
    """Grid phones over MQTT (an ``Adapter``: start, stop, ready)."""

    name = "mqtt"

    def __init__(
        self,
        url: str | None,
        settings: MqttSettings,
        sink: LocationSink,
        tasks: TaskRegistry,
        *,
        drain_timeout: float = DRAIN_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._url = url
        self._settings = settings
        self._sink = sink
        self._tasks = tasks
        self._drain_timeout = drain_timeout
        self._connect_timeout = connect_timeout
        self._capacity = max(settings.receive_maximum, settings.batch_size)
        self._buffer: deque[Pending] = deque()
        self._in_flight = 0  # messages handed to the sink, not yet acked
        self._wakeup = asyncio.Event()  # something is buffered
        self._full = asyncio.Event()  # a whole batch is buffered
        self._drained = asyncio.Event()
        self._lost = asyncio.Event()
        self._conn: MqttConnection | None = None
        self._broker: EmbeddedBroker | None = None
        self._flusher: asyncio.Task[Any] | None = None
        self._supervisor: asyncio.Task[Any] | None = None
        self._ready = False
        self._log = log.bind(adapter=self.name, client_id=settings.client_id)

    @property
    def ready(self) -> bool:
        """Connected to the broker and subscribed."""
        return self._ready

    @property
    def broker_url(self) -> str | None:
        """The broker in use, without credentials (None until started)."""
        return self._conn.address.url() if self._conn is not None else None

    @property
    def reading_paused(self) -> bool:
        """True while the buffer is full and the socket is not read (back-pressure)."""
        return self._conn is not None and self._conn.paused

    @property
    def buffered(self) -> int:
        """Messages received and not yet acked (buffer plus the batch at the sink)."""
        return len(self._buffer) + self._in_flight

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe; return once SUBACKed or raise NotReadyError."""
        if self._conn is not None:
            return
        try:
            url = self._url
            if url is None:
                self._broker, url = await start_embedded_broker(self._settings)
            address = self._address(url)
            conn = MqttConnection(
                address,
                self._options(address),
                on_message=self._on_delivery,
                on_lost=self._on_lost,
            )
            self._conn = conn
            # The flusher runs before CONNACK: a resumed session's queued messages follow
            # CONNACK at once, ahead of SUBACK, and may fill the buffer.
            self._flusher = self._tasks.spawn(self._flush_loop(), name="mqtt-flusher")
            session_present = await conn.connect(self._connect_timeout)
        except ConnectFailed as err:
            await self._teardown()
            raise NotReadyError(f"MQTT broker not ready: {err}") from err
        except BaseException:
            await self._teardown()
            raise
        self._ready = True
        self._log.info(
            "mqtt connected",
            broker=address.url(),
            protocol=conn.options.protocol,
            session_present=session_present,
        )
        self._supervisor = self._tasks.spawn(self._supervise(), name="mqtt-reconnect")

    async def stop(self) -> None:
        """Drain what is buffered (time-boxed), disconnect, stop tasks; safe twice."""
        if self._conn is None and self._broker is None:
            return
        await _cancel(self._supervisor)
        self._supervisor = None
        await self._drain()
        await self._teardown()
        self._log.info("mqtt adapter stopped")

    async def _drain(self) -> None:
        conn = self._conn
        if conn is None or not conn.connected or self._flusher is None or not self.buffered:
            return
        conn.pause_reading()
        self._drained.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._drain_timeout):
                await self._drained.wait()
        if self.buffered:
            self._log.warning(
                "mqtt stop: messages left unacked; the broker redelivers them",
                unacked=self.buffered,
            )

    async def _teardown(self) -> None:
        self._ready = False
        await _cancel(self._supervisor)
        await _cancel(self._flusher)
        self._supervisor = self._flusher = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.disconnect(DISCONNECT_TIMEOUT)
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.stop()
        self._buffer.clear()
        self._in_flight = 0
        self._wakeup.clear()
        self._full.clear()
        self._lost.clear()

    def _address(self, url: str) -> BrokerAddress:
        try:
            return parse_broker_url(url)
        except BadBrokerUrl as err:
            raise HubError("config.invalid", f"mqtt_url: {err}", 500) from err

    def _options(self, address: BrokerAddress) -> ConnectionOptions:
        s = self._settings
        password = address.password
        if password is None and s.password is not None:
            password = s.password.get_secret_value()
        return ConnectionOptions(
            client_id=s.client_id,
            protocol=address.protocol or s.protocol,
            filters=topic_filters(s),
            keepalive=s.keepalive,
            session_expiry=s.session_expiry,
            receive_maximum=s.receive_maximum,
            username=address.username or s.username,
            password=password,
            tls_ca_file=s.tls_ca_file,
            tls_cert_file=s.tls_cert_file,
            tls_key_file=s.tls_key_file,
        )

    # ---- connection ---------------------------------------------------------------------

    def _on_lost(self, reason: str) -> None:
        self._ready = False
        self._log.warning("mqtt connection lost", reason=reason, unacked=self.buffered)
        self._lost.set()

    async def _supervise(self) -> None:
        while True:
            await self._lost.wait()
            self._lost.clear()
            attempt = 0
            while True:
                await asyncio.sleep(
                    backoff_delay(attempt, RECONNECT_MIN_DELAY, self._settings.reconnect_max_delay)
                )
                attempt += 1
                conn = self._conn
                if conn is None:
                    return
                try:
                    session_present = await conn.connect(self._connect_timeout)
                except ConnectFailed as err:
                    self._log.debug("mqtt reconnect failed", attempt=attempt, error=str(err))
                    continue
                break
            self._ready = True
            self._log.info(
                "mqtt connection restored", attempts=attempt, session_present=session_present
            )
            if not session_present:
                self._log.warning(
                    "mqtt broker had no session for us: what it queued meanwhile is gone"
                )

    # ---- buffer, batches, acks ----------------------------------------------------------

    def _on_delivery(self, delivery: Delivery) -> None:
        message = InboundMessage(delivery.topic, delivery.payload, time.time())
        self._buffer.append((message, delivery))
        self._wakeup.set()
        if len(self._buffer) >= self._settings.batch_size:
            self._full.set()
        if self.buffered >= self._capacity and self._conn is not None:
            self._conn.pause_reading()

    async def _flush_loop(self) -> None:
        batch_size = self._settings.batch_size
        while True:
            if not self._buffer:
                self._drained.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            if len(self._buffer) < batch_size:
                # Wait briefly for a fuller batch; a full one goes at once.
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.batch_interval):
                        await self._full.wait()
            count = min(batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(count)]
            if len(self._buffer) < batch_size:
                self._full.clear()
            self._in_flight = count
            await self._ingest([message for message, _ in batch])
            conn = self._conn
            if conn is not None:
                # One write per connection generation (normally one for the whole batch).
                acks: dict[int, list[tuple[int, int]]] = {}
                for _, delivery in batch:
                    acks.setdefault(delivery.generation, []).append((delivery.mid, delivery.qos))
                for generation, deliveries in acks.items():
                    conn.ack_many(deliveries, generation)
            self._in_flight = 0
            if conn is not None and conn.paused and self.buffered < self._capacity:
                conn.resume_reading()

    async def _ingest(self, messages: list[InboundMessage]) -> None:
        """Hand a batch to the sink until it takes it (retrying with capped backoff)."""
        attempt = 0
        while True:
            try:
                await self._sink.ingest(messages)
            except NotReadyError as err:
                error = err.message
            except Exception as err:  # a sink bug must not lose the batch either
                error = f"{type(err).__name__}: {err}"
                self._log.error("location sink failed", error=error, exc_info=True)
            else:
                if attempt:
                    self._log.info("location sink recovered", attempts=attempt)
                return
            if attempt == 0:
                self._log.warning(
                    "location sink not ready; holding the batch unacked",
                    error=error,
                    batch=len(messages),
                )
            await asyncio.sleep(
                min(SINK_RETRY_MAX_DELAY, SINK_RETRY_MIN_DELAY * 2 ** min(attempt, 16))
            )
            attempt += 1


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    await asyncio.wait([task])
