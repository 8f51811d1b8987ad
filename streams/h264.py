"""H.264 bitstream helpers: Annex-B NAL splitting, avcC → Annex-B parameter sets, and the
SDP ``profile-level-id`` of a stream's SPS. Pure bytes in, values out."""

from __future__ import annotations

START_CODE = b"\x00\x00\x00\x01"
NAL_SPS = 7
NAL_PPS = 8
NAL_IDR = 5
AVCC_VERSION = 1
AVCC_HEADER = 6


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B buffer (start codes removed)."""
    units: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        unit = data[start:end]
        if nxt >= 0 and unit.endswith(b"\x00"):
            unit = unit.rstrip(b"\x00")  # a 4-byte start code's leading zero
        if unit:
            units.append(unit)
        i = nxt
    return units


def nal_type(unit: bytes) -> int:
    """The NAL unit type (low five bits of the header byte)."""
    return unit[0] & 0x1F if unit else 0


def avcc_to_annexb(extradata: bytes) -> bytes:
    """Parameter sets of an ``avcC`` record (ISO 14496-15) as Annex-B; Annex-B passes through."""
    if not extradata or extradata[0] != AVCC_VERSION or len(extradata) < AVCC_HEADER + 1:
        return extradata
    out = bytearray()
    pos = 5
    count = extradata[pos] & 0x1F
    pos += 1
    for section in range(2):
        if section == 1:
            if pos >= len(extradata):
                break
            count = extradata[pos]
            pos += 1
        for _ in range(count):
            if pos + 2 > len(extradata):
                return bytes(out)
            size = int.from_bytes(extradata[pos : pos + 2], "big")
            pos += 2
            out += START_CODE + extradata[pos : pos + size]
            pos += size
    return bytes(out)


def parameter_sets(extradata: bytes) -> bytes:
    """Only the SPS and PPS NAL units of ``extradata`` (avcC or Annex-B), as Annex-B."""
    units = split_annexb(avcc_to_annexb(extradata))
    return b"".join(START_CODE + u for u in units if nal_type(u) in (NAL_SPS, NAL_PPS))


def has_sps(data: bytes) -> bool:
    """Whether an Annex-B access unit carries its own SPS."""
    return any(nal_type(u) == NAL_SPS for u in split_annexb(data))


def profile_level_id(annexb: bytes) -> str | None:
    """``profile-level-id`` (6 hex digits: profile_idc, constraint flags, level_idc) of the
    first SPS in ``annexb``, or None when there is none."""
    for unit in split_annexb(annexb):
        if nal_type(unit) == NAL_SPS and len(unit) >= 4:
            return unit[1:4].hex()
    return None
