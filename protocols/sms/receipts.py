"""SMSC delivery receipts: the SMPP 3.4 Appendix B text, the receipt TLVs, and id matching.

Receipt text looks like ``id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done
date:YYMMDDhhmm stat:DDDDDDD err:E text: ...``; SMSCs vary in case, spacing, field order,
missing fields and 10- or 12-digit dates, and the parser tolerates all of that. Dates are
the SMSC's local time, so they come back as naive datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from protocols.sms.errors import SmsRejected, SmsRejectReason

TAG_RECEIPTED_MESSAGE_ID = 0x001E
"""TLV: the SMSC message id the receipt is about (C-octet string)."""
TAG_MESSAGE_STATE = 0x0427
"""TLV: the message state (one octet)."""
MAX_RECEIPT_CHARS = 1024
"""Longer text is not a receipt (a short_message holds at most 254 octets)."""
MAX_NUMERIC_ID_CHARS = 64
"""Ids longer than this get no hex/decimal alternative keys (SMPP ids are at most 64)."""


class DeliveryState(StrEnum):
    """Our delivery states; only ``sent`` is not final."""

    SENT = "sent"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        """True when no further receipt is expected."""
        return self is not DeliveryState.SENT


STAT_STATES: dict[str, DeliveryState] = {
    "DELIVRD": DeliveryState.DELIVERED,
    "DELIVERED": DeliveryState.DELIVERED,
    "EXPIRED": DeliveryState.EXPIRED,
    "UNDELIV": DeliveryState.FAILED,
    "UNDELIVERABLE": DeliveryState.FAILED,
    "REJECTD": DeliveryState.FAILED,
    "REJECTED": DeliveryState.FAILED,
    "DELETED": DeliveryState.FAILED,
    "SKIPPED": DeliveryState.FAILED,
    "ACCEPTD": DeliveryState.SENT,
    "ACCEPTED": DeliveryState.SENT,
    "ENROUTE": DeliveryState.SENT,
    "SCHEDLD": DeliveryState.SENT,
    "UNKNOWN": DeliveryState.UNKNOWN,
}
"""The ``stat:`` word (upper-cased) → our state; any other word maps to unknown."""

MESSAGE_STATES: dict[int, DeliveryState] = {
    0: DeliveryState.SENT,  # SCHEDULED (SMPP 5.0)
    1: DeliveryState.SENT,  # ENROUTE
    2: DeliveryState.DELIVERED,
    3: DeliveryState.EXPIRED,
    4: DeliveryState.FAILED,  # DELETED
    5: DeliveryState.FAILED,  # UNDELIVERABLE
    6: DeliveryState.SENT,  # ACCEPTED
    7: DeliveryState.UNKNOWN,
    8: DeliveryState.FAILED,  # REJECTED
    9: DeliveryState.FAILED,  # SKIPPED (SMPP 5.0)
}
"""The ``message_state`` TLV value → our state; any other value maps to unknown."""

_KEY = re.compile(
    r"(?<![A-Za-z])(id|sub|dlvrd|submit[ _]*date|done[ _]*date|stat|err|text)\s*:", re.I
)
_DATE_FORMATS = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S"}
_HEX = re.compile(r"[0-9a-f]+")
_DEC = re.compile(r"[0-9]+")
_COUNT = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt; fields the SMSC left out are None."""

    message_id: str
    state: DeliveryState
    stat: str
    submitted: int | None = None
    delivered: int | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    error: str | None = None
    text: str | None = None


def state_from_stat(stat: str) -> DeliveryState:
    """Our state for a ``stat:`` word, case-insensitively (unknown words → unknown)."""
    return STAT_STATES.get(stat.strip().upper(), DeliveryState.UNKNOWN)


def state_from_message_state(value: int) -> DeliveryState:
    """Our state for a ``message_state`` TLV value (unknown values → unknown)."""
    return MESSAGE_STATES.get(value, DeliveryState.UNKNOWN)


