"""The MQTT side of the ingest benchmark: simulated grid phones, and the bare paho drain.

A phone process holds a share of the K phones, one paho client (MQTT 3.1.1, clean session)
per phone, all driven from one thread through a selector: paho's own ``loop_start`` would
cost a thread per phone, and 500 threads per process fighting for the GIL would measure
the publishers rather than the hub. On ``publish`` each phone sends its pings at QoS 1,
phone after phone, the payloads built before the clock starts, with at most ``window``
messages per process not yet acknowledged by the broker.

The bare process is what a subscriber costs when it does nothing: paho's ``loop_start``,
MQTT 5, the hub's topic filters at QoS 1, automatic acknowledgements and an ``on_message``
that counts.

Both serve the orchestrator's commands over a ``multiprocessing`` pipe and reply with
dicts that carry a ``type``.
"""

from __future__ import annotations

import contextlib
import math
import random
import selectors
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from protocols.mqtt import subscription_filters
from tests.bench.control import Message, cpu_times, prepare_worker

KEEPALIVE = 120
"""Seconds; the idle loop calls ``loop_misc`` well within it."""
MISC_INTERVAL = 5.0
IDLE_POLL = 0.5
CONNECT_PUMP_EVERY = 50
"""Phones connected between two reads of the brokers' CONNACKs (keeps the backlog short)."""
PUMP_EVERY = 200
"""Publications between two reads of the broker's PUBACKs."""
JITTER_DEG = 0.0002
"""How far (about 20 m) a ping strays from the phone's home point, in degrees."""
ACCURACY_M = (5.0, 25.0)
MAX_ERRORS_KEPT = 5
BARE_POLL = 0.02


@dataclass(frozen=True)
class Phone:
    """One simulated phone: its worker id and a home point inside the worker's grid."""

    worker_id: str
    lat: float
    lon: float


@dataclass(frozen=True)
class PhoneSpec:
    """A phone process: where the broker is and which phones it simulates."""

    index: int
    host: str
    port: int
    phones: tuple[Phone, ...]
    connect_timeout: float
    seed: int


def location_topic(prefix: str, worker_id: str) -> str:
    """The topic a phone publishes its fixes to."""
    return f"{prefix}/grid/{worker_id}/location"


def location_payload(phone: Phone, rng: random.Random, fix_time: float) -> bytes:
    """A ``grid/<id>/location`` message near the phone's home point."""
    return orjson.dumps(
        {
            "lat": round(phone.lat + rng.uniform(-JITTER_DEG, JITTER_DEG), 6),
            "lon": round(phone.lon + rng.uniform(-JITTER_DEG, JITTER_DEG), 6),
            "acc": round(rng.uniform(*ACCURACY_M), 1),
            "ts": fix_time,
        }
    )


