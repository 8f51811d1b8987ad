"""ITU-T G.711 mu-law (PCMU) and A-law (PCMA) for signed 16-bit little-endian mono PCM.

Decoding uses 256-entry tables; encoding a 65536-entry table indexed by the raw 16-bit
sample, both built once at import with numpy. Bit-exact with the classic Sun reference
implementation (the one in CPython's ``audioop``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

G711_PAYLOAD_TYPES: Final[dict[str, int]] = {"PCMU": 0, "PCMA": 8}
SAMPLE_WIDTH = 2
SAMPLE_RATE = 8000

_SIGN_BIT = 0x80
_QUANT_MASK = 0x0F
_SEG_SHIFT = 4
_SEG_MASK = 0x70
_SEGMENTS = 8
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # 14-bit magnitude limit
_ULAW_SHIFT = 2  # 16-bit -> 14-bit
_ALAW_SHIFT = 3  # 16-bit -> 13-bit
_ALAW_XOR = 0x55  # A-law inverts the even bits
_ULAW_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)

_Table = npt.NDArray[np.uint8]
_Samples = npt.NDArray[np.int16]


def _all_samples() -> npt.NDArray[np.int32]:
    """Every 16-bit sample, ordered by its unsigned bit pattern (0, 1, ..., -1)."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _segment(magnitude: npt.NDArray[np.int32], ends: tuple[int, ...]) -> npt.NDArray[np.int32]:
    """Index of the first segment whose end is >= magnitude (8 when above all)."""
    return np.searchsorted(np.array(ends, dtype=np.int32), magnitude, side="left").astype(np.int32)


def _build_ulaw_encode() -> _Table:
    pcm = _all_samples() >> _ULAW_SHIFT
    negative = pcm < 0
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(np.where(negative, -pcm, pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(magnitude, _ULAW_SEG_END)
    code = (seg << _SEG_SHIFT) | ((magnitude >> (np.minimum(seg, _SEGMENTS - 1) + 1)) & 0xF)
    code = np.where(seg >= _SEGMENTS, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_alaw_encode() -> _Table:
    pcm = _all_samples() >> _ALAW_SHIFT
    negative = pcm < 0
    mask = np.where(negative, _ALAW_XOR, _ALAW_XOR | _SIGN_BIT)
    magnitude = np.where(negative, -pcm - 1, pcm)
    seg = _segment(magnitude, _ALAW_SEG_END)
    shift = np.where(seg < 2, 1, np.minimum(seg, _SEGMENTS - 1))
    code = (seg << _SEG_SHIFT) | ((magnitude >> shift) & _QUANT_MASK)
    code = np.where(seg >= _SEGMENTS, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_ulaw_decode() -> _Samples:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & _QUANT_MASK) << 3) + _ULAW_BIAS) << ((u & _SEG_MASK) >> _SEG_SHIFT)
    return np.where(u & _SIGN_BIT, _ULAW_BIAS - t, t - _ULAW_BIAS).astype("<i2")


def _build_alaw_decode() -> _Samples:
    a = np.arange(256, dtype=np.int32) ^ _ALAW_XOR
    seg = (a & _SEG_MASK) >> _SEG_SHIFT
    t = (a & _QUANT_MASK) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & _SIGN_BIT, t, -t).astype("<i2")


_ULAW_ENCODE: Final = _build_ulaw_encode()
_ALAW_ENCODE: Final = _build_alaw_encode()
_ULAW_DECODE: Final = _build_ulaw_decode()
_ALAW_DECODE: Final = _build_alaw_decode()


def _encode(pcm: bytes, table: _Table) -> bytes:
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"PCM length {len(pcm)} is not a whole number of 16-bit samples")
    encoded: bytes = table[np.frombuffer(pcm, dtype="<u2")].tobytes()
    return encoded


def _decode(data: bytes, table: _Samples) -> bytes:
    decoded: bytes = table[np.frombuffer(data, dtype=np.uint8)].tobytes()
    return decoded


def ulaw_encode(pcm: bytes) -> bytes:
    """Signed 16-bit little-endian mono samples -> PCMU bytes (ValueError on an odd length)."""
    return _encode(pcm, _ULAW_ENCODE)


def ulaw_decode(data: bytes) -> bytes:
    """PCMU bytes -> signed 16-bit little-endian samples."""
    return _decode(data, _ULAW_DECODE)


def alaw_encode(pcm: bytes) -> bytes:
    """Signed 16-bit little-endian mono samples -> PCMA bytes (ValueError on an odd length)."""
    return _encode(pcm, _ALAW_ENCODE)


def alaw_decode(data: bytes) -> bytes:
    """PCMA bytes -> signed 16-bit little-endian samples."""
    return _decode(data, _ALAW_DECODE)
