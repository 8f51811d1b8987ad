"""Server-side WebSocket frame building (RFC 6455), so a publication is framed once and the
same bytes are written to every subscriber's socket."""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_CLOSE = 0x8
FIN = 0x80

_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented text frame (server → client)."""
    return frame(OP_TEXT, payload)


def close_frame(code: int, reason: str) -> bytes:
    """A close frame with a status code and a UTF-8 reason (at most 123 bytes)."""
    body = struct.pack("!H", code) + reason.encode()[:123]
    return frame(OP_CLOSE, body)


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked frame with the given opcode."""
    length = len(payload)
    first = FIN | opcode
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return _LEN16.pack(first, 126, length) + payload
    return _LEN64.pack(first, 127, length) + payload
