"""RFC 6184 H.264 RTP payload: packetiser, depacketiser and SDP ``fmtp`` negotiation.

Pure and I/O-free: Annex-B access units in, encoded RTP packets out, and parsed
:class:`~protocols.gb28181.rtp.RtpPacket` objects in, Annex-B access units out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from protocols.gb28181.rtp import SEQUENCE_MODULO, RtpPacket, encode_rtp
from streams.h264 import NAL_IDR, NAL_SPS, START_CODE, nal_type, split_annexb

NAL_STAP_A = 24
NAL_STAP_B = 25
NAL_MTAP16 = 26
NAL_MTAP24 = 27
NAL_FU_A = 28
NAL_FU_B = 29
MAX_SINGLE_NAL_TYPE = 23  # 1-23: a single NAL unit packet
NAL_HEADER_LENGTH = 1
FU_HEADER_LENGTH = 2  # FU indicator + FU header
STAP_SIZE_LENGTH = 2
FU_START = 0x80
FU_END = 0x40
NAL_TYPE_MASK = 0x1F
NAL_F_NRI_MASK = 0xE0  # forbidden bit and nal_ref_idc
TIMESTAMP_MODULO = 1 << 32
HALF_SEQUENCE = SEQUENCE_MODULO // 2
# RFC 3550 appendix A.1: a packet this far behind is a sender restart, not a late packet
MAX_MISORDER = 100
DEFAULT_MAX_PAYLOAD = 1200
DEFAULT_MAX_ACCESS_UNIT = 4 * 1024 * 1024
DEFAULT_PROFILE_LEVEL_ID = "42000a"  # RFC 6184 section 8.1
PROFILE_LEVEL_ID_LENGTH = 6
PROFILE_BASELINE = 0x42
# constrained baseline: profile_idc 0x42 with constraint_set1 set and the reserved bits zero
_CB_FLAGS_MASK = 0x4F
_CB_FLAGS = 0x40
PACKETIZATION_MODES = (0, 1)
_KEY_NAL_TYPES = frozenset({NAL_IDR, NAL_SPS})
_UNSUPPORTED_AGGREGATES = frozenset({NAL_STAP_B, NAL_MTAP16, NAL_MTAP24, NAL_FU_B})


class H264RtpError(ValueError):
    """Invalid H.264 RTP packetiser configuration."""


class H264Packetizer:
    """Annex-B access units -> RFC 6184 RTP packets.

    Packetization-mode 1: single NAL unit packets, FU-A for NAL units larger than
    ``max_payload`` (STAP-A is never sent). Mode 0 sends single NAL units only; a NAL unit
    larger than ``max_payload`` is then sent anyway as one (oversized) packet.
    """

    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        packetization_mode: int = 1,
        first_sequence: int = 0,
    ) -> None:
        if packetization_mode not in PACKETIZATION_MODES:
            raise H264RtpError(f"packetization-mode {packetization_mode} is not supported")
        if max_payload <= FU_HEADER_LENGTH:
            raise H264RtpError(f"max_payload {max_payload} leaves no room for FU-A data")
        if not 0 <= first_sequence < SEQUENCE_MODULO:
            raise H264RtpError(f"first sequence {first_sequence} out of range")
        if not 0 <= ssrc < TIMESTAMP_MODULO or not 0 <= payload_type <= 0x7F:
            raise H264RtpError("SSRC must be 32-bit unsigned and payload type 0-127")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.max_payload = max_payload
        self.packetization_mode = packetization_mode
        self._sequence = first_sequence

    @property
    def sequence(self) -> int:
        """The sequence number of the next packet."""
        return self._sequence

    def _payloads(self, unit: bytes) -> Iterable[bytes]:
        if len(unit) <= self.max_payload or self.packetization_mode == 0:
            yield unit
            return
        indicator = (unit[0] & NAL_F_NRI_MASK) | NAL_FU_A
        kind = unit[0] & NAL_TYPE_MASK
        chunk = self.max_payload - FU_HEADER_LENGTH
        body = unit[NAL_HEADER_LENGTH:]
        for start in range(0, len(body), chunk):
            flags = (FU_START if start == 0 else 0) | (FU_END if start + chunk >= len(body) else 0)
            yield bytes((indicator, flags | kind)) + body[start : start + chunk]

    def packets(self, access_unit: bytes, timestamp: int) -> list[bytes]:
        """Encoded RTP packets for one Annex-B access unit at a 90 kHz ``timestamp`` (taken
        modulo 2**32); the marker bit is set on the last one. No NAL units, no packets."""
        payloads = [p for unit in split_annexb(access_unit) for p in self._payloads(unit)]
        out: list[bytes] = []
        last = len(payloads) - 1
        for index, payload in enumerate(payloads):
            packet = RtpPacket(
                marker=index == last,
                payload_type=self.payload_type,
                sequence=self._sequence,
                timestamp=timestamp % TIMESTAMP_MODULO,
                ssrc=self.ssrc,
                payload=payload,
            )
            out.append(encode_rtp(packet))
            self._sequence = (self._sequence + 1) % SEQUENCE_MODULO
        return out


class H264Depacketizer:
    """RFC 6184 RTP payloads -> Annex-B access units (4-byte start codes).

    Feed packets in sequence order (e.g. after an ``RtpReorderer``). Handles single NAL unit
    packets, STAP-A and FU-A. ``push`` never raises on bad payloads: STAP-B, MTAP and FU-B
    packets, truncated STAP-A/FU-A and fragments without a start are dropped and counted in
    ``dropped_packets`` and make the access unit damaged; empty payloads and NAL types 0, 30
    and 31 are dropped and counted without damaging it. Late and duplicate packets (up to
    ``MAX_MISORDER`` behind) are dropped and counted.

    An access unit ends on the marker bit or when the RTP timestamp changes. A sequence gap,
    an SSRC change or a damaged payload drops the access unit being assembled and the one the
    next packet belongs to (each counted in ``lost_frames``); the depacketiser then emits
    nothing until an access unit with an IDR or SPS (``waiting_keyframe`` is True meanwhile,
    skipped access units are counted in ``skipped_frames``) so the caller can request a
    keyframe. It starts out waiting for a keyframe too.
    """

    def __init__(self, max_access_unit: int = DEFAULT_MAX_ACCESS_UNIT) -> None:
        self.max_access_unit = max_access_unit
        self.waiting_keyframe = True
        self.lost_frames = 0
        self.dropped_packets = 0
        self.skipped_frames = 0
        self._units: list[bytes] = []
        self._size = 0
        self._fragment: bytearray | None = None
        self._timestamp: int | None = None
        self._damaged = False
        self._next_sequence: int | None = None
        self._ssrc: int | None = None

    def _reset(self) -> None:
        self._units = []
        self._size = 0
        self._fragment = None
        self._timestamp = None
        self._damaged = False

    def _finish(self, out: list[tuple[bytes, int, bool]]) -> None:
        """Close the access unit being assembled, emitting it when it is whole and usable."""
        timestamp = self._timestamp
        if self._fragment is not None:
            self._damaged = True  # a FU-A never got its end fragment
        if self._damaged:
            self.lost_frames += 1
            self.waiting_keyframe = True
        elif self._units and timestamp is not None:
            keyframe = any(nal_type(u) in _KEY_NAL_TYPES for u in self._units)
            if keyframe or not self.waiting_keyframe:
                self.waiting_keyframe = False
                out.append((b"".join(START_CODE + u for u in self._units), timestamp, keyframe))
            else:
                self.skipped_frames += 1
        self._reset()

    def _damage(self) -> None:
        self._damaged = True
        self._units = []
        self._size = 0
        self._fragment = None

    def _add(self, unit: bytes) -> None:
        if self._damaged or not unit:
            return
        self._size += len(START_CODE) + len(unit)
        if self._size > self.max_access_unit:
            self._damage()
            return
        self._units.append(unit)

    def _bad(self) -> None:
        self.dropped_packets += 1
        self._damage()

    def _stap_a(self, payload: bytes) -> None:
        pos = NAL_HEADER_LENGTH
        units: list[bytes] = []
        while pos < len(payload):
            if pos + STAP_SIZE_LENGTH > len(payload):
                self._bad()
                return
            size = int.from_bytes(payload[pos : pos + STAP_SIZE_LENGTH], "big")
            pos += STAP_SIZE_LENGTH
            if size == 0 or pos + size > len(payload):
                self._bad()
                return
            units.append(payload[pos : pos + size])
            pos += size
        if not units:
            self._bad()
            return
        for unit in units:
            self._add(unit)

    def _fu_a(self, payload: bytes) -> None:
        if len(payload) < FU_HEADER_LENGTH:
            self._bad()
            return
        header = payload[1]
        data = payload[FU_HEADER_LENGTH:]
        if header & FU_START:
            if self._fragment is not None:
                self._bad()  # the previous fragmented NAL unit never ended
                return
            self._fragment = bytearray(((payload[0] & NAL_F_NRI_MASK) | (header & NAL_TYPE_MASK),))
        elif self._fragment is None:
            self._bad()  # a middle or end fragment whose start we never saw
            return
        self._fragment += data
        if len(self._fragment) + self._size > self.max_access_unit:
            self._damage()
            return
        if header & FU_END:
            unit = bytes(self._fragment)
            self._fragment = None
            self._add(unit)

    def _payload(self, payload: bytes) -> None:
        if self._damaged:
            return  # the rest of a damaged access unit is ignored
        if not payload:
            self.dropped_packets += 1
            return
        kind = payload[0] & NAL_TYPE_MASK
        if 1 <= kind <= MAX_SINGLE_NAL_TYPE:
            if self._fragment is not None:
                self._bad()  # a NAL unit in the middle of a fragmented one
                return
            self._add(payload)
        elif kind == NAL_STAP_A:
            if self._fragment is not None:
                self._bad()
                return
            self._stap_a(payload)
        elif kind == NAL_FU_A:
            self._fu_a(payload)
        elif kind in _UNSUPPORTED_AGGREGATES:
            self._bad()  # interleaved-mode payloads: their NAL units are lost
        else:
            self.dropped_packets += 1  # NAL type 0, 30, 31: undefined, ignored

    def _check_sequence(self, packet: RtpPacket, out: list[tuple[bytes, int, bool]]) -> bool:
        """False when the packet is late or duplicate; finishes/damages on gaps."""
        if self._ssrc is not None and packet.ssrc != self._ssrc:
            if self._timestamp is not None:
                self._damaged = True
                self._finish(out)
            self._next_sequence = None
            self.waiting_keyframe = True
        self._ssrc = packet.ssrc
        expected = self._next_sequence
        if expected is None:
            self._next_sequence = (packet.sequence + 1) % SEQUENCE_MODULO
            return True
        delta = (packet.sequence - expected) % SEQUENCE_MODULO
        if delta >= HALF_SEQUENCE and SEQUENCE_MODULO - delta <= MAX_MISORDER:
            self.dropped_packets += 1
            return False
        self._next_sequence = (packet.sequence + 1) % SEQUENCE_MODULO
        if delta:
            # lost packets: the access unit in progress and the next packet's are damaged
            if self._timestamp is not None and self._timestamp != packet.timestamp:
                self._damaged = True
                self._finish(out)
            self._damage()
            self._timestamp = packet.timestamp
        return True

    def push(self, packet: RtpPacket) -> list[tuple[bytes, int, bool]]:
        """Add a packet; return completed access units as (annexb, rtp_timestamp, keyframe)."""
        out: list[tuple[bytes, int, bool]] = []
        if not self._check_sequence(packet, out):
            return out
        if self._timestamp is not None and packet.timestamp != self._timestamp:
            self._finish(out)
        self._timestamp = packet.timestamp
        self._payload(packet.payload)
        if packet.marker:
            self._finish(out)
        return out


@dataclass(frozen=True)
class H264Choice:
    """The H.264 format picked from an SDP offer."""

    payload_type: int
    profile_level_id: str  # 6 hex chars, lower case
    packetization_mode: int  # 0 or 1


def fmtp_params(fmtp: str) -> dict[str, str]:
    """``a=fmtp`` parameters ("k=v;k2=v2") as a dict; keys lower-cased, values stripped."""
    params: dict[str, str] = {}
    for item in fmtp.split(";"):
        key, _, value = item.partition("=")
        key = key.strip().lower()
        if key:
            params[key] = value.strip()
    return params


def _is_constrained_baseline(profile_level_id: str) -> bool:
    profile_idc = int(profile_level_id[:2], 16)
    flags = int(profile_level_id[2:4], 16)
    return profile_idc == PROFILE_BASELINE and flags & _CB_FLAGS_MASK == _CB_FLAGS


def _parse_offer(payload_type: int, fmtp: str) -> H264Choice | None:
    params = fmtp_params(fmtp)
    profile = params.get("profile-level-id", DEFAULT_PROFILE_LEVEL_ID).lower()
    mode_text = params.get("packetization-mode", "0")
    if len(profile) != PROFILE_LEVEL_ID_LENGTH or not mode_text.isdigit():
        return None
    try:
        int(profile, 16)
    except ValueError:
        return None
    mode = int(mode_text)
    if mode not in PACKETIZATION_MODES:
        return None
    return H264Choice(payload_type, profile, mode)


def choose_h264(offers: list[tuple[int, str]]) -> H264Choice | None:
    """Pick one of the (payload type, fmtp) H264/90000 formats of an m=video line.

    Prefers packetization-mode 1 over 0, then constrained baseline (profile_idc 42 with
    constraint_set1, e.g. 42e0xx, 42c0xx, 4240xx) over other profiles, then offer order.
    A missing profile-level-id means 42000a and a missing packetization-mode 0 (RFC 6184);
    offers with a malformed profile-level-id or packetization-mode 2 are skipped.
    """
    choices = [c for pt, fmtp in offers if (c := _parse_offer(pt, fmtp)) is not None]
    if not choices:
        return None
    ranked = sorted(
        enumerate(choices),
        key=lambda item: (
            -item[1].packetization_mode,
            not _is_constrained_baseline(item[1].profile_level_id),
            item[0],
        ),
    )
    return ranked[0][1]


def negotiate_h264(
    offered_fmtp: list[tuple[int, str]],
    *,
    accept_profiles: tuple[str, ...] = ("42", "4d", "64"),
) -> H264Choice | None:
    """:func:`choose_h264` among the offers whose profile_idc (first two hex digits of
    profile-level-id) is in ``accept_profiles``."""
    accepted = {p.lower() for p in accept_profiles}
    usable = [
        (pt, fmtp)
        for pt, fmtp in offered_fmtp
        if (c := _parse_offer(pt, fmtp)) is not None and c.profile_level_id[:2] in accepted
    ]
    return choose_h264(usable)
