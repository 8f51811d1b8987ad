"""Lean simulated phones for the ingest benchmark (``--publisher raw``).

paho spends some 60 µs of Python per QoS 1 publication; on a 2-core machine the phone
processes then need more than a core to publish 20,000 pings/s, and the benchmark measures
them instead of the hub. These phones speak the same MQTT 3.1.1 on the wire (one TCP
connection per phone, CONNECT with a clean session, QoS 1 PUBLISH, the broker's PUBACKs
counted) from pre-encoded packets, for a few µs each.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

from tests.bench.control import prepare_worker
from tests.bench.ingest_phones import (
    CONNECT_PUMP_EVERY,
    FleetBase,
    Phone,
    PhoneSpec,
    location_payload,
    serve_phones,
)

PROTOCOL_LEVEL_311 = 4
CLEAN_SESSION = 0x02
CONNACK_BYTES = 4
PUBACK_BYTES = 4
READ_SIZE = 65536
MAX_PACKET_ID = 0xFFFF


def _length(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str) -> bytes:
    """CONNECT, MQTT 3.1.1, clean session, keepalive off (the runs are short)."""
    body = _string("MQTT") + bytes((PROTOCOL_LEVEL_311, CLEAN_SESSION, 0, 0)) + _string(client_id)
    return b"\x10" + _length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH at QoS 1."""
    body = _string(topic) + packet_id.to_bytes(2, "big") + payload
    return b"\x32" + _length(len(body)) + body


class RawPhoneFleet(FleetBase):
    """The phones of one process as plain sockets on one selector."""

    def __init__(self, spec: PhoneSpec) -> None:
        super().__init__(spec)
        self.socks: list[socket.socket] = []
        self.received: dict[socket.socket, int] = {}
        self._next_id = 0

    def connect(self) -> None:
        """Open every phone's connection and wait for the CONNACKs (bounded)."""
        spec = self.spec
        for number, phone in enumerate(spec.phones, 1):
            try:
                sock = socket.create_connection((spec.host, spec.port), spec.connect_timeout)
                sock.sendall(connect_packet(f"{phone.worker_id}-{spec.seed}"))
            except OSError as exc:
                self._error(f"{type(exc).__name__}: {exc}")
                continue
            self.socks.append(sock)
            self.received[sock] = 0
            self.selector.register(sock, selectors.EVENT_READ)
            if number % CONNECT_PUMP_EVERY == 0:
                self.pump(0)
        deadline = time.monotonic() + spec.connect_timeout
        while self._connacks() < len(self.socks) and time.monotonic() < deadline:
            self.pump(0.1)
        self.connected = self._connacks()

    def _connacks(self) -> int:
        return sum(count >= CONNACK_BYTES for count in self.received.values())

    def acked(self) -> int:
        """PUBACKs received so far, all phones (after each CONNACK)."""
        total = sum(self.received.values()) - CONNACK_BYTES * len(self.socks)
        return max(0, total // PUBACK_BYTES)

    def pump(self, timeout: float) -> None:
        """Count what the broker sent (CONNACK, then only PUBACKs)."""
        for key, _events in self.selector.select(timeout):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError as exc:
                data = b""
                self._error(f"{type(exc).__name__}: {exc}")
            if not data:
                self._error("broker closed a phone's connection")
                self.selector.unregister(sock)
                continue
            self.received[sock] += len(data)

    def _phone_count(self) -> int:
        return len(self.socks)

    def _encode_rows(
        self, phones: list[Phone], topics: list[str], count: int, ts_base: float
    ) -> list[list[Any]]:
        rows = []
        for i in range(count):
            packet_id = (self._next_id + i) % MAX_PACKET_ID + 1
            rows.append(
                [
                    publish_packet(topic, location_payload(phone, self.rng, ts_base + i), packet_id)
                    for phone, topic in zip(phones, topics, strict=True)
                ]
            )
        self._next_id += count
        return rows

    def _send(self, phone: int, item: Any) -> None:
        self.socks[phone].sendall(item)

    def close(self) -> None:
        """Close every phone's connection (DISCONNECT first)."""
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")
                sock.close()
        self.selector.close()


def raw_phones_main(pipe: Connection, spec: PhoneSpec) -> None:
    """Raw phone process entry point (the target of a ``multiprocessing.Process``)."""
    prepare_worker()
    serve_phones(pipe, RawPhoneFleet(spec), len(spec.phones))
