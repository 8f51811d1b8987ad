"""``GET /api/v1/openapi.json`` and ``GET /api/v1/asyncapi.json``, generated on request from
the router, the pydantic models and ``EVENT_TYPES`` so they cannot drift from the code.

The ``Operation`` of each route that hub/app.py registers itself (health, ingest, the
WebSocket, the console) lives here; the directory keeps its own next to its handlers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from adapters.citymgmt import http as citymgmt_http
from adapters.sms import callbacks as sms_callbacks
from hub.api import (
    camera_media,
    camera_ptz,
    camera_recordings,
    cameras,
    case_stats,
    cases,
    consultations,
    directory,
    notices,
    video_devices,
    videonet,
    workers,
)
from hub.api.asyncapi import WEBSOCKET_PATH, build_asyncapi
from hub.api.ingest import MAX_IDEMPOTENCY_KEY, IngestAccepted, IngestRequest
from hub.api.openapi import build_openapi
from hub.api.operations import Header, Operation, Reply, RouteKey
from hub.events import EVENT_TYPES, EventData

OPENAPI_PATH = "/api/v1/openapi.json"
ASYNCAPI_PATH = "/api/v1/asyncapi.json"


class Health(BaseModel):
    """``/healthz``: the process is alive."""

    status: str = Field(description="Always `ok`.")


class Readiness(BaseModel):
    """``/readyz``: each dependency's state."""

    status: str = Field(description="`ready` or `not ready`.")
    checks: dict[str, str] = Field(
        description="database, bus, outbox_relay, gateway, adapter:<name> → `ok` or a problem."
    )


def _external_events() -> list[type[EventData]]:
    return [cls for cls in EVENT_TYPES.values() if cls.external]


def ingest_body_schema() -> dict[str, Any]:
    """IngestRequest, with ``data`` tied to ``type``: one variant per external event type."""
    ref = "#/components/schemas/{}".format
    return {
        "allOf": [{"$ref": ref(IngestRequest.__name__)}],
        "oneOf": [
            {
                "title": cls.type,
                "type": "object",
                "required": ["type", "data"],
                "properties": {
                    "type": {"const": cls.type},
                    "data": {"$ref": ref(cls.__name__)},
                },
            }
            for cls in _external_events()
        ],
    }


_JSON_DOC = Reply("The document.", schema={"type": "object"})

CORE_OPERATIONS: dict[RouteKey, Operation] = {
    ("GET", "/healthz"): Operation(
        "Liveness", "health", "200 while the event loop answers.",
        replies={200: Reply("Alive.", Health)},
    ),
    ("GET", "/readyz"): Operation(
        "Readiness", "health",
        "200 when the database, the bus listener, the outbox relay, the gateway and every "
        "adapter are working; 503 with the failing parts otherwise.",
        replies={200: Reply("Ready.", Readiness), 503: Reply("Not ready.", Readiness)},
    ),
    ("GET", "/metrics"): Operation(
        "Prometheus metrics", "health",
        "Text exposition, including `hub_ingest_rejected_total{code=...}` by error code.",
        replies={200: Reply(
            "Metrics.", schema={"type": "string"}, content_type="text/plain; version=0.0.4"
        )},
    ),
    ("POST", "/api/v1/events"): Operation(
        "Push an event from an external system", "ingest",
        "Signed with the key's secret (see the security schemes). The event is validated "
        "against its type's schema (external types only), must concern an existing org node "
        "inside the key's subtree, and is committed to the outbox before the 202, so nothing "
        "accepted is lost. With `Idempotency-Key`, a retry (signed again) with the same body "
        "gets the first answer and `Idempotent-Replayed: true`; only one event is published. "
        "Rejections are counted in `hub_ingest_rejected_total{code}`.",
        "signature",
        body_schema=ingest_body_schema(),
        models=(IngestRequest, *_external_events()),
        headers=(
            Header("Idempotency-Key",
                   f"1–{MAX_IDEMPOTENCY_KEY} characters chosen by the client; retries of one "
                   "logical request reuse it.",
                   schema={"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY}),
        ),
        replies={202: Reply(
            "Accepted and committed.", IngestAccepted,
            headers={"Idempotent-Replayed": "`true` when this is the stored first answer."},
        )},
        errors=(
            "auth.missing", "auth.unknown_key", "auth.bad_timestamp", "auth.stale_timestamp",
            "auth.bad_signature", "auth.replayed", "auth.org_forbidden",
            "request.invalid_json", "request.too_large", "request.bad_idempotency_key",
            "idempotency.conflict", "request.conflict", "event.invalid", "event.unknown_org",
        ),
    ),
    ("GET", WEBSOCKET_PATH): Operation(
        "WebSocket upgrade", "websocket",
        "Upgrades to a WebSocket speaking the Centrifugo bidirectional client protocol (JSON); "
        "authenticate with a JWT in the connect command. Channels and messages are described "
        f"by the AsyncAPI document at {ASYNCAPI_PATH}.",
        headers=(
            Header("Upgrade", "`websocket`.", required=True),
            Header("Connection", "`Upgrade`.", required=True),
            Header("Sec-WebSocket-Key", "RFC 6455 handshake key.", required=True),
            Header("Sec-WebSocket-Version", "`13`.", required=True),
        ),
        replies={
            101: Reply("Switching protocols: the WebSocket is open."),
            400: Reply("Not a WebSocket handshake.", schema={"type": "string"},
                       content_type="text/plain"),
            503: Reply("Shutting down or at the connection limit; reconnect later.",
                       schema={"type": "string"}, content_type="text/plain"),
        },
        extra={"x-asyncapi": ASYNCAPI_PATH},
    ),
    ("GET", OPENAPI_PATH): Operation(
        "This OpenAPI document", "docs", "Generated from the registered routes.",
        replies={200: _JSON_DOC},
    ),
    ("GET", ASYNCAPI_PATH): Operation(
        "The AsyncAPI document", "docs",
        "The WebSocket server, channels and one message per event type.",
        replies={200: _JSON_DOC},
    ),
    ("GET", "/"): Operation(
        "The command-centre console", "console",
        replies={200: Reply("The console page.", schema={"type": "string"},
                            content_type="text/html")},
    ),
    ("GET", "/static/{filename}"): Operation(
        "Console assets", "console", "Static files of the console.",
        path_params={"filename": "Path of the asset under web/."},
        replies={200: Reply("The file.", schema={"type": "string", "format": "binary"},
                            content_type="application/octet-stream"),
                 404: Reply("No such file.")},
    ),
}  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {
    **CORE_OPERATIONS,
    **directory.OPERATIONS,
    **workers.OPERATIONS,
    **notices.OPERATIONS,
    **cases.OPERATIONS,
    **case_stats.OPERATIONS,
    **sms_callbacks.OPERATIONS,
    **citymgmt_http.OPERATIONS,
    **cameras.OPERATIONS,
    **camera_media.OPERATIONS,
    **camera_recordings.OPERATIONS,
    **camera_ptz.OPERATIONS,
    **consultations.OPERATIONS,
    **video_devices.OPERATIONS,
    **videonet.OPERATIONS,
}


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every registered route."""
    return web.json_response(build_openapi(request.app, OPERATIONS))


async def asyncapi(request: web.Request) -> web.Response:
    """The AsyncAPI 3.0 document of the WebSocket side."""
    return web.json_response(build_asyncapi(request.host))


def add_routes(app: web.Application) -> None:
    """Register the document routes."""
    app.router.add_get(OPENAPI_PATH, openapi)
    app.router.add_get(ASYNCAPI_PATH, asyncapi)
