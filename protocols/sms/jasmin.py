"""Jasmin SMS gateway HTTP API shapes: the ``/send`` request and answer, DLR and MO callbacks.

Pure: the adapter does the HTTP. Callback parameters arrive as a mapping (query string or
form); the endpoint must answer 200 with exactly :data:`ACK_BODY`, or Jasmin sends the
callback again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from protocols.sms.encoding import DataCoding, decode_user_data, segment_count
from protocols.sms.errors import SmsRejected, SmsRejectReason
from protocols.sms.receipts import DeliveryState, parse_receipt_date, state_from_stat

ACK_BODY = "ACK/Jasmin"
"""The body a DLR or MO callback endpoint must answer with (status 200)."""
SEND_PATH = "/send"
MAX_CREDENTIAL_CHARS = 30
"""Jasmin's limit on username and password."""
MAX_PRIORITY = 3
MAX_FIELD_CHARS = 512
"""Longest callback value accepted (Jasmin's are ids, dates, short texts)."""
MAX_RESPONSE_CHARS = 4096
"""A longer /send answer is not Jasmin's (it may be a proxy's error page)."""
MAX_CONTENT_CHARS = 10 * 1024
"""Longest MO content accepted (a reassembled long message)."""
DEFAULT_MAX_SEGMENTS = 10
HTTP_OK = 200
HTTP_SERVER_ERROR = 500
ESME_ROK = "ESME_ROK"
ESME_PREFIX = "ESME_"
MO_VALIDITY_FORMAT = "%Y-%m-%d %H:%M:%S"

