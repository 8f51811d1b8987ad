"""A paho-mqtt v2 client driven by the asyncio event loop (knows nothing of the hub).

paho's external-loop hooks put its socket on the loop: ``on_socket_open`` adds a reader
that calls ``loop_read``, ``on_socket_register_write`` / ``unregister_write`` add and remove
a writer that calls ``loop_write``, and a one-second timer calls ``loop_misc`` (keepalive).
Every paho call runs on the loop thread, with one exception: ``Client.reconnect()`` resolves
the host, opens the TCP connection and does the TLS handshake with blocking calls, so it
runs on a worker thread. While it does, the loop does not touch the client (no reader,
writer or timer is registered yet, acks are refused); the socket hooks it fires are recorded
and applied on the loop once the thread returns. CONNECT itself is written by the loop.

Once the socket is on the loop, the connection reads it itself, in chunks: QoS 0/1 PUBLISH
packets are decoded here (frames.py) and every other packet is handed to paho, which reads
it from a :class:`~adapters.mqtt.stream.BrokerStream` standing in for its socket; all
writes, paho's and the acknowledgements, go out through that stream in order.

Acknowledgements are manual: the owner acks each QoS 1 message when it has been persisted,
in batches (one write for a whole batch). A message carries the connection generation it
arrived on; an ack for an older generation is dropped, because after a reconnect the broker
redelivers unacked messages and may reuse their packet ids for other messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.mqtt.address import BrokerAddress, ProtocolVersion
from adapters.mqtt.frames import (
    MalformedPacket,
    decode_publish,
    is_fast_publish,
    next_frame,
    puback,
)
from adapters.mqtt.stream import BrokerStream

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

MISC_INTERVAL = 1.0
"""Seconds between ``loop_misc`` calls (keepalive pings and their timeout)."""
READ_CHUNK = 256 * 1024
"""Bytes read from the socket per readable event (hundreds of pings)."""
SUBSCRIBE_QOS = 1


class ConnectFailed(Exception):
    """One connection attempt failed (refused, unreachable, timed out, not subscribed)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One PUBLISH from the broker, to be acked with ``ack(mid, qos, generation)``."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """What a connection needs besides the broker address."""

    client_id: str
    protocol: ProtocolVersion
    filters: tuple[str, ...]
    keepalive: int
    session_expiry: int
    receive_maximum: int
    username: str | None = None
    password: str | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


class MqttConnection:
    """A persistent-session MQTT subscriber on the running event loop."""

    def __init__(
        self,
        address: BrokerAddress,
        options: ConnectionOptions,
        *,
        on_message: Callable[[Delivery], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self.address = address
        self.options = options
        self._on_message_cb = on_message
        self._on_lost_cb = on_lost
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client = self._make_client()
        self._sock: SocketLike | None = None  # the socket registered on the loop
        self._stream: BrokerStream | None = None  # what paho uses as its socket meanwhile
        self._inbuf = bytearray()  # read from the socket, not yet a whole packet
        self._thread_open: SocketLike | None = None
        self._thread_wants_write = False
        self._writing = False
        self._paused = False
        self._connected = False
        self._link_up = False  # CONNACK accepted, socket not closed since
        self._closing = False
        self._generation = 0
        self._misc: asyncio.TimerHandle | None = None
        self._connack: asyncio.Future[tuple[ReasonCode, bool]] | None = None
        self._subacks: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._closed = asyncio.Event()
        self._closed.set()

    # ---- set-up -------------------------------------------------------------------------

    @property
    def v5(self) -> bool:
        """True when speaking MQTT 5."""
        return self.options.protocol == "5"

    def _make_client(self) -> paho.Client:
        opts = self.options
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=opts.client_id,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            # MQTT 3.1.1: a persistent session; MQTT 5 uses clean_start below instead.
            clean_session=None if self.v5 else False,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if opts.username is not None:
            client.username_pw_set(opts.username, opts.password)
        if self.address.tls:
            client.tls_set(
                ca_certs=str(opts.tls_ca_file) if opts.tls_ca_file else None,
                certfile=str(opts.tls_cert_file) if opts.tls_cert_file else None,
                keyfile=str(opts.tls_key_file) if opts.tls_key_file else None,
            )
        properties: Properties | None = None
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = opts.session_expiry
            properties.ReceiveMaximum = opts.receive_maximum
        client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=opts.keepalive,
            clean_start=False,  # ignored by paho for 3.1.1 (clean_session above)
            properties=properties,
        )
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def connected(self) -> bool:
        """CONNACK received and subscriptions acknowledged, and not lost since."""
        return self._connected

    @property
    def generation(self) -> int:
        """Increments on every accepted CONNACK (messages may arrive before SUBACK)."""
        return self._generation

    # ---- connect ------------------------------------------------------------------------

    async def connect(self, timeout: float) -> bool:
        """One attempt: open, CONNECT, wait for CONNACK, SUBSCRIBE, wait for SUBACK.

        Returns the broker's session-present flag. Raises ConnectFailed.
        """
        if self._sock is not None or self._client.socket() is not None:
            self._abort()
        self._closing = False
        self._closed.clear()
        self._connack = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._open_socket()
                reason, session_present = await self._connack
                if reason.is_failure:
                    raise ConnectFailed(f"broker refused the connection: {reason}")
                await self._subscribe()
        except TimeoutError:
            self._abort()
            raise ConnectFailed(f"no answer from the broker within {timeout} s") from None
        except ConnectFailed:
            self._abort()
            raise
        except BaseException:
            self._abort()
            raise
        finally:
            self._connack = None
        self._connected = True
        return session_present

    async def _open_socket(self) -> None:
        self._thread_open = None
        self._thread_wants_write = False
        future = self._loop.run_in_executor(None, self._client.reconnect)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # The thread cannot be interrupted: let it finish, then close what it opened.
            await asyncio.wait([future])
            if not future.cancelled() and future.exception() is None:
                self._adopt_thread_socket()
            raise
        except (OSError, ValueError) as err:  # ssl.CertificateError is a ValueError
            raise ConnectFailed(f"cannot reach {self.address.url()}: {err}") from err
        self._adopt_thread_socket()

    def _adopt_thread_socket(self) -> None:
        sock, self._thread_open = self._thread_open, None
        if sock is None:
            return
        self._register(sock)
        if self._thread_wants_write:
            self._thread_wants_write = False
            self._start_writing()

    async def _subscribe(self) -> None:
        if self.v5:
            # Retained messages only for a new subscription: a resumed session would
            # otherwise get every retained ping (OwnTracks retains) again on each reconnect.
            opts = SubscribeOptions(qos=SUBSCRIBE_QOS, retainHandling=1)
            topics: list[tuple[str, Any]] = [(f, opts) for f in self.options.filters]
        else:
            topics = [(f, SUBSCRIBE_QOS) for f in self.options.filters]
        rc, mid = self._client.subscribe(topics)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectFailed(f"cannot subscribe: {paho.error_string(rc)}")
        future: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._subacks[mid] = future
        try:
            codes = await future
        finally:
            self._subacks.pop(mid, None)
        filters = self.options.filters
        refused = [f for f, code in zip(filters, codes, strict=False) if code.is_failure]
        if refused or len(codes) != len(self.options.filters):
            raise ConnectFailed(f"broker refused subscriptions: {refused or codes}")

    # ---- flow control and acks ----------------------------------------------------------

    def ack(self, mid: int, qos: int, generation: int) -> bool:
        """Acknowledge a delivery; False (and nothing sent) if its connection is gone."""
        return self.ack_many([(mid, qos)], generation)

    def ack_many(self, deliveries: list[tuple[int, int]], generation: int) -> bool:
        """Acknowledge ``(mid, qos)`` deliveries of one generation in a single write; False
        (and nothing sent) if their connection is gone."""
        if not self._link_up or generation != self._generation:
            return False
        stream = self._stream
        if stream is None:
            return False
        packets = b"".join([puback(mid) for mid, qos in deliveries if qos == 1])
        if not packets:
            return True
        try:
            stream.write(packets)
        except OSError as err:
            stream.fail(err)
            self._loop.call_soon(self._on_readable)  # paho learns of the loss there
            return False
        return True

    def pause_reading(self) -> None:
        """Stop reading the socket (the broker's sends back up in TCP, then in its queue)."""
        if self._paused:
            return
        self._paused = True
        if self._sock is not None:
            self._loop.remove_reader(self._sock)

    def resume_reading(self) -> None:
        """Undo pause_reading."""
        if not self._paused:
            return
        self._paused = False
        if self._sock is not None:
            self._loop.add_reader(self._sock, self._on_readable)
            self._loop.call_soon(self._on_readable)  # TLS may hold decrypted bytes

    @property
    def paused(self) -> bool:
        """True while reading is paused."""
        return self._paused

    # ---- disconnect ---------------------------------------------------------------------

    async def disconnect(self, timeout: float) -> None:
        """Send DISCONNECT (the session stays on the broker) and close; safe twice."""
        self._closing = True
        self._connected = False
        self._fail_pending("disconnecting")
        if self._sock is None:
            self._abort()
            return
        self._client.disconnect()
        if self._sock is not None and not self._writing:
            self._client.loop_write()
        if self._sock is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._closed.wait()
        self._abort()

    def _abort(self) -> None:
        """Close the socket at once, no DISCONNECT (for failed attempts and stragglers)."""
        self._connected = False
        self._link_up = False
        if self._client.socket() is not None:
            # paho has no public "close now"; _sock_close fires on_socket_close first.
            self._client._sock_close()
        if self._sock is not None:
            self._unregister(self._sock)
        self._fail_pending("connection closed")
        self._closed.set()

    def _fail_pending(self, why: str) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(ConnectFailed(why))
        for future in self._subacks.values():
            if not future.done():
                future.set_exception(ConnectFailed(why))

    # ---- socket hooks -------------------------------------------------------------------

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _register(self, sock: SocketLike) -> None:
        self._sock = sock
        self._inbuf.clear()
        self._stream = BrokerStream(sock, self._start_writing)
        # paho has no hook for a socket of the caller's making: swap it in here, before
        # paho writes CONNECT (it is queued until the loop writes it).
        self._client._sock = self._stream
        self._writing = False
        if not self._paused:
            self._loop.add_reader(sock, self._on_readable)
        self._misc = self._loop.call_later(MISC_INTERVAL, self._on_misc)

    def _unregister(self, sock: SocketLike) -> None:
        if self._sock is not sock:
            return
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._sock = None
        self._stream = None
        self._inbuf.clear()
        self._writing = False
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        self._closed.set()

    def _start_writing(self) -> None:
        if self._sock is not None and not self._writing:
            self._writing = True
            self._loop.add_writer(self._sock, self._on_writable)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        if self._on_loop_thread():
            self._register(sock)
        else:
            self._thread_open = sock

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        if isinstance(sock, BrokerStream):
            sock = sock.raw
        if self._on_loop_thread():
            self._unregister(sock)
        elif self._thread_open is sock:
            self._thread_open = None

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        if self._on_loop_thread():
            self._start_writing()
        else:
            self._thread_wants_write = True

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: SocketLike) -> None:
        if not self._on_loop_thread():
            self._thread_wants_write = False
        elif self._writing and self._sock is not None and sock in (self._sock, self._stream):
            stream = self._stream
            if stream is None or not stream.wants_write:
                self._writing = False
                self._loop.remove_writer(self._sock)

    def _on_readable(self) -> None:
        stream = self._stream
        if self._paused or stream is None:
            return
        data = stream.read(READ_CHUNK)
        if data is not None:
            if data:
                self._inbuf += data
                # What paho would note had it read the bytes (its keepalive check uses it).
                self._client._last_bytes_received = time.monotonic()
            else:
                self._client.loop_read()  # paho reads the end of the stream and reports it
                return
        self._process_packets()
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket) and not self._paused and sock.pending():
            self._loop.call_soon(self._on_readable)

    def _process_packets(self) -> None:
        buf = self._inbuf
        pos = 0
        v5 = self.v5
        try:
            while not self._paused and self._stream is not None:
                frame = next_frame(buf, pos)
                if frame is None:
                    break
                pos = frame.end
                if is_fast_publish(frame.header):
                    topic, payload, mid = decode_publish(buf, frame, v5=v5)
                    qos = (frame.header >> 1) & 3
                    self._on_message_cb(Delivery(topic, payload, mid, qos, self._generation))
                else:
                    self._stream.feed(buf[frame.start : frame.end])
                    if self._client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        return  # paho closed the socket and reported the disconnect
        except MalformedPacket as err:
            self._stream_failed(f"malformed packet from the broker: {err}")
            return
        del buf[:pos]

    def _stream_failed(self, why: str) -> None:
        stream = self._stream
        if stream is not None:
            stream.fail(ConnectionError(why))
            self._client.loop_read()

    def _on_writable(self) -> None:
        stream = self._stream
        if self._sock is None or stream is None:
            return
        try:
            stream.flush()
        except OSError as err:
            stream.fail(err)
            self._loop.call_soon(self._on_readable)
            return
        if self._client.want_write():
            self._client.loop_write()  # through the stream; unregisters when all is out
        elif not stream.wants_write and self._writing and self._sock is not None:
            self._writing = False
            self._loop.remove_writer(self._sock)

    def _on_misc(self) -> None:
        self._misc = None
        if self._sock is None:
            return
        self._client.loop_misc()
        if self._sock is not None:
            self._misc = self._loop.call_later(MISC_INTERVAL, self._on_misc)

    # ---- protocol callbacks (all on the loop thread, from loop_read/loop_write/misc) ----

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:
            # Before the connect() caller resumes: a resumed session's queued messages
            # follow CONNACK at once and must carry the new generation.
            self._generation += 1
            self._link_up = True
        if self._connack is not None and not self._connack.done():
            self._connack.set_result((reason, bool(flags.session_present)))

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        future = self._subacks.get(mid)
        if future is not None and not future.done():
            future.set_result(list(reasons))

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected
        self._connected = False
        self._link_up = False
        self._fail_pending(f"connection lost: {reason}")
        if was_connected and not self._closing:
            self._on_lost_cb(str(reason))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # Only what the fast path leaves to paho (a QoS 2 PUBLISH) gets here.
        self._on_message_cb(
            Delivery(
                message.topic, bytes(message.payload), message.mid, message.qos, self._generation
            )
        )
