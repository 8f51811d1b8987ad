"""``POST /api/v1/events``: external systems push events.

Authentication: ``X-Api-Key`` (key id), ``X-Timestamp`` (Unix seconds, within the
signature window) and ``X-Signature`` (protocols/signing.py). A signature is single-use:
a second request with the same signature is a replay. ``Idempotency-Key`` makes retries
(re-signed) return the first answer. The event is committed to the outbox before the
202 answer, so nothing accepted is lost.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import ApiKey
from hub.db.models import IdempotencyRecord, OrgNode, SeenSignature, utcnow
from hub.db.outbox import add_event
from hub.errors import HubError
from hub.events import EventValidationError, parse_event_data
from hub.publisher import channels_for
from hub.state import HUB, Hub
from protocols import signing
from protocols.envelope import org_contains

MAX_IDEMPOTENCY_KEY = 128


class IngestRequest(BaseModel):
    """The body of ``POST /api/v1/events``."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=64, description="An event type external systems may push.")
    org: str = Field(max_length=128, description="Org node the event is about.")
    subject: str | None = Field(None, max_length=128, description="What it is about.")
    data: dict[str, Any] = Field(description="Event data, per the type's schema.")


class IngestAccepted(BaseModel):
    """The 202 answer."""

    id: str = Field(description="Event id (ULID); consumers deduplicate by it.")
    status: str = "accepted"
    channels: list[str]


class IngestError(HubError):
    """An ingest rejection; counted by code in metrics."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(code, message, status)
        self.details = details


async def post_event(request: web.Request) -> web.Response:
    """Accept one external event."""
    hub = request.app[HUB]
    try:
        return await _accept(request, hub)
    except IngestError as err:
        hub.metrics.reject(err.code)
        raise


async def _accept(request: web.Request, hub: Hub) -> web.Response:
    settings = hub.settings.ingest
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise IngestError(413, "request.too_large", "body over the size limit")
    body = await request.content.read(settings.max_body_bytes + 1)
    if len(body) > settings.max_body_bytes:
        raise IngestError(413, "request.too_large", "body over the size limit")
    key = authenticate(request, hub, body)
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise IngestError(400, "request.invalid_json", "body is not valid JSON") from err
    try:
        req = IngestRequest.model_validate(raw)
        data = parse_event_data(req.type, req.data, external=True)
    except ValidationError as err:
        details = [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in err.errors()]
        raise IngestError(
            422, "event.invalid", "request does not match the schema", details
        ) from err
    except EventValidationError as err:
        raise IngestError(422, "event.invalid", str(err), err.details) from err
    if not org_contains(key.org, req.org):
        raise IngestError(403, "auth.org_forbidden", f"key {key.id} may not publish to {req.org}")
    idem_key = request.headers.get("Idempotency-Key")
    if idem_key is not None and not 0 < len(idem_key) <= MAX_IDEMPOTENCY_KEY:
        raise IngestError(400, "request.bad_idempotency_key", "Idempotency-Key 1–128 chars")
    request_hash = hashlib.sha256(body).hexdigest()
    signature = request.headers["X-Signature"].removeprefix(signing.SIGNATURE_PREFIX)

    envelope = data.envelope(source=f"external/{key.id}", org=req.org, subject=req.subject)
    body_out = IngestAccepted(id=envelope.id, channels=channels_for(envelope)).model_dump_json()
    try:
        async with hub.sessions() as session, session.begin():
            if idem_key is not None:
                replayed = await _replay(session, key.id, idem_key, request_hash)
                if replayed is not None:
                    return replayed
            if await session.get(OrgNode, req.org) is None:
                raise IngestError(422, "event.unknown_org", f"no org node {req.org}")
            session.add(SeenSignature(signature=signature.lower()[:64], api_key=key.id))
            add_event(session, envelope)
            if idem_key is not None:
                session.add(
                    IdempotencyRecord(
                        api_key=key.id,
                        key=idem_key,
                        request_hash=request_hash,
                        status=202,
                        response=body_out,
                    )
                )
            await session.flush()
    except IntegrityError as err:
        return await _on_conflict(hub, key.id, idem_key, request_hash, signature, err)
    hub.relay.notify()
    hub.metrics.ingest_accepted += 1
    return web.Response(status=202, body=body_out, content_type="application/json")


def authenticate(request: web.Request, hub: Hub, body: bytes) -> ApiKey:
    """The API key that signed ``body`` (X-Api-Key, X-Timestamp, X-Signature), or
    IngestError; shared with adapters' signed webhooks."""
    key_id = request.headers.get("X-Api-Key")
    timestamp = request.headers.get("X-Timestamp")
    signature = request.headers.get("X-Signature")
    if not key_id or not timestamp or not signature:
        raise IngestError(
            401, "auth.missing", "X-Api-Key, X-Timestamp and X-Signature are required"
        )
    key = next((k for k in hub.settings.api_keys if k.id == key_id), None)
    if key is None:
        raise IngestError(401, "auth.unknown_key", "unknown API key")
    try:
        ts = int(timestamp)
    except ValueError as err:
        raise IngestError(401, "auth.bad_timestamp", "X-Timestamp must be Unix seconds") from err
    window = hub.settings.ingest.signature_window
    if abs(time.time() - ts) > window:
        raise IngestError(401, "auth.stale_timestamp", f"timestamp outside the {window} s window")
    if len(signature) > 80 or not signing.verify(
        key.secret.get_secret_value(), timestamp, body, signature
    ):
        raise IngestError(401, "auth.bad_signature", "signature does not match")
    return key