_MSISDN = re.compile(r"\+?[0-9]{3,20}")
_SENDER = re.compile(r"[\w +.-]{1,20}")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,9}")
_CONNECTOR = re.compile(r"[\w.-]{1,64}")
_STATUS = re.compile(r"[A-Za-z0-9_]{1,32}")
_SUCCESS = re.compile(r'\s*Success\s+"([^"]*)"\s*')
_ERROR = re.compile(r'\s*Error\s+"(.*)"\s*', re.S)
_ASCII_SAME_AS_GSM = frozenset(
    "\n\r !\"#%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
"""Characters whose ASCII code equals their GSM 03.38 code, so ``content`` with coding 0
means the same text whatever Jasmin or the SMSC does with the bytes."""


class DlrLevel(IntEnum):
    """Which receipts Jasmin forwards: SMSC acceptance, handset delivery, or both."""

    SMSC = 1
    TERMINAL = 2
    ALL = 3


def _bad(reason: SmsRejectReason, detail: str, field: str | None = None) -> SmsRejected:
    return SmsRejected(reason, detail, field=field)


def build_send_params(
    *,
    username: str,
    password: str,
    to: str,
    text: str,
    sender: str | None = None,
    dlr_url: str | None = None,
    dlr_level: DlrLevel = DlrLevel.ALL,
    dlr_method: str = "POST",
    priority: int | None = None,
    max_segments: int = DEFAULT_MAX_SEGMENTS,
) -> dict[str, str]:
    """The ``/send`` parameters (query string or form) for one text to one recipient.

    Text made only of characters that mean the same in ASCII and GSM 03.38 goes as
    ``content`` with coding 0; anything else (including ``@ $ _ [ ] { }`` and CJK) goes as
    ``hex-content`` in UTF-16BE with coding 8. Jasmin splits long texts itself; texts over
    ``max_segments`` are refused. Raises :class:`SmsRejected` (bad_argument,
    too_many_segments, unencodable).
    """
    if not 0 < len(username) <= MAX_CREDENTIAL_CHARS or len(password) > MAX_CREDENTIAL_CHARS:
        raise _bad(SmsRejectReason.BAD_ARGUMENT, "username 1-30, password up to 30 characters")
    if not _MSISDN.fullmatch(to):
        raise _bad(SmsRejectReason.BAD_ARGUMENT, "to must be an MSISDN", "to")
    if sender is not None and not _SENDER.fullmatch(sender):
        raise _bad(SmsRejectReason.BAD_ARGUMENT, "sender must be 1-20 plain characters", "from")
    if priority is not None and not 0 <= priority <= MAX_PRIORITY:
        raise _bad(SmsRejectReason.BAD_ARGUMENT, "priority must lie in [0, 3]", "priority")
    if segment_count(text) > max_segments:
        raise _bad(SmsRejectReason.TOO_MANY_SEGMENTS, f"more than {max_segments} segments")
    params = {"username": username, "password": password, "to": to}
    if sender is not None:
        params["from"] = sender
    if all(ch in _ASCII_SAME_AS_GSM for ch in text):
        params["coding"] = str(DataCoding.GSM7.value)
        params["content"] = text
    else:
        params["coding"] = str(DataCoding.UCS2.value)
        params["hex-content"] = text.encode("utf-16-be").hex()
    if priority is not None:
        params["priority"] = str(priority)
    if dlr_url is not None:
        if not dlr_url.startswith(("http://", "https://")):
            raise _bad(SmsRejectReason.BAD_ARGUMENT, "dlr_url must be http(s)", "dlr-url")
        if dlr_method not in ("GET", "POST"):
            raise _bad(SmsRejectReason.BAD_ARGUMENT, "dlr_method is GET or POST", "dlr-method")
        params.update(
            {
                "dlr": "yes",
                "dlr-url": dlr_url,
                "dlr-level": str(int(dlr_level)),
                "dlr-method": dlr_method,
            }
        )
    return params


@dataclass(frozen=True, slots=True)
class SendAccepted:
    """Jasmin queued the message under ``message_id``."""

    message_id: str


@dataclass(frozen=True, slots=True)
class SendRefused:
    """Jasmin (or something in front of it) refused the message."""

    http_status: int
    message: str

    @property
    def retryable(self) -> bool:
        """True for server-side failures; 4xx refusals (validation, auth, route) are not."""
        return self.http_status >= HTTP_SERVER_ERROR


def parse_send_response(http_status: int, body: str | bytes) -> SendAccepted | SendRefused:
    """Read the ``/send`` answer: ``Success "<id>"`` or ``Error "<why>"``.

    A 5xx without Jasmin's shape (a proxy's error page) is a retryable refusal. Raises
    :class:`SmsRejected` (bad_response) for anything else that is not Jasmin's answer.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if len(body) > MAX_RESPONSE_CHARS:
        body = ""  # not Jasmin's answer: judged by the status alone below
    if success := _SUCCESS.fullmatch(body):
        if http_status != HTTP_OK or not _MESSAGE_ID.fullmatch(success.group(1)):
            raise _bad(SmsRejectReason.BAD_RESPONSE, f"bad Success answer (HTTP {http_status})")
        return SendAccepted(success.group(1))
    if error := _ERROR.fullmatch(body):
        if http_status == HTTP_OK:
            raise _bad(SmsRejectReason.BAD_RESPONSE, "Error answer with HTTP 200")
        return SendRefused(http_status, error.group(1))
    if http_status >= HTTP_SERVER_ERROR:
        return SendRefused(http_status, f"HTTP {http_status}")
    raise _bad(SmsRejectReason.BAD_RESPONSE, f"not a Jasmin answer (HTTP {http_status})")


def _field(params: Mapping[str, str], key: str, *, required: bool) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise _bad(SmsRejectReason.MISSING_FIELD, f"{key} is required", key)
        return None
    if len(value) > MAX_FIELD_CHARS:
        raise _bad(SmsRejectReason.BAD_VALUE, f"{key} too long", key)
    return value


def _matching(params: Mapping[str, str], key: str, pattern: re.Pattern[str]) -> str:
    value = _field(params, key, required=True)
    assert value is not None  # required
    if not pattern.fullmatch(value):
        raise _bad(SmsRejectReason.BAD_VALUE, f"{key} has an unexpected form", key)
    return value


def _small_int(params: Mapping[str, str], key: str, lo: int, hi: int) -> int | None:
    value = _field(params, key, required=False)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or not lo <= int(value) <= hi:
        raise _bad(SmsRejectReason.BAD_VALUE, f"{key} must be an integer in [{lo}, {hi}]", key)
    return int(value)


def _count(params: Mapping[str, str], key: str) -> int | None:
    value = _field(params, key, required=False)
    return int(value) if value is not None and _DIGITS.fullmatch(value) else None


@dataclass(frozen=True, slots=True)
class JasminDlr:
    """A delivery report callback; level-2/3 fields are None in a level-1 report."""

    message_id: str
    level: DlrLevel
    message_status: str
    state: DeliveryState
    smsc_message_id: str | None = None
    connector: str | None = None
    submitted: int | None = None
    delivered: int | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    error: str | None = None
    text: str | None = None


def dlr_state(message_status: str) -> DeliveryState:
    """Our state for a DLR's ``message_status``: ESME_ROK is sent (the SMSC took it), any
    other ``ESME_*`` failed; a receipt word (DELIVRD, UNDELIV, …) maps as in receipts."""
    status = message_status.upper()
    if status.startswith(ESME_PREFIX):
        return DeliveryState.SENT if status == ESME_ROK else DeliveryState.FAILED
    return state_from_stat(status)


def parse_dlr(params: Mapping[str, str]) -> JasminDlr:
    """Parse a DLR callback's parameters; raises :class:`SmsRejected` (missing_field,
    bad_value) for a request that is not a Jasmin DLR."""
    message_id = _matching(params, "id", _MESSAGE_ID)
    status = _matching(params, "message_status", _STATUS)
    level = _small_int(params, "level", DlrLevel.SMSC, DlrLevel.ALL)
    if level is None:
        raise _bad(SmsRejectReason.MISSING_FIELD, "level is required", "level")
    return JasminDlr(
        message_id=message_id,
        level=DlrLevel(level),
        message_status=status,
        state=dlr_state(status),
        smsc_message_id=_field(params, "id_smsc", required=False),
        connector=_field(params, "connector", required=False),
        submitted=_count(params, "sub"),
        delivered=_count(params, "dlvrd"),
        submit_date=parse_receipt_date(params.get("subdate", "")),
        done_date=parse_receipt_date(params.get("donedate", "")),
        error=_field(params, "err", required=False),
        text=_field(params, "text", required=False),
    )


@dataclass(frozen=True, slots=True)
class JasminMo:
    """An inbound (mobile-originated) message callback; Jasmin has joined long texts."""

    message_id: str
    sender: str
    recipient: str
    connector: str
    text: str
    coding: int = 0
    priority: int | None = None
    validity: datetime | None = None
    binary: bytes | None = None


def parse_mo(params: Mapping[str, str]) -> JasminMo:
    """Parse an MO callback's parameters.

    For UCS-2 (coding 8) the text comes from ``binary`` (hex of the raw octets) when
    present, since ``content`` may have been mangled on the way. Raises
    :class:`SmsRejected` (missing_field, bad_value, bad_text).
    """
    message_id = _matching(params, "id", _MESSAGE_ID)
    sender = _matching(params, "from", _SENDER)
    recipient = _matching(params, "to", _SENDER)
    connector = _matching(params, "origin-connector", _CONNECTOR)
    content = params.get("content")
    if content is None:
        raise _bad(SmsRejectReason.MISSING_FIELD, "content is required", "content")
    if len(content) > MAX_CONTENT_CHARS:
        raise _bad(SmsRejectReason.BAD_VALUE, "content too long", "content")
    coding = _small_int(params, "coding", 0, 0xFF) or 0
    binary: bytes | None = None
    if raw := params.get("binary"):
        if len(raw) > 2 * MAX_CONTENT_CHARS:
            raise _bad(SmsRejectReason.BAD_VALUE, "binary too long", "binary")
        try:
            binary = bytes.fromhex(raw)
        except ValueError:
            raise _bad(SmsRejectReason.BAD_VALUE, "binary is not hex", "binary") from None
    text = content
    if coding == DataCoding.UCS2 and binary is not None:
        text = decode_user_data(binary, DataCoding.UCS2)
    return JasminMo(
        message_id=message_id,
        sender=sender,
        recipient=recipient,
        connector=connector,
        text=text,
        coding=coding,
        priority=_small_int(params, "priority", 0, MAX_PRIORITY),
        validity=_validity(params.get("validity")),
        binary=binary,
    )


def _validity(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), MO_VALIDITY_FORMAT)
    except ValueError:
        return None
