"""The broker socket as paho sees it once the connection reads the socket itself.

The connection (connection.py) reads whole chunks from the socket, decodes QoS 0/1 PUBLISH
packets on its own and hands every other packet to paho through :meth:`BrokerStream.feed`;
paho's ``recv`` then gets exactly those bytes and, when they are used up,
``BlockingIOError`` (nothing more to read), an empty read (the broker closed) or the
socket's error. Writes from paho and from the connection (acknowledgements) go out in
order; what the socket does not take at once is kept and written when the socket is
writable again (``on_blocked`` asks the loop for that).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class BrokerStream:
    """A socket-like object for paho over the real socket (see the module docstring)."""

    def __init__(self, sock: SocketLike, on_blocked: Callable[[], None]) -> None:
        self.raw = sock
        self._on_blocked = on_blocked
        self._to_paho = bytearray()
        self._out = bytearray()
        self._eof = False
        self._error: OSError | None = None

    # ---- what paho calls ----------------------------------------------------------------

    def recv(self, bufsize: int) -> bytes:
        """The bytes handed to paho, then the end of the stream as the socket reported it."""
        if self._to_paho:
            chunk = bytes(self._to_paho[:bufsize])
            del self._to_paho[:bufsize]
            return chunk
        if self._error is not None:
            raise self._error
        if self._eof:
            return b""
        raise BlockingIOError

    def send(self, buffer: bytes | bytearray) -> int:
        """Take all of ``buffer`` (what the socket refuses now is written later)."""
        self.write(buffer)
        return len(buffer)

    def close(self) -> None:
        """Write what is still buffered if the socket takes it at once, then close."""
        if self._out:
            with contextlib.suppress(OSError):
                self.raw.send(self._out)
        self._out.clear()
        self._to_paho.clear()
        self.raw.close()

    def fileno(self) -> int:
        """The real socket's descriptor."""
        return self.raw.fileno()

    def setblocking(self, flag: bool) -> None:
        """Pass through (paho sets non-blocking once, before the stream exists)."""
        self.raw.setblocking(flag)

    # ---- what the connection calls ------------------------------------------------------

    def read(self, size: int) -> bytes | None:
        """Up to ``size`` bytes from the socket; None when none are there yet, ``b""`` once
        the stream ended (closed or failed: paho learns which on its next ``recv``)."""
        if self._eof or self._error is not None:
            return b""
        try:
            data = self.raw.recv(size)
        except _WOULD_BLOCK:
            return None
        except OSError as err:
            self._error = err
            return b""
        if not data:
            self._eof = True
        return data

    def feed(self, packet: bytes | bytearray) -> None:
        """Queue a packet for paho's next ``recv``."""
        self._to_paho += packet

    def fail(self, err: OSError) -> None:
        """Record a write failure so paho sees the loss on its next ``recv``."""
        if self._error is None:
            self._error = err

    def write(self, data: bytes | bytearray) -> None:
        """Send ``data`` after anything still buffered; buffer what the socket refuses."""
        if self._out:
            self._out += data
            return
        try:
            sent = self.raw.send(data)
        except _WOULD_BLOCK:
            sent = 0
        if sent < len(data):
            self._out += data[sent:]
            self._on_blocked()

    @property
    def wants_write(self) -> bool:
        """True while buffered bytes wait for the socket."""
        return bool(self._out)

    def flush(self) -> None:
        """Write buffered bytes as far as the socket takes them (on writable)."""
        if not self._out:
            return
        try:
            sent = self.raw.send(self._out)
        except _WOULD_BLOCK:
            return
        del self._out[:sent]
