"""Hub errors: one exception type carrying a machine-readable code and an HTTP status."""

from __future__ import annotations


class HubError(Exception):
    """An error with a documented ``code`` (e.g. ``auth.bad_signature``) and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class NotReadyError(HubError):
    """A backend is not reachable right now; the caller may retry."""

    def __init__(self, message: str) -> None:
        super().__init__("service.unavailable", message, 503)