def decode_receipted_message_id(value: bytes) -> str:
    """The ``receipted_message_id`` TLV value as text, without its terminating NUL."""
    return value.split(b"\x00", 1)[0].decode("latin-1").strip()


def decode_message_state(value: bytes) -> int:
    """The ``message_state`` TLV value; raises bad_value unless it is one octet."""
    if len(value) != 1:
        raise SmsRejected(SmsRejectReason.BAD_VALUE, "message_state must be one octet")
    return value[0]


def parse_receipt_date(value: str) -> datetime | None:
    """A YYMMDDhhmm or YYMMDDhhmmss date; None when absent or not a valid date."""
    value = value.strip()
    fmt = _DATE_FORMATS.get(len(value))
    if fmt is None or not _DEC.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        return None


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and _COUNT.fullmatch(value) else None


def receipt_fields(text: str) -> dict[str, str]:
    """The ``key:value`` fields of receipt text, keys lower-cased (``submit date`` etc.)."""
    fields: dict[str, str] = {}
    matches = list(_KEY.finditer(text))
    for i, match in enumerate(matches):
        key = re.sub(r"[ _]+", " ", match.group(1).lower())
        if key in fields:  # a repeated key can only come from inside a later value
            continue
        end = len(text) if key == "text" or i + 1 == len(matches) else matches[i + 1].start()
        fields[key] = text[match.end() : end].strip()
        if key == "text":
            break
    return fields


def parse_receipt(
    text: str | bytes,
    *,
    receipted_message_id: str | None = None,
    message_state: int | None = None,
) -> Receipt:
    """Parse a delivery receipt's text; TLV values, when given, override the text's.

    Bytes are read as Latin-1 (receipts are ASCII). Raises :class:`SmsRejected`
    (not_a_receipt) when neither the text nor the TLVs give an id and a state.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if len(text) > MAX_RECEIPT_CHARS:
        raise SmsRejected(SmsRejectReason.NOT_A_RECEIPT, "text too long for a receipt")
    fields = receipt_fields(text)
    message_id = receipted_message_id or fields.get("id", "")
    stat = fields.get("stat", "")
    if message_state is not None:
        state = state_from_message_state(message_state)
    elif stat:
        state = state_from_stat(stat)
    else:
        raise SmsRejected(SmsRejectReason.NOT_A_RECEIPT, "no stat field or message_state")
    if not message_id:
        raise SmsRejected(SmsRejectReason.NOT_A_RECEIPT, "no id field or receipted_message_id")
    return Receipt(
        message_id=message_id,
        state=state,
        stat=stat.upper(),
        submitted=_count(fields.get("sub")),
        delivered=_count(fields.get("dlvrd")),
        submit_date=parse_receipt_date(fields.get("submit date", "")),
        done_date=parse_receipt_date(fields.get("done date", "")),
        error=fields.get("err") or None,
        text=fields.get("text"),
    )


def message_id_keys(message_id: str) -> frozenset[str]:
    """Candidate match keys for an SMSC message id.

    The id lower-cased and stripped of leading zeros; if it is all hex digits, also its
    value written in decimal; if all decimal digits, also its value in lower-case hex. Two
    ids written differently by submit_sm_resp and a receipt (hex vs decimal, leading zeros)
    share a key. Sharing a key is evidence, not proof (``10`` decimal is ``a`` hex but
    ``10`` hex is ``16``): the caller should prefer an exact match and look up candidates
    only among its own outstanding ids. An empty id has no keys.
    """
    written = message_id.strip().lower()
    if not written:
        return frozenset()
    keys = {written.lstrip("0") or "0"}
    if len(written) <= MAX_NUMERIC_ID_CHARS:
        if _HEX.fullmatch(written):
            keys.add(str(int(written, 16)))
        if _DEC.fullmatch(written):
            keys.add(format(int(written), "x"))
    return frozenset(keys)
