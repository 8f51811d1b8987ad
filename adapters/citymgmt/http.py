"""HTTP side of the city-management adapter: its signed webhook, the two Open311 feeds we
serve, and the delivery queue for dispatchers.

Webhook and feeds are signed like ``POST /api/v1/events`` (X-Api-Key, X-Timestamp,
X-Signature over the exact body — empty for a GET) with the key ``citymgmt.api_key``
names; a webhook signature is single-use. The feeds also take a bearer token of an admin,
leader or dispatcher, so the console can read them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from adapters.citymgmt.adapter import CitymgmtAdapter
from adapters.citymgmt.feeds import case_request
from adapters.citymgmt.models import DELIVERY_STATES, CitymgmtDelivery
from adapters.citymgmt.outbound import update_of
from hub.api.auth import require_identity
from hub.api.directory_models import parse_query
from hub.api.errors import Handler
from hub.api.ingest import IngestError, authenticate, claim_signature
from hub.api.operations import Operation, Reply, RouteKey
from hub.errors import HubError, NotReadyError
from hub.state import HUB
from protocols.citymgmt import CitymgmtError, format_time, parse_requests, update_to_dict

PREFIX = "/api/v1/citymgmt"
QUEUE_ROLES = ("admin", "dispatcher")
FEED_ROLES = ("admin", "leader", "dispatcher")
FEED_WINDOW = timedelta(days=90)
"""Longest window a feed serves (GeoReport's default window)."""
FEED_LIMIT = 1000


def _adapter(request: web.Request) -> CitymgmtAdapter:
    hub = request.app[HUB]
    for adapter in hub.adapters:
        if isinstance(adapter, CitymgmtAdapter):
            return adapter
    raise NotReadyError("the city-management adapter is not enabled (citymgmt.enabled)")


async def _signed(request: web.Request, adapter: CitymgmtAdapter, body: bytes) -> None:
    """Check the system's signature (IngestError codes, counted)."""
    hub = request.app[HUB]
    try:
        key = authenticate(request, hub, body)
        if key.id != adapter.settings.api_key:
            raise IngestError(403, "citymgmt.wrong_key", f"key {key.id} is not the "
                              "city-management system's")  # fmt: skip
        if request.method == "POST":
            await claim_signature(hub, request, key.id)
    except IngestError as err:
        adapter.counters.rejected(err.code)
        raise


async def post_requests(request: web.Request) -> web.Response:
    """The system pushes one new or updated request, or an array of them."""
    adapter = _adapter(request)
    limit = request.app[HUB].settings.ingest.max_body_bytes
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        adapter.counters.rejected("request.too_large")
        raise HubError("request.too_large", "body over the size limit", 413)
    await _signed(request, adapter, body)
    try:
        parsed = parse_requests(body)
    except CitymgmtError as err:
        adapter.counters.rejected("citymgmt.invalid_request")
        raise IngestError(422, "citymgmt.invalid_request", str(err), [err.detail()]) from err
    results = []
    for item in parsed:
        applied = await adapter.applier.apply_request(item)
        result: dict[str, Any] = {
            "service_request_id": applied.service_request_id,
            "outcome": applied.outcome.value,
            "case_id": applied.case_id,
        }
        if applied.message:
            result["message"] = applied.message
        results.append(result)
    return web.json_response(results)


class FeedQuery(BaseModel):
    """The window of a feed (GeoReport ``start_date`` / ``end_date``)."""

    model_config = ConfigDict(extra="forbid")

    start_date: datetime | None = Field(None, description="From (ISO 8601 with offset).")
    end_date: datetime | None = Field(None, description="To (default: now).")


async def _feed_access(request: web.Request) -> tuple[CitymgmtAdapter, datetime, datetime]:
    adapter = _adapter(request)
    if "X-Api-Key" in request.headers:
        await _signed(request, adapter, b"")
    else:
        require_identity(request, *FEED_ROLES)
    query = parse_query(FeedQuery, dict(request.query))
    end = query.end_date or datetime.now().astimezone()
    start = query.start_date or end - FEED_WINDOW
    if start.tzinfo is None or end.tzinfo is None or not start <= end <= start + FEED_WINDOW:
        raise HubError("request.invalid_query", "start_date ≤ end_date, with offsets, at "
                       f"most {FEED_WINDOW.days} days apart", 400)  # fmt: skip
    return adapter, start, end


async def get_requests_feed(request: web.Request) -> web.Response:
    """Its requests (our cases it owns) changed in the window, with our status."""
    adapter, start, end = await _feed_access(request)
    cases = await adapter.feeds.cases_between(start, end, FEED_LIMIT)
    return web.json_response([case_request(case) for case in cases])


async def get_updates_feed(request: web.Request) -> web.Response:
    """Our request updates in the window (the same ones we push)."""
    adapter, start, end = await _feed_access(request)
    rows = await adapter.queue.since(start, end, FEED_LIMIT)
    return web.json_response([update_to_dict(update_of(row)) for row in rows])


class DeliveryQuery(BaseModel):
    """Filters of the delivery list."""

    model_config = ConfigDict(extra="forbid")

    state: str | None = Field(None, pattern="^(" + "|".join(DELIVERY_STATES) + ")$")
    case_id: str | None = Field(None, max_length=26)
    limit: int = Field(100, ge=1, le=1000)


class Delivery(BaseModel):
    """One queued status update and how its delivery goes."""

    update_id: str
    case_id: str
    seq: int = Field(description="The case's version at the change; delivered in this order.")
    service_request_id: str
    status: str
    external_status_code: str
    updated_datetime: str
    state: str = Field(description="queued, sending, delivered or dead.")
    attempts: int
    next_attempt_at: str | None
    last_error: str | None


def _delivery(row: CitymgmtDelivery) -> dict[str, Any]:
    return Delivery(
        update_id=row.id, case_id=row.case_id, seq=row.seq,
        service_request_id=row.service_request_id, status=row.status,
        external_status_code=row.external_status_code,
        updated_datetime=format_time(row.updated_datetime), state=row.state,
        attempts=row.attempts,
        next_attempt_at=format_time(row.next_attempt_at) if row.state == "queued" else None,
        last_error=row.last_error,
    ).model_dump()  # fmt: skip


async def get_deliveries(request: web.Request) -> web.Response:
    """The delivery queue, newest first."""
    require_identity(request, *QUEUE_ROLES)
    adapter = _adapter(request)
    query = parse_query(DeliveryQuery, dict(request.query))
    rows = await adapter.queue.rows(query.state, query.case_id, query.limit)
    return web.json_response([_delivery(row) for row in rows])


async def post_retry(request: web.Request) -> web.Response:
    """Put a dead-lettered update back in the queue."""
    require_identity(request, *QUEUE_ROLES)
    adapter = _adapter(request)
    row = await adapter.queue.retry(request.match_info["id"])
    if row is None:
        raise HubError("citymgmt.delivery_not_found", "no such delivery", 404)
    if row.state != "queued":
        raise HubError("citymgmt.not_dead", f"the delivery is {row.state}, not dead", 409)
    return web.json_response(_delivery(row))


_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
_SIGNED = ("auth.missing", "auth.unknown_key", "auth.bad_timestamp", "auth.stale_timestamp",
           "auth.bad_signature", "citymgmt.wrong_key")  # fmt: skip
_ARRAY = {"type": "array", "items": {"type": "object"}}
_FEED_NOTE = (
    " Signed by the city-management system (X-Api-Key, X-Timestamp, X-Signature over the"
    " empty body) or a bearer token of an admin, leader or dispatcher. At most"
    f" {FEED_LIMIT} records, oldest first; the window is at most {FEED_WINDOW.days} days"
    " (default: the last 90)."
)

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("POST", f"{PREFIX}/requests", post_requests, Operation(
        "City management pushes service requests", "citymgmt",
        "One Open311 GeoReport v2 service request, or an array of them (new or updated)."
        " Signed with the key `citymgmt.api_key` names; each signature is single-use."
        " Idempotent per (service_request_id, updated_datetime): the same update again is"
        " `unchanged`, an older one `stale` (both change nothing), a newer one updates the"
        " case (`case.updated`). Answers one result per request, in order.",
        "signature", body_schema={"oneOf": [{"type": "object"}, _ARRAY]},
        replies={200: Reply("Applied; one result per request (`outcome`: created, updated,"
                            " unchanged, stale or refused).", schema=_ARRAY)},
        errors=(*_SIGNED, "auth.replayed", "request.too_large", "citymgmt.invalid_request",
                "service.unavailable"),
    )),
    ("GET", f"{PREFIX}/requests.json", get_requests_feed, Operation(
        "Feed: city-management requests with our status", "citymgmt",
        "GeoReport `requests.json`: the cases the system owns whose last change falls in"
        " the window, with `status` from the state mapping." + _FEED_NOTE,
        "signature", query=FeedQuery, replies={200: Reply("The requests.", schema=_ARRAY)},
        errors=(*_SIGNED, *_AUTH, "request.invalid_query", "service.unavailable"),
    )),
    ("GET", f"{PREFIX}/servicerequestupdates.json", get_updates_feed, Operation(
        "Feed: our request updates", "citymgmt",
        "The status updates we owe the system (the same ones we push, same `update_id`),"
        " by `updated_datetime`." + _FEED_NOTE,
        "signature", query=FeedQuery, replies={200: Reply("The updates.", schema=_ARRAY)},
        errors=(*_SIGNED, *_AUTH, "request.invalid_query", "service.unavailable"),
    )),
    ("GET", f"{PREFIX}/deliveries", get_deliveries, Operation(
        "The city-management delivery queue", "citymgmt",
        "Status updates to push, newest first, filtered by `state` (queued, sending,"
        " delivered, dead) or `case_id`. Admins and dispatchers.",
        "bearer", query=DeliveryQuery,
        replies={200: Reply("The deliveries.", schema={"type": "array",
                            "items": {"$ref": "#/components/schemas/Delivery"}})},
        models=(Delivery,),
        errors=(*_AUTH, "request.invalid_query", "service.unavailable"),
    )),
    ("POST", f"{PREFIX}/deliveries/{{id}}/retry", post_retry, Operation(
        "Retry a dead-lettered update", "citymgmt",
        "Puts a `dead` delivery back in the queue with fresh attempts; the case's later"
        " updates, held behind it, follow once it is delivered. Admins and dispatchers.",
        "bearer", path_params={"id": "The update_id."},
        replies={200: Reply("Queued again.", Delivery)},
        errors=(*_AUTH, "citymgmt.delivery_not_found", "citymgmt.not_dead",
                "service.unavailable"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the city-management routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
