"""RTP (RFC 3550) packets, RFC 4571 TCP framing and a reordering buffer for UDP."""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
RTP_HEADER_LENGTH = 12
CSRC_LENGTH = 4
EXTENSION_HEADER_LENGTH = 4
EXTENSION_WORD = 4
MAX_PAYLOAD_TYPE = 0x7F
SEQUENCE_MODULO = 1 << 16
HALF_SEQUENCE = SEQUENCE_MODULO // 2
MAX_UINT32 = 0xFFFFFFFF
RFC4571_PREFIX = 2
MAX_RFC4571_FRAME = 0xFFFF
# RFC 3550 appendix A.1: a jump this far ahead is a restart, not loss
MAX_DROPOUT = 3000

_HEADER = struct.Struct("!BBHII")
_FLAG_PADDING = 0x20
_FLAG_EXTENSION = 0x10
_CSRC_COUNT_MASK = 0x0F
_MARKER = 0x80


class RtpError(ValueError):
    """An RTP packet or RFC 4571 stream is malformed."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; CSRCs and header extensions are dropped when parsing."""

    marker: bool
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse an RTP version 2 packet, skipping CSRCs, extension and padding."""
    if len(data) < RTP_HEADER_LENGTH:
        raise RtpError(f"RTP packet too short: {len(data)} bytes")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6} is not supported")
    offset = RTP_HEADER_LENGTH + (first & _CSRC_COUNT_MASK) * CSRC_LENGTH
    end = len(data)
    if first & _FLAG_EXTENSION:
        if offset + EXTENSION_HEADER_LENGTH > end:
            raise RtpError("RTP header extension is truncated")
        words = int.from_bytes(data[offset + 2 : offset + EXTENSION_HEADER_LENGTH], "big")
        offset += EXTENSION_HEADER_LENGTH + words * EXTENSION_WORD
    if offset > end:
        raise RtpError("RTP header is longer than the packet")
    if first & _FLAG_PADDING:
        padding = data[-1]
        if padding == 0 or offset + padding > end:
            raise RtpError(f"RTP padding length {padding} is inconsistent")
        end -= padding
    return RtpPacket(
        marker=bool(second & _MARKER),
        payload_type=second & MAX_PAYLOAD_TYPE,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
    )


def encode_rtp(packet: RtpPacket) -> bytes:
    """Encode a packet with a plain 12-byte header (no CSRC, extension or padding)."""
    if not 0 <= packet.payload_type <= MAX_PAYLOAD_TYPE:
        raise RtpError(f"payload type {packet.payload_type} out of range")
    if not 0 <= packet.sequence < SEQUENCE_MODULO:
        raise RtpError(f"sequence {packet.sequence} out of range")
    if not 0 <= packet.timestamp <= MAX_UINT32 or not 0 <= packet.ssrc <= MAX_UINT32:
        raise RtpError("timestamp and SSRC must be 32-bit unsigned")
    second = (_MARKER if packet.marker else 0) | packet.payload_type
    header = _HEADER.pack(RTP_VERSION << 6, second, packet.sequence, packet.timestamp, packet.ssrc)
    return header + packet.payload


def frame_rfc4571(packet: bytes) -> bytes:
    """Prefix a packet with its 2-byte big-endian length (RFC 4571)."""
    if len(packet) > MAX_RFC4571_FRAME:
        raise RtpError(f"packet of {len(packet)} bytes does not fit an RFC 4571 frame")
    return len(packet).to_bytes(RFC4571_PREFIX, "big") + packet


class Rfc4571Framer:
    """Cuts a TCP byte stream framed per RFC 4571 into packets; buffer stays bounded."""

    def __init__(self, max_frame: int = MAX_RFC4571_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete frames. RtpError on a frame over max_frame."""
        self._buffer += data
        buf = self._buffer
        frames: list[bytes] = []
        pos = 0
        total = len(buf)
        while total - pos >= RFC4571_PREFIX:
            length = (buf[pos] << 8) | buf[pos + 1]
            if length > self.max_frame:
                self._buffer = bytearray()
                raise RtpError(f"RFC 4571 frame of {length} bytes exceeds {self.max_frame}")
            end = pos + RFC4571_PREFIX + length
            if end > total:
                break
            if length:
                frames.append(bytes(buf[pos + RFC4571_PREFIX : end]))
            pos = end
        del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buffer)


