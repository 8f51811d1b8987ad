"""SIP over UDP and TCP on one port, shared by the adapters that speak SIP (GB/T 28181
devices, the video network's cascade and calls): the signalling plane of the media sessions.
Messages are framed and parsed with protocols/sip, requests matched to server transactions (a
retransmitted request is answered with the response already sent, never handled twice), and
our own requests sent as client transactions with RFC 3261 retransmission and timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from protocols.sip.message import (
    SipFramer,
    SipParseError,
    SipRequest,
    SipResponse,
    encode,
    make_response,
    parse_message,
    response_address,
)
from protocols.sip.transaction import (
    AckAbsorbed,
    ClientTransaction,
    Retransmission,
    ServerTransactions,
    TimerConfig,
)
from streams.ps_pull import outward_address

log = structlog.get_logger(__name__)

TICK = 0.05
"""Seconds between two runs of the retransmission timers."""
TCP_READ = 65536
TCP_IDLE_TIMEOUT = 600.0
"""Seconds a TCP connection may stay silent before it is closed (keepalives come far more
often; a device that vanished without FIN must not hold a slot forever)."""
MAX_CLIENT_TRANSACTIONS = 10000
PORT_PICK_ATTEMPTS = 20
"""Tries to find a port number free for both UDP and TCP when the system picks (port 0)."""
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
"""Bytes the kernel may queue for the SIP socket (capped by net.core.rmem_max)."""


@dataclass(eq=False)
class Peer:
    """Where a message came from and where its answer goes: a UDP address, or a TCP
    connection (answers go back on the same connection)."""

    transport: str  # "udp" | "tcp"
    host: str
    port: int
    connection: _TcpConnection | None = None

    @property
    def reliable(self) -> bool:
        """TCP: no retransmissions."""
        return self.transport == "tcp"


@dataclass(slots=True)
class TransportCounters:
    """What the SIP sockets did (/metrics)."""

    received: int = 0
    sent: int = 0
    retransmissions_answered: int = 0
    retransmitted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    tcp_connections: int = 0

    def reject(self, reason: str) -> None:
        """Count a message refused at the edge."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


def advertised_host(sip_address: str, bind_host: str) -> str:
    """The address peers reach our SIP at (Contact, Via, SDP): the configured one, else the
    bound one, else (bound to every interface) this host's address on its default route."""
    if sip_address:
        return sip_address
    return outward_address() if bind_host in ("", "0.0.0.0", "::") else bind_host


RequestHandler = Callable[[SipRequest, Peer], None]
"""Called for each new request; it must answer through ``SipTransport.respond`` (at once or
later from a task)."""


class _TcpConnection:
    def __init__(self, transport: SipTransport, writer: asyncio.StreamWriter) -> None:
        self.transport = transport
        self.writer = writer
        self.closed = asyncio.Event()
        peer = writer.get_extra_info("peername") or ("", 0)
        self.peer = Peer("tcp", str(peer[0]), int(peer[1]), self)

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        peer = Peer("udp", str(addr[0]), int(str(addr[1])))
        if data.strip(b"\r\n") == b"":
            return  # RFC 5626 keepalive ping
        try:
            message = parse_message(data, self.owner.max_message)
        except SipParseError as err:
            self.owner.counters.reject("malformed")
            self.owner.on_malformed(err, peer)
            return
        self.owner.dispatch(message, peer)


