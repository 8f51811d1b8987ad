"""H.264 / H.265 Annex-B helpers: NAL unit types, access-unit starts, codec guessing."""

from __future__ import annotations

START_CODE = b"\x00\x00\x01"
H264_TYPE_MASK = 0x1F
H264_IDR = 5
H264_SPS = 7
H264_NON_IDR = 1
H264_SEI = 6
H264_PPS = 8
H264_AUD = 9
# NAL types that can only open an access unit (ITU-T H.264 7.4.1.2.3)
H264_AU_OPENERS = frozenset({H264_SEI, H264_SPS, H264_PPS, H264_AUD})
H264_SLICES = frozenset({H264_NON_IDR, H264_IDR})
H265_VPS = 32
H265_SPS = 33
H265_PPS = 34
H265_AUD = 35
H265_PREFIX_SEI = 39
H265_IRAP = range(16, 22)
H265_MAX_VCL = 31
H265_TYPE_MASK = 0x3F
# ITU-T H.265 7.4.2.4.4: these come before the first slice of an access unit
H265_AU_OPENERS = frozenset({H265_VPS, H265_SPS, H265_PPS, H265_AUD, H265_PREFIX_SEI})
H265_GUESS_TYPES = frozenset({H265_VPS, H265_SPS, H265_PPS, H265_AUD, H265_PREFIX_SEI, 1, 19, 20})
H264_GUESS_TYPES = frozenset({H264_NON_IDR, H264_IDR, H264_SEI, H264_SPS, H264_PPS, H264_AUD})
_FORBIDDEN_BIT = 0x80
_H265_HEADER_ZERO_BITS = 0x81  # forbidden_zero_bit and the top bit of nuh_layer_id
_H265_BASE_LAYER_TID1 = 0x01  # second header byte of almost every base-layer NAL unit
_FIRST_IN_PICTURE = 0x80  # first_mb_in_slice == 0 / first_slice_segment_in_pic_flag
_GUESS_SCAN_LIMIT = 16  # NAL units to look at before giving up on a guess


def _headers(data: bytes | bytearray, start: int = 0) -> list[int]:
    """Offsets of the first byte after each 3-byte start code."""
    offsets: list[int] = []
    pos = data.find(START_CODE, start)
    while pos >= 0:
        offsets.append(pos + 3)
        pos = data.find(START_CODE, pos + 3)
    return [off for off in offsets if off < len(data)]


def nal_types_h264(data: bytes | bytearray) -> list[int]:
    """NAL unit types of an H.264 Annex-B byte stream, in order."""
    return [data[off] & H264_TYPE_MASK for off in _headers(data)]


def nal_types_h265(data: bytes | bytearray) -> list[int]:
    """NAL unit types of an H.265 Annex-B byte stream, in order."""
    return [(data[off] >> 1) & H265_TYPE_MASK for off in _headers(data)]


def is_keyframe(codec: str, data: bytes | bytearray) -> bool:
    """H.264: IDR slice or SPS present; H.265: IRAP slice or VPS/SPS present."""
    if codec == "h264":
        return any(t in (H264_IDR, H264_SPS) for t in nal_types_h264(data))
    if codec == "h265":
        return any(t in H265_IRAP or t in (H265_VPS, H265_SPS) for t in nal_types_h265(data))
    return False


def guess_codec(data: bytes | bytearray) -> str:
    """Guess "h264" or "h265" from NAL headers; "unknown" if nothing is conclusive."""
    for off in _headers(data)[:_GUESS_SCAN_LIMIT]:
        first = data[off]
        second = data[off + 1] if off + 1 < len(data) else -1
        if (
            first & _H265_HEADER_ZERO_BITS == 0
            and second == _H265_BASE_LAYER_TID1
            and (first >> 1) in H265_GUESS_TYPES
        ):
            return "h265"
        if first & _FORBIDDEN_BIT == 0 and first & H264_TYPE_MASK in H264_GUESS_TYPES:
            return "h264"
    return "unknown"


def opens_access_unit(codec: str, data: bytes | bytearray, off: int) -> bool | None:
    """Whether the NAL unit whose header is at off starts an access unit; None if cut short."""
    if codec == "h264":
        if off + 1 >= len(data):
            return None
        kind = data[off] & H264_TYPE_MASK
        if kind in H264_AU_OPENERS:
            return True
        return kind in H264_SLICES and bool(data[off + 1] & _FIRST_IN_PICTURE)
    if codec == "h265":
        if off + 2 >= len(data):
            return None
        kind = (data[off] >> 1) & H265_TYPE_MASK
        if kind in H265_AU_OPENERS:
            return True
        return kind <= H265_MAX_VCL and bool(data[off + 2] & _FIRST_IN_PICTURE)
    return None


def find_access_unit_start(codec: str, data: bytes | bytearray, start: int) -> int:
    """Offset of the start code that opens the next access unit at or after start, or -1."""
    pos = data.find(START_CODE, start)
    while pos >= 0:
        if opens_access_unit(codec, data, pos + 3):
            # include the leading zero of a 4-byte start code
            return pos - 1 if pos > 0 and data[pos - 1] == 0 else pos
        pos = data.find(START_CODE, pos + 3)
    return -1


H264_MAX_VCL = 5


def is_vcl(codec: str, data: bytes | bytearray, off: int) -> bool:
    """Whether the NAL unit whose header is at off carries slice data."""
    if off >= len(data):
        return False
    if codec == "h264":
        return 1 <= data[off] & H264_TYPE_MASK <= H264_MAX_VCL
    if codec == "h265":
        return (data[off] >> 1) & H265_TYPE_MASK <= H265_MAX_VCL
    return False