class RtpReorderer:
    """Puts UDP RTP packets back in sequence order within a window of packets."""

    def __init__(self, window: int = 64) -> None:
        if not 1 <= window < HALF_SEQUENCE:
            raise ValueError(f"window {window} out of range")
        self.window = window
        self.lost = 0
        self.duplicates = 0
        self.late = 0
        self.reordered = 0
        self.resets = 0
        self._expected: int | None = None
        self._highest = 0
        self._pending: dict[int, RtpPacket] = {}
        self._recent: set[int] = set()
        self._recent_order: list[int] = []
        self._probation: int | None = None

    def _remember(self, sequence: int) -> None:
        self._recent.add(sequence)
        self._recent_order.append(sequence)
        if len(self._recent_order) > 2 * self.window:
            # trim in halves so the bookkeeping stays amortised O(1)
            drop = self._recent_order[: self.window]
            del self._recent_order[: self.window]
            self._recent.difference_update(drop)

    def _drain(self, out: list[RtpPacket]) -> None:
        assert self._expected is not None
        while self._expected in self._pending:
            packet = self._pending.pop(self._expected)
            out.append(packet)
            self._remember(packet.sequence)
            self._expected = (self._expected + 1) % SEQUENCE_MODULO

    def _skip_gap(self, out: list[RtpPacket]) -> None:
        """Give up on the missing packets before the oldest pending one."""
        assert self._expected is not None
        expected = self._expected
        gap = min((seq - expected) % SEQUENCE_MODULO for seq in self._pending)
        self.lost += gap
        self._expected = (expected + gap) % SEQUENCE_MODULO
        self._drain(out)

    def _restart(self, packet: RtpPacket, out: list[RtpPacket]) -> None:
        out.extend(self.flush())
        self.resets += 1
        self._recent.clear()
        self._recent_order.clear()
        self._expected = (packet.sequence + 1) % SEQUENCE_MODULO
        self._highest = packet.sequence
        self._remember(packet.sequence)
        out.append(packet)

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        """Add a packet; return the packets that are now deliverable in order."""
        out: list[RtpPacket] = []
        seq = packet.sequence
        if self._expected is None:
            self._restart(packet, out)
            self.resets -= 1  # the first packet is a start, not a restart
            return out
        delta = (seq - self._expected) % SEQUENCE_MODULO
        if delta >= HALF_SEQUENCE:  # behind what was already delivered
            if seq in self._recent:
                self.duplicates += 1
                return out
            behind = SEQUENCE_MODULO - delta
            if behind > self.window:
                # two in a row far behind: the sender restarted its sequence
                if self._probation is not None and seq == (self._probation + 1) % SEQUENCE_MODULO:
                    self._probation = None
                    self._restart(packet, out)
                    return out
                self._probation = seq
            self.late += 1
            return out
        self._probation = None
        if delta >= MAX_DROPOUT:
            self._restart(packet, out)
            return out
        if seq in self._pending:
            self.duplicates += 1
            return out
        if (self._highest - seq) % SEQUENCE_MODULO < HALF_SEQUENCE and seq != self._highest:
            self.reordered += 1
        else:
            self._highest = seq
        self._pending[seq] = packet
        self._drain(out)
        while self._pending and (self._highest - self._expected) % SEQUENCE_MODULO >= self.window:
            self._skip_gap(out)
        return out

    def flush(self) -> list[RtpPacket]:
        """Deliver everything pending in order, counting the gaps as lost."""
        out: list[RtpPacket] = []
        while self._pending:
            self._skip_gap(out)
        return out