class FleetBase:
    """What the paho phones and the raw phones share: a selector, the errors kept, the timed
    publishing loop with its window of unacknowledged pings, and idling between commands.
    Subclasses say how many phones are connected, how pings are encoded and sent, how the
    broker's answers are read (``pump``) and how many PUBACKs came back (``acked``)."""

    def __init__(self, spec: PhoneSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.selector = selectors.DefaultSelector()
        self.connected = 0
        self.errors: list[str] = []

    def _error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def pump(self, timeout: float) -> None:
        """Read what the broker sent and write what is queued."""
        raise NotImplementedError

    def acked(self) -> int:
        """PUBACKs received so far, all phones."""
        raise NotImplementedError

    def _phone_count(self) -> int:
        raise NotImplementedError

    def _encode_rows(
        self, phones: list[Phone], topics: list[str], count: int, ts_base: float
    ) -> list[list[Any]]:
        """Row ``i`` holds each phone's ``i``-th ping, ready for ``_send``."""
        raise NotImplementedError

    def _send(self, phone: int, item: Any) -> None:
        raise NotImplementedError

    def publish(self, command: Message) -> Message:
        """Each phone publishes ``count`` pings with fix times ``ts_base + i``."""
        count = int(command["count"])
        prefix = str(command["prefix"])
        window = int(command["window"])
        ts_base = float(command["ts_base"])
        deadline = time.monotonic() + float(command["timeout"])
        phones = list(self.spec.phones[: self._phone_count()])
        topics = [location_topic(prefix, phone.worker_id) for phone in phones]
        rows = self._encode_rows(phones, topics, count, ts_base)
        total = count * len(phones)
        acked_before = self.acked()
        sent = 0
        cpu_before = cpu_times()
        first = time.time()
        for row in rows:
            for phone, item in enumerate(row):
                self._send(phone, item)
                sent += 1
                if sent % PUMP_EVERY == 0:
                    self.pump(0)
                    while (
                        sent - (self.acked() - acked_before) > window
                        and time.monotonic() < deadline
                    ):
                        self.pump(0.01)
        last_send = time.time()
        while self.acked() - acked_before < total and time.monotonic() < deadline:
            self.pump(0.05)
        cpu_after = cpu_times()
        acked = self.acked() - acked_before
        if acked < total:
            self._error(f"timed out: {acked} of {total} acknowledged by the broker")
        return {
            "type": "published",
            "sent": sent,
            "acked": acked,
            "first": first,
            "last_send": last_send,
            "last_ack": time.time(),
            "cpu": (cpu_after[0] - cpu_before[0]) + (cpu_after[1] - cpu_before[1]),
            "errors": list(self.errors),
        }

    def idle_until_command(self, pipe: Connection) -> Message | None:
        """Keep the connections alive until the orchestrator sends something (None: gone)."""
        while True:
            try:
                if pipe.poll(0):
                    message: Message = pipe.recv()
                    return message
            except (EOFError, OSError):
                return None
            self.pump(IDLE_POLL)


class PhoneFleet(FleetBase):
    """The phones of one process as paho clients, on one selector."""

    def __init__(self, spec: PhoneSpec) -> None:
        super().__init__(spec)
        self.clients: list[paho.Client] = []
        self._acks = 0
        self._last_misc = time.monotonic()

    # ---- connections --------------------------------------------------------------------

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._error(f"CONNACK {reason}")
        else:
            self.connected += 1

    def _on_publish(self, client: paho.Client, _u: Any, _mid: int, _r: Any, _p: Any) -> None:
        self._acks += 1

    def acked(self) -> int:
        """PUBACKs received so far, all phones."""
        return self._acks

    def _on_disconnect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._error(f"disconnected: {reason}")
        sock = client.socket()
        if sock is not None:
            self._forget(sock)

    def _forget(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def connect(self) -> None:
        """Connect every phone and wait for their CONNACKs (bounded)."""
        spec = self.spec
        for number, phone in enumerate(spec.phones, 1):
            client = paho.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=f"{phone.worker_id}-{spec.seed}",
                protocol=paho.MQTTv311,
                clean_session=True,
            )
            client.max_inflight_messages_set(0)  # no client-side cap: the window below is it
            client.max_queued_messages_set(0)
            client.on_connect = self._on_connect
            client.on_publish = self._on_publish
            client.on_disconnect = self._on_disconnect
            try:
                client.connect(spec.host, spec.port, keepalive=KEEPALIVE)
            except OSError as exc:
                self._error(f"{type(exc).__name__}: {exc}")
                continue
            sock = client.socket()
            if sock is not None:
                self.selector.register(sock, selectors.EVENT_READ, client)
            self.clients.append(client)
            if number % CONNECT_PUMP_EVERY == 0:
                self.pump(0)
        deadline = time.monotonic() + spec.connect_timeout
        while self.connected < len(self.clients) and time.monotonic() < deadline:
            self.pump(0.1)

    def pump(self, timeout: float) -> None:
        """Read what the broker sent (CONNACK, PUBACK, PINGRESP) and write what is queued."""
        for key, _events in self.selector.select(timeout):
            client: paho.Client = key.data
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._forget(key.fileobj)
        now = time.monotonic()
        if now - self._last_misc > MISC_INTERVAL:
            self._last_misc = now
            for client in self.clients:
                if client.want_write():
                    client.loop_write()
                client.loop_misc()

    # ---- publishing ---------------------------------------------------------------------

    def _phone_count(self) -> int:
        return len(self.clients)

    def _encode_rows(
        self, phones: list[Phone], topics: list[str], count: int, ts_base: float
    ) -> list[list[Any]]:
        return [
            [
                (topic, location_payload(phone, self.rng, ts_base + i))
                for phone, topic in zip(phones, topics, strict=True)
            ]
            for i in range(count)
        ]

    def _send(self, phone: int, item: Any) -> None:
        topic, payload = item
        self.clients[phone].publish(topic, payload, qos=1)

    def close(self) -> None:
        """Disconnect every phone."""
        for client in self.clients:
            client.disconnect()
        self.selector.close()


class Fleet(Protocol):
    """What a phone process needs of its phones (paho's here, or the raw ones)."""

    connected: int
    errors: list[str]

    def connect(self) -> None: ...
    def publish(self, command: Message) -> Message: ...
    def idle_until_command(self, pipe: Connection) -> Message | None: ...
    def close(self) -> None: ...


def serve_phones(pipe: Connection, fleet: Fleet, phones: int) -> None:
    """Connect the phones, report ``ready``, then publish on command until ``stop``."""
    try:
        fleet.connect()
        pipe.send(
            {"type": "ready", "connected": fleet.connected, "phones": phones,
             "errors": list(fleet.errors)}
        )  # fmt: skip
        while (command := fleet.idle_until_command(pipe)) is not None:
            if command["cmd"] == "stop":
                break
            if command["cmd"] == "publish":
                pipe.send(fleet.publish(command))
    finally:
        fleet.close()


def phones_main(pipe: Connection, spec: PhoneSpec) -> None:
    """Phone process entry point (the target of a ``multiprocessing.Process``)."""
    prepare_worker()
    serve_phones(pipe, PhoneFleet(spec), len(spec.phones))


# ---- the bare subscriber ----------------------------------------------------------------


@dataclass(frozen=True)
class BareSpec:
    """The bare subscriber: broker, client id, topic prefix, receive maximum."""

    host: str
    port: int
    client_id: str
    prefix: str
    receive_maximum: int
    connect_timeout: float


class BareCounter:
    """What the bare subscriber's ``on_message`` touches, and nothing more."""

    def __init__(self) -> None:
        self.total = 0
        self.expected = math.inf
        self.first_recv = 0.0
        self.last_recv = 0.0
        self.done = threading.Event()

    def arm(self, expected: int) -> None:
        """Count ``expected`` messages from zero."""
        self.total = 0
        self.expected = expected
        self.first_recv = self.last_recv = 0.0
        self.done.clear()

    def on_message(self, _client: paho.Client, _userdata: Any, _message: paho.MQTTMessage) -> None:
        """Count one message."""
        now = time.time()
        self.total += 1
        if self.total == 1:
            self.first_recv = now
        self.last_recv = now
        if self.total >= self.expected:
            self.done.set()


def bare_main(pipe: Connection, spec: BareSpec) -> None:
    """Bare subscriber entry point: connect, subscribe, then count what arrives."""
    prepare_worker()
    counter = BareCounter()
    subscribed = threading.Event()
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=spec.client_id,
        protocol=paho.MQTTv5,
    )
    client.on_message = counter.on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.ReceiveMaximum = spec.receive_maximum
    try:
        client.connect(spec.host, spec.port, keepalive=KEEPALIVE, clean_start=True,
                       properties=properties)  # fmt: skip
        client.loop_start()
        filters = subscription_filters(spec.prefix)
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        ok = subscribed.wait(spec.connect_timeout)
    except OSError as exc:
        pipe.send({"type": "ready", "error": f"{type(exc).__name__}: {exc}"})
        return
    pipe.send({"type": "ready", "error": None if ok else "no SUBACK"})
    try:
        sent_done = True
        while True:
            if pipe.poll(BARE_POLL):
                command = pipe.recv()
                if command["cmd"] == "stop":
                    break
                if command["cmd"] == "expect":
                    counter.arm(int(command["count"]))
                    sent_done = False
                    pipe.send({"type": "armed"})
                elif command["cmd"] == "report":
                    pipe.send(
                        {
                            "type": "report",
                            "total": counter.total,
                            "first_recv": counter.first_recv,
                            "last_recv": counter.last_recv,
                        }
                    )
            if not sent_done and counter.done.is_set():
                sent_done = True
                pipe.send({"type": "done", "total": counter.total,
                           "last_recv": counter.last_recv})  # fmt: skip
    except (EOFError, OSError):
        pass
    finally:
        client.disconnect()
        client.loop_stop()
