"""Request updates (FixMyStreet's Open311 extension) and the one table that maps our case
states to the city-management system's statuses.

An update says what happened to a request: ``update_id`` (ours, stable per update, so the
receiver can drop a re-sent one), ``service_request_id``, ``status``, ``updated_datetime``,
``description``, ``media_url`` and ``external_status_code`` (our own state, for systems
that want the finer detail).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from protocols.citymgmt.georeport import (
    MAX_BATCH,
    MAX_CODE,
    MAX_DESCRIPTION,
    MAX_ID,
    MAX_URL,
    CitymgmtError,
    format_time,
    parse_time,
    text,
)

STATUSES = frozenset({
    "open", "investigating", "action_scheduled", "in_progress", "fixed", "closed",
    "duplicate", "not_councils_responsibility", "no_further_action", "internal_referral",
    "unable_to_fix",
})  # fmt: skip
"""FixMyStreet's Open311 statuses (GeoReport v2 itself knows only open and closed)."""

STATUS_BY_STATE: dict[str, str] = {
    "reported": "open",                  # 上报: received, not yet looked at
    "registered": "investigating",       # 立案: accepted, being assessed
    "rejected": "no_further_action",     # 不予立案: we will not act on it
    "assigned": "action_scheduled",      # 指派: someone is assigned to act
    "handling": "in_progress",           # 处置: being handled
    "fed_back": "fixed",                 # 反馈: the handler reports it done
    "closed": "closed",                  # 核查结案: verified and closed
    "evaluated": "closed",               # 评价: closed and rated
}  # fmt: skip
"""Our case state → their status: the one place this mapping lives."""


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    """One update of a service request."""

    update_id: str
    service_request_id: str
    status: str
    updated_datetime: datetime
    description: str = ""
    media_url: str | None = None
    external_status_code: str | None = None


def status_for(state: str) -> str:
    """Their status for one of our case states; ValueError for a state we do not know."""
    try:
        return STATUS_BY_STATE[state]
    except KeyError:
        raise ValueError(f"no city-management status for case state {state!r}") from None


def parse_update(raw: object) -> RequestUpdate:
    """One update object → RequestUpdate, or CitymgmtError."""
    if not isinstance(raw, Mapping):
        raise CitymgmtError("update", "expected a JSON object")
    status = text(raw, "status", MAX_CODE, required=True).lower()
    if status not in STATUSES:
        raise CitymgmtError("status", f"unknown status {status!r}")
    return RequestUpdate(
        update_id=text(raw, "update_id", MAX_ID, required=True),
        service_request_id=text(raw, "service_request_id", MAX_ID, required=True),
        status=status,
        updated_datetime=parse_time(raw.get("updated_datetime"), "updated_datetime"),
        description=text(raw, "description", MAX_DESCRIPTION),
        media_url=text(raw, "media_url", MAX_URL) or None,
        external_status_code=text(raw, "external_status_code", MAX_CODE) or None,
    )


def parse_updates(body: bytes | object) -> list[RequestUpdate]:
    """A ``servicerequestupdates.json`` page (an array) or one update object."""
    if isinstance(body, bytes | bytearray):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise CitymgmtError("body", "not valid JSON") from err
    items: Sequence[object] = body if isinstance(body, list) else [body]
    if len(items) > MAX_BATCH:
        raise CitymgmtError("update", f"more than {MAX_BATCH} updates in one batch")
    out = []
    for index, item in enumerate(items):
        try:
            out.append(parse_update(item))
        except CitymgmtError as err:
            raise CitymgmtError(f"[{index}].{err.field}", err.message) from err
    return out


def update_to_dict(update: RequestUpdate) -> dict[str, Any]:
    """A RequestUpdate as JSON (``None`` fields left out)."""
    out: dict[str, Any] = {
        "update_id": update.update_id,
        "service_request_id": update.service_request_id,
        "status": update.status,
        "updated_datetime": format_time(update.updated_datetime),
        "description": update.description,
    }
    if update.media_url is not None:
        out["media_url"] = update.media_url
    if update.external_status_code is not None:
        out["external_status_code"] = update.external_status_code
    return out


def encode_update(update: RequestUpdate) -> bytes:
    """The body of one pushed update."""
    return orjson.dumps(update_to_dict(update))
