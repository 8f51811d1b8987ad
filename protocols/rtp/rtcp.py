"""Minimal RTCP (RFC 3550) for SIP media legs: keyframe requests out, feedback and BYE in.

Built packets are compounds as RFC 3550 section 6.1 requires: an empty receiver report (we
report no reception statistics), an SDES with our CNAME, then the payload-specific feedback:
PLI (RFC 4585 section 6.3.1, PSFB FMT 1) and/or FIR (RFC 5104 section 4.3.1, PSFB FMT 4).
Parsing walks a compound packet: :func:`parse_rtcp` raises :class:`RtcpError` on anything
malformed; :func:`scan_rtcp` never raises and reports what the well-formed prefix holds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTCP_VERSION = 2
HEADER_LENGTH = 4
WORD = 4
PT_SR = 200
PT_RR = 201
PT_SDES = 202
PT_BYE = 203
PT_APP = 204
PT_RTPFB = 205
PT_PSFB = 206
FMT_PLI = 1
FMT_FIR = 4
SDES_CNAME = 1
MAX_UINT32 = 0xFFFFFFFF
MAX_CNAME = 255
# RFC 5761 section 4: RTP and RTCP on one port are told apart by the second octet
_RTCP_DEMUX = range(192, 224)

_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_PADDING = 0x20
_COUNT_MASK = 0x1F


class RtcpError(ValueError):
    """An RTCP packet is malformed (or a value to build one is out of range)."""


@dataclass(frozen=True, slots=True)
class RtcpPacket:
    """One packet of a compound: ``count`` is the RC/SC/FMT field, ``ssrc`` the first word
    after the header (the sender's SSRC; 0 when the packet has no body) and ``body`` all
    bytes after the header, padding removed."""

    packet_type: int
    count: int
    ssrc: int
    body: bytes

    @property
    def media_ssrc(self) -> int | None:
        """For RTPFB/PSFB feedback: the SSRC of the media source the feedback is about."""
        if self.packet_type in (PT_RTPFB, PT_PSFB) and len(self.body) >= 2 * WORD:
            value: int = _SSRC.unpack_from(self.body, WORD)[0]
            return value
        return None


@dataclass(frozen=True, slots=True)
class RtcpEvents:
    """What a compound packet asks of us."""

    pli: bool = False
    fir: bool = False
    bye: bool = False
    bye_ssrcs: tuple[int, ...] = ()
    packets: int = 0
    malformed: bool = False
    types: tuple[int, ...] = field(default=())

    @property
    def keyframe_request(self) -> bool:
        """A PLI or a FIR."""
        return self.pli or self.fir


def _check32(name: str, value: int) -> None:
    if not 0 <= value <= MAX_UINT32:
        raise RtcpError(f"{name} {value} is not a 32-bit unsigned value")


def _header(count: int, packet_type: int, body_length: int) -> bytes:
    """A common header for a body of ``body_length`` bytes (a multiple of 4)."""
    return _HEADER.pack((RTCP_VERSION << 6) | count, packet_type, body_length // WORD)


def build_rr(sender_ssrc: int) -> bytes:
    """An empty receiver report (RC 0): the mandatory first packet of a compound."""
    _check32("SSRC", sender_ssrc)
    return _header(0, PT_RR, WORD) + _SSRC.pack(sender_ssrc)


def build_sdes(sender_ssrc: int, cname: str) -> bytes:
    """An SDES packet with one chunk: our CNAME."""
    _check32("SSRC", sender_ssrc)
    text = cname.encode()
    if not 0 < len(text) <= MAX_CNAME:
        raise RtcpError(f"CNAME of {len(text)} bytes")
    chunk = _SSRC.pack(sender_ssrc) + bytes((SDES_CNAME, len(text))) + text
    chunk += b"\x00" * (WORD - len(chunk) % WORD)  # the end item, padded to a word
    return _header(1, PT_SDES, len(chunk)) + chunk


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A Picture Loss Indication (no FCI) about ``media_ssrc``; not a compound by itself."""
    _check32("SSRC", sender_ssrc)
    _check32("media SSRC", media_ssrc)
    return _header(FMT_PLI, PT_PSFB, 2 * WORD) + _SSRC.pack(sender_ssrc) + _SSRC.pack(media_ssrc)


def build_fir(sender_ssrc: int, media_ssrc: int, sequence: int) -> bytes:
    """A Full Intra Request to ``media_ssrc`` with command sequence number ``sequence``
    (mod 256; the sender increments it per new request). The header's media SSRC is 0 as
    RFC 5104 requires; the target is in the FCI."""
    _check32("SSRC", sender_ssrc)
    _check32("media SSRC", media_ssrc)
    body = _SSRC.pack(sender_ssrc) + _SSRC.pack(0)
    body += _SSRC.pack(media_ssrc) + bytes((sequence % 256, 0, 0, 0))
    return _header(FMT_FIR, PT_PSFB, len(body)) + body


def build_bye(sender_ssrc: int) -> bytes:
    """A compound saying goodbye: empty RR then BYE for ``sender_ssrc``."""
    bye = _header(1, PT_BYE, WORD) + _SSRC.pack(sender_ssrc)
    return build_rr(sender_ssrc) + bye


def keyframe_request(
    sender_ssrc: int,
    media_ssrc: int,
    *,
    pli: bool = True,
    fir_sequence: int | None = None,
    cname: str = "hub",
) -> bytes:
    """A compound RTCP packet asking ``media_ssrc`` for a keyframe: empty RR, SDES CNAME,
    then a PLI (when ``pli``) and a FIR (when ``fir_sequence`` is not None)."""
    out = build_rr(sender_ssrc) + build_sdes(sender_ssrc, cname)
    if pli:
        out += build_pli(sender_ssrc, media_ssrc)
    if fir_sequence is not None:
        out += build_fir(sender_ssrc, media_ssrc, fir_sequence)
    return out


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on a muxed RTP/RTCP port is RTCP (RFC 5761 section 4)."""
    return len(data) >= 2 and data[0] >> 6 == RTCP_VERSION and data[1] in _RTCP_DEMUX


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """The packets of a compound RTCP packet; :class:`RtcpError` if any is malformed (bad
    version, truncated, a length running past the end, inconsistent padding, or not RTCP)."""
    packets: list[RtcpPacket] = []
    _walk(data, packets)
    return packets


def _walk(data: bytes, packets: list[RtcpPacket]) -> None:
    pos = 0
    total = len(data)
    if total < HEADER_LENGTH:
        raise RtcpError(f"RTCP packet too short: {total} bytes")
    while pos < total:
        if total - pos < HEADER_LENGTH:
            raise RtcpError("trailing bytes after the last RTCP packet")
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != RTCP_VERSION:
            raise RtcpError(f"RTCP version {first >> 6} is not supported")
        if packet_type not in _RTCP_DEMUX:
            raise RtcpError(f"packet type {packet_type} is not RTCP")
        end = pos + HEADER_LENGTH + words * WORD
        if end > total:
            raise RtcpError("RTCP length runs past the end of the datagram")
        body_end = end
        if first & _PADDING:
            padding = data[end - 1] if end > pos + HEADER_LENGTH else 0
            if padding == 0 or pos + HEADER_LENGTH + padding > end:
                raise RtcpError(f"RTCP padding length {padding} is inconsistent")
            body_end -= padding
        body = bytes(data[pos + HEADER_LENGTH : body_end])
        ssrc: int = _SSRC.unpack_from(body)[0] if len(body) >= WORD else 0
        packets.append(RtcpPacket(packet_type, first & _COUNT_MASK, ssrc, body))
        pos = end


def scan_rtcp(data: bytes) -> RtcpEvents:
    """What a compound asks for (PLI, FIR, BYE). Never raises: a malformed packet ends the
    scan (``malformed`` is then True) and only the packets before it count."""
    packets: list[RtcpPacket] = []
    malformed = False
    try:
        _walk(data, packets)
    except RtcpError:
        malformed = True
    pli = fir = bye = False
    bye_ssrcs: list[int] = []
    for packet in packets:
        if packet.packet_type == PT_PSFB and len(packet.body) >= 2 * WORD:
            if packet.count == FMT_PLI:
                pli = True
            elif packet.count == FMT_FIR and len(packet.body) >= 4 * WORD:
                fir = True
        elif packet.packet_type == PT_BYE:
            bye = True
            count = min(packet.count, len(packet.body) // WORD)
            bye_ssrcs.extend(_SSRC.unpack_from(packet.body, i * WORD)[0] for i in range(count))
    return RtcpEvents(
        pli=pli,
        fir=fir,
        bye=bye,
        bye_ssrcs=tuple(bye_ssrcs),
        packets=len(packets),
        malformed=malformed,
        types=tuple(p.packet_type for p in packets),
    )
