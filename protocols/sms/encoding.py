"""SMS text coding: choose GSM 7-bit or UCS-2, split into segments, and decode inbound parts.

Outbound, :func:`encode_message` picks ``data_coding`` 0 (GSM 03.38 default alphabet)
when every character is in it, else 8 (UCS-2, sent as UTF-16BE without a BOM, so
characters outside the BMP travel as surrogate pairs). Over SMPP the GSM bytes are the
*unpacked* default-alphabet octets, one per septet with 0x1B escapes, not septet-packed:
the SMSC packs them for the air interface. A long text becomes concatenated segments, each
carrying a 6-octet UDH (IE 0x00, 8-bit reference); no segment ever ends between the two
septets of an escape sequence or the two halves of a surrogate pair.

Inbound, :func:`decode_part` turns a ``short_message`` with its ``data_coding`` and
``esm_class`` into text plus any concatenation header.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from protocols.sms.errors import SmsRejected, SmsRejectReason
from protocols.sms.gsm7 import ENCODE, decode_gsm7, is_gsm7

GSM7_SINGLE = 160
"""Septets in one unconcatenated GSM 7-bit message."""
GSM7_SEGMENT = 153
"""Septets per concatenated GSM 7-bit segment (the 6-octet UDH takes 7 septets)."""
UCS2_SINGLE = 70
"""UTF-16 code units in one unconcatenated UCS-2 message."""
UCS2_SEGMENT = 67
"""UTF-16 code units per concatenated UCS-2 segment (140 - 6 octets of UDH, halved)."""
MAX_REFERENCE = 0xFF
"""The 8-bit concatenation reference we send."""
MAX_SEGMENTS_LIMIT = 255
"""The concatenation header counts parts in one octet."""
DEFAULT_MAX_SEGMENTS = 10
"""Per-message cap: longer texts are refused rather than sent as a costly stream of parts."""

ESM_UDHI = 0x40
"""esm_class bit: short_message starts with a User Data Header."""
IE_CONCAT_8BIT = 0x00
"""Concatenated short messages, 8-bit reference."""
IE_CONCAT_16BIT = 0x08
"""Concatenated short messages, 16-bit reference."""
UDH_CONCAT_8BIT_LEN = 5
"""UDH length octet for a header holding only the 8-bit concatenation IE."""
CONCAT_8BIT_LEN = 3
CONCAT_16BIT_LEN = 4
UCS2_UNIT_BYTES = 2
BMP_MAX = 0xFFFF


class DataCoding(IntEnum):
    """The SMPP ``data_coding`` values we send or read."""

    GSM7 = 0
    IA5 = 1
    LATIN1 = 3
    UCS2 = 8


@dataclass(frozen=True, slots=True)
class Segment:
    """One outbound short message: ``udh`` is empty unless the text is concatenated."""

    data_coding: DataCoding
    payload: bytes
    udh: bytes = b""
    seq: int = 1
    total: int = 1

    @property
    def short_message(self) -> bytes:
        """The SMPP ``short_message`` octets: the UDH (if any) then the user data."""
        return self.udh + self.payload

    @property
    def esm_class_bits(self) -> int:
        """Bits to OR into ``esm_class``: UDHI when a UDH is present."""
        return ESM_UDHI if self.udh else 0


@dataclass(frozen=True, slots=True)
class Concat:
    """A concatenation header: part ``seq`` of ``total`` in message ``ref``."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class InboundPart:
    """One decoded inbound short message; ``concat`` is set for a part of a long text."""

    text: str
    data_coding: DataCoding
    payload: bytes
    concat: Concat | None = None


def choose_coding(text: str) -> DataCoding:
    """GSM7 when every character is in the GSM 03.38 alphabet (or its extension), else UCS2."""
    return DataCoding.GSM7 if is_gsm7(text) else DataCoding.UCS2


def _units(text: str, coding: DataCoding) -> list[int]:
    """Per character, the septets (GSM) or UTF-16 code units (UCS-2) it takes."""
    if coding is DataCoding.GSM7:
        return [len(ENCODE[ch]) for ch in text]
    return [2 if ord(ch) > BMP_MAX else 1 for ch in text]


