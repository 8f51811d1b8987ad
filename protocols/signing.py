"""HMAC-SHA256 request signing for external systems: the signature covers the timestamp
and the exact body bytes: ``hex(HMAC(secret, "<timestamp>." + body))``."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Signature`` header value for a request."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Constant-time check of a signature (with or without the ``sha256=`` prefix)."""
    expected = sign(secret, timestamp, body)
    given = signature if signature.startswith(SIGNATURE_PREFIX) else SIGNATURE_PREFIX + signature
    return hmac.compare_digest(expected.encode(), given.encode())
