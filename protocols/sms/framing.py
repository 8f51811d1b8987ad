"""Cuts an SMPP byte stream into whole PDU frames for :func:`protocols.sms.smpp.decode_pdu`."""

from __future__ import annotations

from protocols.sms.smpp import DEFAULT_MAX_PDU_LENGTH, HEADER_LEN
from protocols.sms.smpp_pdus import MalformedPdu, PduError

LENGTH_FIELD = 4
"""Octets of command_length at the start of every PDU."""


class PduFramer:
    """Cuts a byte stream into whole PDU frames; refuses absurd lengths and then stays broken.

    After a bad command_length the stream cannot be resynchronised: every later call
    raises the same error, and the caller should close the connection.
    """

    def __init__(self, *, max_length: int = DEFAULT_MAX_PDU_LENGTH) -> None:
        if max_length < HEADER_LEN:
            raise ValueError("max_length must hold at least a header")
        self._max_length = max_length
        self._buffer = bytearray()
        self._error: MalformedPdu | None = None

    @property
    def buffered(self) -> int:
        """Octets held while waiting for the rest of a PDU (always under ``max_length``)."""
        return len(self._buffer)

    @property
    def error(self) -> MalformedPdu | None:
        """The framing error that broke the stream, if any."""
        return self._error

    def feed(self, data: bytes) -> list[bytes]:
        """Add received octets; returns every PDU frame now complete, in order.

        Raises :class:`MalformedPdu` (bad_length, too_large) when a header announces an
        impossible length; frames completed before it in the same call are returned first
        and the error is raised by the next call (and every one after).
        """
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= HEADER_LEN:
            length = int.from_bytes(self._buffer[:LENGTH_FIELD], "big")
            if length < HEADER_LEN or length > self._max_length:
                reason = PduError.BAD_LENGTH if length < HEADER_LEN else PduError.TOO_LARGE
                self._error = MalformedPdu(reason, f"command_length {length}")
                self._buffer.clear()
                if frames:
                    return frames
                raise self._error
            if len(self._buffer) < length:
                break
            frames.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
        return frames
