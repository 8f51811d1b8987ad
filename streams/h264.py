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


_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
"""profile_idc values whose SPS carries chroma format and bit depths (H.264 7.3.2.1.1)."""
_MB = 16


class _Bits:
    """An RBSP bit reader (emulation prevention bytes removed) with Exp-Golomb codes."""

    def __init__(self, unit: bytes) -> None:
        self.data = unit.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def bit(self) -> int:
        byte = self.pos >> 3
        if byte >= len(self.data):
            raise ValueError("SPS ends early")
        value = (self.data[byte] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = value << 1 | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se()) % 256
        last = next_scale or last


def sps_dimensions(annexb: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from the first SPS in ``annexb`` (cropping applied), or
    None when there is no SPS or it cannot be read."""
    sps = next((u for u in split_annexb(annexb) if nal_type(u) == NAL_SPS), None)
    if sps is None:
        return None
    try:
        return _dimensions(_Bits(sps[1:]))
    except ValueError:
        return None


def _dimensions(bits: _Bits) -> tuple[int, int]:
    profile = bits.bits(8)
    bits.bits(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format = 1
    if profile in _HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            bits.bit()  # separate_colour_plane_flag
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.bit()  # qpprime_y_zero_transform_bypass_flag
        if bits.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if bits.bit():
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.bit()
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.bit()
    if not frame_mbs_only:
        bits.bit()  # mb_adaptive_frame_field_flag
    bits.bit()  # direct_8x8_inference_flag
    width = width_mbs * _MB
    height = height_units * _MB * (2 - frame_mbs_only)
    if bits.bit():  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        crop_x = 1 if chroma_format == 0 else 2 if chroma_format in (1, 2) else 1
        crop_y = (1 if chroma_format in (0, 2, 3) else 2) * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    return width, height
