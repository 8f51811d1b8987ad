"""The CloudEvents-shaped event envelope that crosses the bus, and org-path helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from ulid import ULID

SPEC_VERSION = "1.0"
ORG_SEGMENT = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ORG_MAX_DEPTH = 8


class EnvelopeError(ValueError):
    """An envelope or org path that does not validate."""


def validate_org_path(path: str) -> str:
    """Return ``path`` if it is a well-formed dotted org path, else raise EnvelopeError."""
    if not isinstance(path, str) or not path:
        raise EnvelopeError("org path must be a non-empty string")
    segments = path.split(".")
    if len(segments) > ORG_MAX_DEPTH:
        raise EnvelopeError(f"org path deeper than {ORG_MAX_DEPTH} levels")
    for segment in segments:
        if not ORG_SEGMENT.fullmatch(segment):
            raise EnvelopeError(f"bad org path segment {segment!r}")
    return path


def org_ancestors(path: str) -> list[str]:
    """The node itself and each ancestor, nearest first: ``a.b.c`` → ``[a.b.c, a.b, a]``."""
    segments = path.split(".")
    return [".".join(segments[:i]) for i in range(len(segments), 0, -1)]


def org_contains(ancestor: str, path: str) -> bool:
    """True when ``path`` is ``ancestor`` or lies in its subtree (segment-wise prefix)."""
    return path == ancestor or path.startswith(ancestor + ".")


def new_event_id() -> str:
    """A new ULID as a string: sortable by time, unique across processes."""
    return str(ULID())


def utc_now_iso() -> str:
    """Current UTC time in RFC 3339 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event: CloudEvents 1.0 attributes plus the org node it is about."""

    type: str
    source: str
    org: str
    data: dict[str, Any]
    subject: str | None = None
    id: str = field(default_factory=new_event_id)
    time: str = field(default_factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object form."""
        out: dict[str, Any] = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "time": self.time,
            "org": self.org,
            "data": self.data,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        return out

    def encode(self) -> bytes:
        """JSON bytes, built once and reused for every channel and subscriber."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: Any) -> Envelope:
        """Parse and check the envelope attributes (not the data schema)."""
        if not isinstance(raw, dict):
            raise EnvelopeError("envelope must be a JSON object")
        if raw.get("specversion") != SPEC_VERSION:
            raise EnvelopeError("specversion must be '1.0'")
        try:
            env = cls(
                id=_str(raw, "id"),
                type=_str(raw, "type"),
                source=_str(raw, "source"),
                time=_str(raw, "time"),
                org=validate_org_path(_str(raw, "org")),
                subject=raw.get("subject"),
                data=raw.get("data"),  # type: ignore[arg-type]
            )
        except KeyError as err:
            raise EnvelopeError(f"missing attribute {err.args[0]!r}") from err
        if not isinstance(env.data, dict):
            raise EnvelopeError("data must be a JSON object")
        if env.subject is not None and not isinstance(env.subject, str):
            raise EnvelopeError("subject must be a string")
        return env

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """Parse JSON bytes into an envelope."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise EnvelopeError(f"not JSON: {err}") from err
        return cls.from_dict(obj)


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"{key} must be a non-empty string")
    return value
