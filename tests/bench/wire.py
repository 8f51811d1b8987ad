"""A minimal client-side WebSocket (RFC 6455) over an asyncio Protocol.

Only what a benchmark client needs, kept cheap per frame: an HTTP/1.1 upgrade without
extensions (so no permessage-deflate), masked client frames, unmasked server frames,
fragmented messages, ping → pong and close. Subclasses implement :meth:`on_open` and
:meth:`on_message`.
"""

from __future__ import annotations

import asyncio
import base64
import os
from typing import cast

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_HEADER_END = b"\r\n\r\n"
_MAX_HANDSHAKE_BYTES = 16 * 1024


class HandshakeError(ConnectionError):
    """The server did not switch protocols."""


def encode_client_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame: masked with a random key, as RFC 6455 requires."""
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    key = os.urandom(4)
    if not payload:
        return header + key
    # XOR the whole payload at once as one big integer: far cheaper than a byte loop.
    repeated = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big"
    )
    return header + key + masked


def upgrade_request(host: str, port: int, path: str) -> bytes:
    """The HTTP/1.1 request that opens a WebSocket on ``path``."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()


class WebSocketClient(asyncio.Protocol):
    """A client WebSocket connection; ``opened`` resolves once the upgrade succeeded."""

    path: str = "/"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._upgraded = False
        self._pending = b""
        self._fragments: list[bytes] | None = None
        self._fragment_opcode = OP_TEXT
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request."""
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(upgrade_request(self.host, self.port, self.path))

    def data_received(self, data: bytes) -> None:
        """Split the stream into frames and hand complete messages on."""
        if self._pending:
            data = self._pending + data
            self._pending = b""
        if not self._upgraded:
            end = data.find(_HEADER_END)
            if end < 0:
                if len(data) > _MAX_HANDSHAKE_BYTES:
                    self.fail(HandshakeError("oversized handshake response"))
                else:
                    self._pending = data
                return
            status = data[: data.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                self.fail(HandshakeError(status.decode("latin-1", "replace")))
                return
            self._upgraded = True
            data = data[end + len(_HEADER_END) :]
            self.on_open()
            if not data:
                return
        self._parse(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """Record the loss; subclasses fail whatever was waiting on the connection."""
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        self.on_lost(exc)

    # -- framing ----------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        pos = 0
        size = len(data)
        while size - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1]
            if length & 0x80:
                self.fail(ConnectionError("server sent a masked frame"))
                return
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
            end = start + length
            if end > size:
                break
            payload = data[start:end]
            pos = end
            opcode = b0 & 0x0F
            if opcode in (OP_TEXT, OP_BINARY):
                if b0 & 0x80:
                    self.on_message(payload)
                else:
                    self._fragments = [payload]
                    self._fragment_opcode = opcode
            elif opcode == OP_CONT and self._fragments is not None:
                self._fragments.append(payload)
                if b0 & 0x80:
                    message = b"".join(self._fragments)
                    self._fragments = None
                    self.on_message(message)
            elif opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.send_frame(OP_CLOSE, payload[:2])
                self.close()
                return
        if pos < size:
            self._pending = data[pos:]

    # -- sending and closing ----------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """Write one frame unless the connection is gone."""
        if self.transport is not None and not self.closed:
            self.transport.write(encode_client_frame(opcode, payload))

    def send_text(self, payload: bytes) -> None:
        """Send one text message (``payload`` is UTF-8 already)."""
        self.send_frame(OP_TEXT, payload)

    def close(self) -> None:
        """Close the TCP connection (after whatever is buffered)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def fail(self, exc: Exception) -> None:
        """Give up on the connection because of ``exc``."""
        self.on_error(exc)
        if self.transport is not None:
            self.transport.abort()

    # -- for subclasses ---------------------------------------------------------------

    def on_open(self) -> None:
        """The upgrade succeeded."""

    def on_message(self, payload: bytes) -> None:
        """One complete text or binary message arrived."""

    def on_error(self, exc: Exception) -> None:
        """A protocol or handshake error ended the connection."""

    def on_lost(self, exc: Exception | None) -> None:
        """The TCP connection is gone."""
