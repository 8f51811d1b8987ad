"""SIP status codes: classes and default reason phrases (RFC 3261 21)."""

from __future__ import annotations

STATUS_MIN = 100
STATUS_MAX = 699
PROVISIONAL_MAX = 199
SUCCESS_MAX = 299
STATUS_CLASS = 100

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "Version Not Supported",
}
_CLASS_REASONS = {
    1: "Provisional",
    2: "Success",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
    6: "Global Failure",
}


def default_reason(status: int) -> str:
    """The usual reason phrase for a status code."""
    return REASONS.get(status) or _CLASS_REASONS.get(status // STATUS_CLASS, "Unknown")


def is_provisional(status: int) -> bool:
    """True for 1xx."""
    return status <= PROVISIONAL_MAX


def is_success(status: int) -> bool:
    """True for 2xx."""
    return PROVISIONAL_MAX < status <= SUCCESS_MAX
