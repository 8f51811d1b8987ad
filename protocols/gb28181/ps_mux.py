"""MPEG-2 Program Stream (ISO/IEC 13818-1 2.5) muxer and RTP packetizer for GB/T 28181 media.

Each video access unit becomes one pack: a pack header, on keyframes a system header and a
program stream map, then the Annex-B bytes in as many PES packets as needed. The pack's bytes
are cut into RTP payloads (GB/T 28181 PS over RTP, payload type 96, 90 kHz clock).
"""

from __future__ import annotations

from protocols.gb28181.ps import (
    PACK_HEADER,
    PACK_MPEG2_LENGTH,
    PES_MPEG2_MARK,
    PROGRAM_STREAM_MAP,
    PS_START,
    PTS_FLAG,
    SYSTEM_HEADER,
    TIMESTAMP_LENGTH,
)
from protocols.gb28181.rtp import MAX_UINT32, SEQUENCE_MODULO, RtpPacket, encode_rtp

STREAM_TYPE = {"h264": 0x1B, "h265": 0x24}
VIDEO_STREAM_ID = 0xE0
TIMESTAMP_MODULO = 1 << 33
RTP_TIMESTAMP_MODULO = MAX_UINT32 + 1
MAX_PES_PACKET_LENGTH = 0xFFFF
PES_FLAGS_LENGTH = 3  # the two flag bytes and PES_header_data_length
DATA_ALIGNMENT = 0x04  # data_alignment_indicator: the PES starts with an access unit
DTS_FLAG = 0x40
PTS_PREFIX_WITH_DTS = 0x3  # '0011' before a PTS followed by a DTS
DTS_PREFIX = 0x1  # '0001'
MAX_RATE_BOUND = (1 << 22) - 1  # 22-bit fields, units of 50 bytes/s
PACK_STUFFING_NONE = 0xF8  # reserved '11111', pack_stuffing_length 0
SYSTEM_AUDIO_BOUND = 0
SYSTEM_VIDEO_BOUND = 1
SYSTEM_LOCKS_AND_VIDEO_BOUND = 0xE0 | SYSTEM_VIDEO_BOUND  # audio/video locks, marker
SYSTEM_RESERVED = 0x7F  # packet_rate_restriction_flag 0, reserved bits
P_STD_SCALE_1024 = 0x20  # '11' then P-STD_buffer_bound_scale 1 (units of 1024 bytes)
P_STD_VIDEO_BOUND = 1024  # kB of decoder buffer announced for the video stream
PSM_CURRENT_VERSION0 = 0xE0  # current_next_indicator 1, reserved '11', version 0
PSM_RESERVED_MARKER = 0xFF  # reserved '1111111', marker bit
CRC32_MPEG2_POLY = 0x04C11DB7
CRC32_MPEG2_INIT = 0xFFFFFFFF
DEFAULT_RATE_BOUND = 50_000  # 2.5 MB/s
DEFAULT_PAYLOAD_TYPE = 96
DEFAULT_MAX_PAYLOAD = 1400