async def claim_signature(hub: Hub, request: web.Request, key_id: str) -> None:
    """Record an authenticated request's signature as used (its own transaction), or
    IngestError ``auth.replayed``: for signed endpoints other than ``/api/v1/events``."""
    signature = request.headers["X-Signature"].removeprefix(signing.SIGNATURE_PREFIX)
    try:
        async with hub.sessions() as session, session.begin():
            session.add(SeenSignature(signature=signature.lower()[:64], api_key=key_id))
    except IntegrityError as err:
        raise IngestError(409, "auth.replayed", "this signed request was already used") from err


async def _replay(
    session: AsyncSession, key_id: str, idem_key: str, request_hash: str
) -> web.Response | None:
    record = await session.get(IdempotencyRecord, (key_id, idem_key))
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IngestError(
            409, "idempotency.conflict", "Idempotency-Key reused with a different body"
        )
    return web.Response(
        status=record.status,
        body=record.response,
        content_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


async def _on_conflict(
    hub: Hub,
    key_id: str,
    idem_key: str | None,
    request_hash: str,
    signature: str,
    err: IntegrityError,
) -> web.Response:
    """A unique key was taken by a concurrent or earlier request: which one tells us."""
    async with hub.sessions() as session:
        if await session.get(SeenSignature, signature.lower()[:64]) is not None:
            raise IngestError(409, "auth.replayed", "this signed request was already used") from err
        if idem_key is not None:
            replayed = await _replay(session, key_id, idem_key, request_hash)
            if replayed is not None:
                return replayed
    raise IngestError(409, "request.conflict", "conflicting concurrent request") from err


async def prune(hub: Hub) -> None:
    """Forget signatures older than twice the window and expired idempotency keys."""
    now = utcnow()
    window = timedelta(seconds=2 * hub.settings.ingest.signature_window)
    ttl = timedelta(seconds=hub.settings.ingest.idempotency_ttl)
    async with hub.sessions() as session, session.begin():
        await session.execute(delete(SeenSignature).where(SeenSignature.seen_at < now - window))
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - ttl)
        )


__all__ = [
    "IngestAccepted", "IngestError", "IngestRequest", "authenticate", "claim_signature",
    "post_event", "prune",
]  # fmt: skip
