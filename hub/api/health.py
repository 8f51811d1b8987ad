"""``/healthz`` (alive), ``/readyz`` (database, bus listener, relay, adapters), ``/metrics``."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.db.engine import check_database
from hub.errors import NotReadyError
from hub.state import HUB

READY_CHECK_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: every dependency answers. 503 with the failing parts otherwise."""
    hub = request.app[HUB]
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(check_database(hub.engine), READY_CHECK_TIMEOUT)
        checks["database"] = "ok"
    except (NotReadyError, TimeoutError):
        checks["database"] = "unreachable"
    checks["bus"] = "ok" if hub.bus.ready else "down"
    checks["outbox_relay"] = "ok" if hub.relay.healthy else "retrying"
    checks["gateway"] = "ok" if hub.gateway.accepting else "closed"
    for adapter in hub.adapters:
        checks[f"adapter:{adapter.name}"] = "ok" if adapter.ready else "not ready"
    ok = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ready" if ok else "not ready", "checks": checks}, status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    hub = request.app[HUB]
    await hub.metrics.refresh()
    body = generate_latest(hub.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
