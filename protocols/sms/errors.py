"""The rejection raised by the SMS text, receipt and Jasmin parsers, with its reason."""

from __future__ import annotations

from enum import StrEnum


class SmsRejectReason(StrEnum):
    """Why SMS content or a gateway answer was refused: a metrics label, so the set is fixed."""

    TOO_MANY_SEGMENTS = "too_many_segments"
    UNENCODABLE = "unencodable"
    BAD_ARGUMENT = "bad_argument"
    UNSUPPORTED_CODING = "unsupported_coding"
    BAD_TEXT = "bad_text"
    BAD_UDH = "bad_udh"
    NOT_A_RECEIPT = "not_a_receipt"
    MISSING_FIELD = "missing_field"
    BAD_VALUE = "bad_value"
    BAD_RESPONSE = "bad_response"


class SmsRejected(ValueError):
    """SMS content, a receipt or a gateway message that fails validation."""

    def __init__(self, reason: SmsRejectReason, detail: str, *, field: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field
