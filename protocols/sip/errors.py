"""The one error every SIP parser in this package raises."""

from __future__ import annotations

STATUS_BAD_REQUEST = 400
STATUS_TOO_LARGE = 413
STATUS_UNSUPPORTED_SCHEME = 416
STATUS_VERSION = 505


class SipParseError(ValueError):
    """Input that is not valid SIP; ``status`` is the response code to answer with."""

    def __init__(self, reason: str, status: int = STATUS_BAD_REQUEST) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason} (answer with SIP {self.status})"