def _crc32_table() -> tuple[int, ...]:
    table: list[int] = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ CRC32_MPEG2_POLY) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC32_TABLE = _crc32_table()


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (13818-1 annex A): poly 0x04C11DB7, init all ones, no reflection."""
    crc = CRC32_MPEG2_INIT
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC32_TABLE[(crc >> 24) ^ byte]
    return crc


def _timestamp(prefix: int, value: int) -> bytes:
    """A 33-bit PTS/DTS in its 5-byte marker-bit encoding with a 4-bit prefix."""
    return bytes(
        (
            (prefix << 4) | ((value >> 29) & 0x0E) | 1,
            (value >> 22) & 0xFF,
            ((value >> 14) & 0xFE) | 1,
            (value >> 7) & 0xFF,
            ((value << 1) & 0xFE) | 1,
        )
    )


def _pack_header(scr: int, mux_rate: int) -> bytes:
    """MPEG-2 pack header (13818-1 2.5.3.3) with SCR extension 0 and no stuffing."""
    bits = (
        0b01 << 46
        | ((scr >> 30) & 0x07) << 43
        | 1 << 42
        | ((scr >> 15) & 0x7FFF) << 27
        | 1 << 26
        | (scr & 0x7FFF) << 11
        | 1 << 10
        | 0 << 1  # SCR extension
        | 1
    )
    rate = (mux_rate << 2) | 0x03  # two marker bits
    header = (
        PS_START
        + bytes((PACK_HEADER,))
        + bits.to_bytes(6, "big")
        + rate.to_bytes(3, "big")
        + bytes((PACK_STUFFING_NONE,))
    )
    assert len(header) == PACK_MPEG2_LENGTH
    return header


def _system_header(rate_bound: int) -> bytes:
    """System header (13818-1 2.5.3.5) announcing one video stream."""
    body = (
        ((1 << 23) | (rate_bound << 1) | 1).to_bytes(3, "big")
        + bytes((SYSTEM_AUDIO_BOUND << 2, SYSTEM_LOCKS_AND_VIDEO_BOUND, SYSTEM_RESERVED))
        + bytes((VIDEO_STREAM_ID,))
        + ((0xC0 | P_STD_SCALE_1024) << 8 | P_STD_VIDEO_BOUND).to_bytes(2, "big")
    )
    return PS_START + bytes((SYSTEM_HEADER,)) + len(body).to_bytes(2, "big") + body


def _program_stream_map(stream_type: int) -> bytes:
    """Program stream map (13818-1 2.5.4) with one video entry and its CRC-32."""
    es_map = bytes((stream_type, VIDEO_STREAM_ID, 0, 0))
    body = (
        bytes((PSM_CURRENT_VERSION0, PSM_RESERVED_MARKER))
        + (0).to_bytes(2, "big")  # program_stream_info_length
        + len(es_map).to_bytes(2, "big")
        + es_map
    )
    length = len(body) + 4  # the CRC follows
    section = PS_START + bytes((PROGRAM_STREAM_MAP,)) + length.to_bytes(2, "big") + body
    return section + crc32_mpeg2(section).to_bytes(4, "big")


def _pes_packets(access_unit: bytes, pts: int) -> list[bytes]:
    """The access unit as video PES packets; PTS and DTS on the first only."""
    stamps = _timestamp(PTS_PREFIX_WITH_DTS, pts) + _timestamp(DTS_PREFIX, pts)
    assert len(stamps) == 2 * TIMESTAMP_LENGTH
    first_room = MAX_PES_PACKET_LENGTH - PES_FLAGS_LENGTH - len(stamps)
    later_room = MAX_PES_PACKET_LENGTH - PES_FLAGS_LENGTH
    packets: list[bytes] = []
    pos = 0
    first = True
    while first or pos < len(access_unit):
        if first:
            flags = bytes((PES_MPEG2_MARK | DATA_ALIGNMENT, PTS_FLAG | DTS_FLAG, len(stamps)))
            header, room = flags + stamps, first_room
        else:
            header, room = bytes((PES_MPEG2_MARK, 0, 0)), later_room
        chunk = access_unit[pos : pos + room]
        pos += len(chunk)
        length = len(header) + len(chunk)
        packets.append(
            PS_START + bytes((VIDEO_STREAM_ID,)) + length.to_bytes(2, "big") + header + chunk
        )
        first = False
    return packets


class PsMuxer:
    """Annex-B access units -> one PS pack each (system header and PSM on keyframes)."""

    def __init__(self, codec: str = "h264", *, rate_bound: int = DEFAULT_RATE_BOUND) -> None:
        if codec not in STREAM_TYPE:
            raise ValueError(f"unsupported codec {codec!r}; expected one of {sorted(STREAM_TYPE)}")
        if not 1 <= rate_bound <= MAX_RATE_BOUND:
            raise ValueError(f"rate_bound {rate_bound} out of range")
        self.codec = codec
        self.rate_bound = rate_bound
        self._system_header = _system_header(rate_bound)
        self._psm = _program_stream_map(STREAM_TYPE[codec])

    def mux(self, access_unit: bytes, pts: int, keyframe: bool) -> bytes:
        """One pack for the access unit; pts in 90 kHz ticks, wrapped modulo 2**33."""
        if pts < 0:
            raise ValueError(f"pts {pts} is negative")
        pts %= TIMESTAMP_MODULO
        parts = [_pack_header(pts, self.rate_bound)]
        if keyframe:
            parts += (self._system_header, self._psm)
        parts += _pes_packets(bytes(access_unit), pts)
        return b"".join(parts)


def ps_rtp_payloads(ps: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[bytes]:
    """Cut one pack into RTP payloads of at most max_payload bytes (last one gets the marker)."""
    if max_payload < 1:
        raise ValueError(f"max_payload {max_payload} must be positive")
    return [bytes(ps[pos : pos + max_payload]) for pos in range(0, len(ps), max_payload)]


class PsRtpPacketizer:
    """PS packs -> RTP packets (PT 96 by default, 90 kHz clock, a given SSRC, sequence
    numbers continuing across frames, wrapping at 65536, marker on the last packet of each
    access unit)."""

    def __init__(
        self,
        ssrc: int,
        payload_type: int = DEFAULT_PAYLOAD_TYPE,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        first_sequence: int = 0,
    ) -> None:
        if not 0 <= ssrc <= MAX_UINT32:
            raise ValueError(f"SSRC {ssrc} is not 32-bit unsigned")
        if max_payload < 1:
            raise ValueError(f"max_payload {max_payload} must be positive")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.max_payload = max_payload
        self.sequence = first_sequence % SEQUENCE_MODULO  # the next packet's sequence number

    def packets(self, ps: bytes, timestamp: int) -> list[bytes]:
        """Encoded RTP packets for one pack; timestamp in 90 kHz ticks, wrapped to 32 bits."""
        payloads = ps_rtp_payloads(ps, self.max_payload)
        timestamp %= RTP_TIMESTAMP_MODULO
        out: list[bytes] = []
        for index, payload in enumerate(payloads):
            packet = RtpPacket(
                marker=index == len(payloads) - 1,
                payload_type=self.payload_type,
                sequence=self.sequence,
                timestamp=timestamp,
                ssrc=self.ssrc,
                payload=payload,
            )
            out.append(encode_rtp(packet))
            self.sequence = (self.sequence + 1) % SEQUENCE_MODULO
        return out


__all__ = [
    "STREAM_TYPE",
    "PsMuxer",
    "PsRtpPacketizer",
    "crc32_mpeg2",
    "ps_rtp_payloads",
]
