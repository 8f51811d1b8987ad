"""Open311 GeoReport v2 service requests as the city-management system sends them.

A request is a JSON object (``requests.json`` is an array of them); the fields we read are
those of the GeoReport v2 specification. Times are W3C / ISO 8601 with a UTC offset;
a time without one is refused (we cannot tell which zone the sender meant).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_ID = 128
MAX_CODE = 64
MAX_NAME = 100
MAX_DESCRIPTION = 8000
MAX_ADDRESS = 200
MAX_URL = 1000
MAX_BATCH = 1000
"""Most requests accepted in one push or one feed page."""
EXTRA_FIELDS = ("status_notes", "agency_responsible", "service_notice", "zipcode",
                "address_id", "expected_datetime")  # fmt: skip
"""Optional GeoReport fields kept as they are (shown, not interpreted)."""


class CitymgmtError(ValueError):
    """Input that is not valid GeoReport v2: ``field`` says where, the message says what."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def detail(self) -> dict[str, str]:
        """The problem as an API error detail (``loc``, ``msg``)."""
        return {"loc": self.field, "msg": self.message}


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """One GeoReport v2 service request."""

    service_request_id: str
    status: str
    service_code: str
    service_name: str = ""
    description: str = ""
    lat: float | None = None
    long: float | None = None
    address: str | None = None
    requested_datetime: datetime | None = None
    updated_datetime: datetime | None = None
    media_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> datetime | None:
        """The time that orders updates of this request: updated, else requested."""
        return self.updated_datetime or self.requested_datetime


def format_time(value: datetime) -> str:
    """A time as GeoReport writes it: ISO 8601 with its UTC offset, whole seconds or more."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def parse_time(value: object, name: str) -> datetime:
    """An ISO 8601 time with a UTC offset (``Z`` accepted), returned in UTC."""
    if not isinstance(value, str) or not value:
        raise CitymgmtError(name, "expected an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as err:
        raise CitymgmtError(name, f"not an ISO 8601 time: {value[:40]!r}") from err
    if parsed.tzinfo is None:
        raise CitymgmtError(name, "the time needs a UTC offset (e.g. +08:00)")
    return parsed.astimezone(UTC)


def text(raw: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    """A string field (numbers are accepted as ids often are), bounded by ``limit``."""
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise CitymgmtError(name, "required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CitymgmtError(name, "expected a string")
    out = str(value).strip()
    if len(out) > limit:
        raise CitymgmtError(name, f"longer than {limit} characters")
    if required and not out:
        raise CitymgmtError(name, "required")
    return out


def _coordinate(raw: Mapping[str, Any], name: str, bound: float) -> float | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise CitymgmtError(name, "expected a number") from err
    if isinstance(value, bool) or not math.isfinite(number) or abs(number) > bound:
        raise CitymgmtError(name, f"out of range (±{bound:g})")
    return number


def parse_request(raw: object) -> ServiceRequest:
    """One service request object → ServiceRequest, or CitymgmtError."""
    if not isinstance(raw, Mapping):
        raise CitymgmtError("request", "expected a JSON object")
    lat = _coordinate(raw, "lat", 90.0)
    long = _coordinate(raw, "long", 180.0)
    if (lat is None) != (long is None):
        raise CitymgmtError("lat" if lat is None else "long", "lat and long come together")
    requested = raw.get("requested_datetime")
    updated = raw.get("updated_datetime")
    extra = {k: text(raw, k, MAX_DESCRIPTION) for k in EXTRA_FIELDS if raw.get(k)}
    return ServiceRequest(
        service_request_id=text(raw, "service_request_id", MAX_ID, required=True),
        status=text(raw, "status", MAX_CODE) or "open",
        service_code=text(raw, "service_code", MAX_CODE, required=True),
        service_name=text(raw, "service_name", MAX_NAME),
        description=text(raw, "description", MAX_DESCRIPTION),
        lat=lat,
        long=long,
        address=text(raw, "address", MAX_ADDRESS) or None,
        requested_datetime=parse_time(requested, "requested_datetime") if requested else None,
        updated_datetime=parse_time(updated, "updated_datetime") if updated else None,
        media_url=text(raw, "media_url", MAX_URL) or None,
        extra=extra,
    )


def parse_requests(body: bytes | object) -> list[ServiceRequest]:
    """A push body or a ``requests.json`` page: one request object or an array of them.
    Errors name the index of the offending request (``[3].lat``)."""
    raw = _json(body) if isinstance(body, bytes | bytearray) else body
    items: Sequence[object] = raw if isinstance(raw, list) else [raw]
    if len(items) > MAX_BATCH:
        raise CitymgmtError("request", f"more than {MAX_BATCH} requests in one batch")
    out = []
    for index, item in enumerate(items):
        try:
            out.append(parse_request(item))
        except CitymgmtError as err:
            if not isinstance(raw, list):
                raise
            raise CitymgmtError(f"[{index}].{err.field}", err.message) from err
    return out


def _json(body: bytes | bytearray) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise CitymgmtError("body", "not valid JSON") from err


def request_to_dict(request: ServiceRequest) -> dict[str, Any]:
    """A ServiceRequest as GeoReport JSON (``None`` fields left out)."""
    out: dict[str, Any] = {
        "service_request_id": request.service_request_id,
        "status": request.status,
        "service_code": request.service_code,
        "service_name": request.service_name,
        "description": request.description,
    }
    optional: dict[str, Any] = {
        "lat": request.lat,
        "long": request.long,
        "address": request.address,
        "media_url": request.media_url,
        "requested_datetime": (
            format_time(request.requested_datetime) if request.requested_datetime else None
        ),
        "updated_datetime": (
            format_time(request.updated_datetime) if request.updated_datetime else None
        ),
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    out.update(request.extra)
    return out