class SipTransport:
    """UDP and TCP SIP on one address; dispatches requests, matches responses."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: RequestHandler,
        *,
        max_message: int = 65535,
        max_connections: int = 2000,
        timers: TimerConfig | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.max_message = max_message
        self.max_connections = max_connections
        self.timers = timers or TimerConfig()
        self.counters = TransportCounters()
        self._handler = handler
        self._server_tx = ServerTransactions(self.timers)
        self._client_tx: dict[tuple[str, str], tuple[ClientTransaction, Peer,
                                                     asyncio.Future[SipResponse]]] = {}  # fmt: skip
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[_TcpConnection] = set()
        self._timer: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> int:
        """Bind UDP and TCP on the same port (port 0: the system picks one, and picks again
        while that number is taken for TCP); the port."""
        loop = asyncio.get_running_loop()
        attempts = PORT_PICK_ATTEMPTS if self.port == 0 else 1
        for attempt in range(attempts):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(self.host, self.port)
            )
            port = int(udp.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(
                    self._accepted, self.host, port, reuse_address=True
                )
            except OSError:
                udp.close()
                if attempt + 1 == attempts:
                    raise
                continue
            break
        self._udp = udp
        sock = udp.get_extra_info("socket")
        if sock is not None:  # a burst of keepalives must queue, not be dropped by the kernel
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        self.port = port
        self._timer = loop.create_task(self._tick(), name="sip timers")
        return port

    async def stop(self) -> None:
        """Close the sockets and connections; pending requests fail. Safe to call twice."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for connection in list(self._connections):
            connection.writer.close()
        for task in list(self._readers):
            task.cancel()
        if self._readers:
            await asyncio.wait(self._readers, timeout=2)
        for _, _, future in self._client_tx.values():
            if not future.done():
                future.set_exception(ConnectionError("the SIP server stopped"))
        self._client_tx.clear()

    # -- sending -------------------------------------------------------------------------

    def send(self, data: bytes, peer: Peer) -> None:
        """Send bytes to a peer (UDP datagram or its TCP connection)."""
        self.counters.sent += 1
        if peer.connection is not None:
            peer.connection.send(data)
        elif self._udp is not None:
            self._udp.sendto(data, (peer.host, peer.port))

    def respond(self, request: SipRequest, peer: Peer, response: SipResponse) -> None:
        """Send a response and remember it for the request's retransmissions."""
        data = encode(response)
        destination = peer
        if peer.transport == "udp":
            host, port = response_address(request.top_via, (peer.host, peer.port))
            destination = Peer("udp", host, port)
        final = response.status >= 200
        invite_error = request.method == "INVITE" and response.status >= 300
        self._server_tx.respond(
            request, data, destination, time.monotonic(), peer.reliable, final, invite_error
        )
        self.send(data, destination)

    def reply(
        self,
        request: SipRequest,
        peer: Peer,
        status: int,
        reason: str | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
        to_tag: str | None = None,
    ) -> None:
        """Build and send a response to ``request``."""
        response = make_response(request, status, reason, to_tag=to_tag)
        for name, value in headers:
            response.headers.add(name, value)
        if content_type is not None:
            response.headers.set("Content-Type", content_type)
        response.body = body
        self.respond(request, peer, response)

    async def request(self, request: SipRequest, peer: Peer) -> SipResponse:
        """Send a request as a client transaction; the final response (provisional ones are
        skipped). Raises TimeoutError after Timer B/F, ConnectionError when stopped."""
        if len(self._client_tx) >= MAX_CLIENT_TRANSACTIONS:
            raise ConnectionError("too many requests in flight")
        data = encode(request)
        tx = ClientTransaction(request, data, peer.reliable, time.monotonic(), self.timers)
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._client_tx[tx.key] = (tx, peer, future)
        try:
            self.send(data, peer)
            return await future
        finally:
            self._client_tx.pop(tx.key, None)

    def send_ack(self, ack: SipRequest, peer: Peer) -> None:
        """ACK is not a transaction of its own: just send it."""
        self.send(encode(ack), peer)

    # -- receiving -----------------------------------------------------------------------

    def on_malformed(self, err: SipParseError, peer: Peer) -> None:
        """A message that did not parse: counted; nothing is answered (the reply could not
        be routed reliably, and garbage must not be amplified)."""
        log.debug("malformed SIP message", peer=f"{peer.host}:{peer.port}", error=str(err))

    def dispatch(self, message: SipRequest | SipResponse, peer: Peer) -> None:
        """A parsed message: responses go to their client transaction, requests to the
        handler unless they are retransmissions."""
        self.counters.received += 1
        if isinstance(message, SipResponse):
            self._response(message)
            return
        match = self._server_tx.receive(message, time.monotonic())
        if isinstance(match, Retransmission):
            self.counters.retransmissions_answered += 1
            if match.response is not None and isinstance(match.destination, Peer):
                self.send(match.response, match.destination)
            return
        if isinstance(match, AckAbsorbed):
            return
        try:
            self._handler(message, peer)
        except Exception:
            log.exception("SIP request handler failed", method=message.method)
            if message.method != "ACK":
                self.reply(message, peer, 500)

    def _response(self, response: SipResponse) -> None:
        branch = response.branch
        method = response.cseq[1]
        entry = self._client_tx.get((branch or "", method))
        if entry is None:
            self.counters.reject("stray_response")
            return
        tx, _, future = entry
        if tx.receive(response) and not future.done():
            future.set_result(response)

    async def connect(self, host: str, port: int, timeout: float) -> Peer:
        """Open a TCP connection to a server (e.g. an upper platform we register to); its
        messages are read and dispatched like those of an accepted one. The peer to send on;
        ``peer.connection.closed`` is set when it ends. Raises OSError or TimeoutError."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        connection = _TcpConnection(self, writer)
        self._connections.add(connection)
        self.counters.tcp_connections += 1
        task = asyncio.get_running_loop().create_task(
            self._read(connection, reader), name=f"sip tcp {host}:{port}"
        )
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)
        return connection.peer

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            self.counters.reject("tcp_limit")
            writer.close()
            return
        connection = _TcpConnection(self, writer)
        self._connections.add(connection)
        self.counters.tcp_connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            await self._read(connection, reader)
        finally:
            if task is not None:
                self._readers.discard(task)

    async def _read(self, connection: _TcpConnection, reader: asyncio.StreamReader) -> None:
        writer = connection.writer
        framer = SipFramer(self.max_message)
        try:
            while True:
                data = await asyncio.wait_for(reader.read(TCP_READ), TCP_IDLE_TIMEOUT)
                if not data:
                    return
                try:
                    messages = framer.feed(data)
                except SipParseError as err:
                    self.counters.reject("malformed")
                    self.on_malformed(err, connection.peer)
                    return  # a broken stream cannot be resynchronised: close it
                for message in messages:
                    self.dispatch(message, connection.peer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(connection)
            connection.closed.set()
            writer.close()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for data, destination in self._server_tx.due(now):
                if isinstance(destination, Peer):
                    self.counters.retransmitted += 1
                    self.send(data, destination)
            for tx, peer, future in list(self._client_tx.values()):
                if future.done():
                    continue
                if tx.timed_out(now):
                    future.set_exception(TimeoutError("no final response"))
                    continue
                again = tx.retransmit_due(now)
                if again is not None:
                    self.counters.retransmitted += 1
                    self.send(again, peer)