def _split(units: list[int], coding: DataCoding, limit: int | None) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` per segment; stops once past ``limit`` segments."""
    single, per_segment = (
        (GSM7_SINGLE, GSM7_SEGMENT) if coding is DataCoding.GSM7 else (UCS2_SINGLE, UCS2_SEGMENT)
    )
    if sum(units) <= single:
        return [(0, len(units))]
    ranges: list[tuple[int, int]] = []
    start = used = 0
    for i, cost in enumerate(units):
        if used + cost > per_segment:  # never split one character's units across segments
            ranges.append((start, i))
            if limit is not None and len(ranges) > limit:
                return ranges
            start, used = i, 0
        used += cost
    ranges.append((start, len(units)))
    return ranges


def _check_encodable(text: str) -> None:
    try:
        text.encode("utf-16-be")
    except UnicodeEncodeError:
        raise SmsRejected(
            SmsRejectReason.UNENCODABLE, "text holds a lone surrogate code point"
        ) from None


def segment_count(text: str) -> int:
    """How many short messages ``text`` takes (1 for an empty text), with no cap applied."""
    _check_encodable(text)
    coding = choose_coding(text)
    return len(_split(_units(text, coding), coding, None))


def encode_message(
    text: str, *, max_segments: int = DEFAULT_MAX_SEGMENTS, ref: int = 0
) -> list[Segment]:
    """Encode ``text`` into one or more segments ready for ``submit_sm``.

    ``ref`` (0–255) is the concatenation reference the caller allocates per recipient.
    Raises :class:`SmsRejected` (too_many_segments, unencodable, bad_argument) and
    nothing else.
    """
    if not 0 <= ref <= MAX_REFERENCE:
        raise SmsRejected(SmsRejectReason.BAD_ARGUMENT, "ref must lie in [0, 255]")
    if not 1 <= max_segments <= MAX_SEGMENTS_LIMIT:
        raise SmsRejected(SmsRejectReason.BAD_ARGUMENT, "max_segments must lie in [1, 255]")
    _check_encodable(text)
    coding = choose_coding(text)
    ranges = _split(_units(text, coding), coding, max_segments)
    if len(ranges) > max_segments:
        raise SmsRejected(
            SmsRejectReason.TOO_MANY_SEGMENTS, f"text needs more than {max_segments} segments"
        )
    total = len(ranges)
    segments: list[Segment] = []
    for seq, (start, end) in enumerate(ranges, start=1):
        chunk = text[start:end]
        payload = (
            b"".join(ENCODE[ch] for ch in chunk)
            if coding is DataCoding.GSM7
            else chunk.encode("utf-16-be")
        )
        udh = concat_udh(ref, total, seq) if total > 1 else b""
        segments.append(Segment(coding, payload, udh, seq, total))
    return segments


def concat_udh(ref: int, total: int, seq: int) -> bytes:
    """The 6-octet UDH for part ``seq`` of ``total`` with 8-bit reference ``ref``."""
    return bytes([UDH_CONCAT_8BIT_LEN, IE_CONCAT_8BIT, CONCAT_8BIT_LEN, ref, total, seq])


def _bad_udh(detail: str) -> SmsRejected:
    return SmsRejected(SmsRejectReason.BAD_UDH, detail)


def split_udh(short_message: bytes) -> tuple[bytes, bytes]:
    """Split a ``short_message`` sent with UDHI into (UDH including its length octet, data)."""
    if not short_message:
        raise _bad_udh("UDHI set but the message is empty")
    end = 1 + short_message[0]
    if end > len(short_message):
        raise _bad_udh("UDH length runs past the message")
    return short_message[:end], short_message[end:]


def parse_udh(udh: bytes) -> Concat | None:
    """The concatenation IE of a UDH (with its length octet), or None if it has none.

    Other IEs are skipped; a malformed IE list or concatenation IE raises bad_udh.
    """
    pos, end = 1, len(udh)
    if not udh or udh[0] != end - 1:
        raise _bad_udh("UDH length octet disagrees with the header")
    concat: Concat | None = None
    while pos < end:
        if pos + 2 > end:
            raise _bad_udh("truncated information element")
        iei, size = udh[pos], udh[pos + 1]
        data = udh[pos + 2 : pos + 2 + size]
        if len(data) != size:
            raise _bad_udh("information element runs past the UDH")
        pos += 2 + size
        if iei == IE_CONCAT_8BIT and size == CONCAT_8BIT_LEN:
            concat = _concat(data[0], data[1], data[2])
        elif iei == IE_CONCAT_16BIT and size == CONCAT_16BIT_LEN:
            concat = _concat((data[0] << 8) | data[1], data[2], data[3])
        elif iei in (IE_CONCAT_8BIT, IE_CONCAT_16BIT):
            raise _bad_udh("concatenation IE of the wrong length")
    return concat


def _concat(ref: int, total: int, seq: int) -> Concat:
    if total == 0 or not 1 <= seq <= total:
        raise _bad_udh(f"part {seq} of {total} is impossible")
    return Concat(ref, total, seq)


def decode_user_data(payload: bytes, data_coding: int) -> str:
    """Text from user data (no UDH) in ``data_coding`` 0, 1 (IA5/ASCII), 3 or 8.

    GSM is unpacked default-alphabet octets, so an octet above 0x7F is bad_text (an SMSC
    whose default alphabet is really Latin-1 needs the adapter to say so). UCS-2 is read
    as UTF-16BE; a lone surrogate (a sender that split a pair) becomes
    U+FFFD. Raises :class:`SmsRejected` (unsupported_coding, bad_text).
    """
    if data_coding == DataCoding.GSM7:
        try:
            return decode_gsm7(payload)
        except ValueError as err:
            raise SmsRejected(SmsRejectReason.BAD_TEXT, str(err)) from None
    if data_coding == DataCoding.IA5:
        if not payload.isascii():
            raise SmsRejected(SmsRejectReason.BAD_TEXT, "IA5 data with an octet above 0x7F")
        return payload.decode("ascii")
    if data_coding == DataCoding.LATIN1:
        return payload.decode("latin-1")
    if data_coding == DataCoding.UCS2:
        if len(payload) % UCS2_UNIT_BYTES:
            raise SmsRejected(SmsRejectReason.BAD_TEXT, "UCS-2 data of odd length")
        return payload.decode("utf-16-be", errors="replace")
    raise SmsRejected(SmsRejectReason.UNSUPPORTED_CODING, f"data_coding {data_coding}")


def decode_part(short_message: bytes, *, data_coding: int, esm_class: int) -> InboundPart:
    """Decode an inbound ``short_message``, stripping and reading the UDH when UDHI is set.

    Raises :class:`SmsRejected` (bad_udh, unsupported_coding, bad_text) and nothing else.
    """
    concat: Concat | None = None
    payload = short_message
    if esm_class & ESM_UDHI:
        udh, payload = split_udh(short_message)
        concat = parse_udh(udh)
    text = decode_user_data(payload, data_coding)
    return InboundPart(text, DataCoding(data_coding), payload, concat)
