"""Fixtures for the city-management tests: the stand-in system, hubs wired to it, and
helpers that build GeoReport requests and walk cases through the loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from adapters.citymgmt.adapter import CitymgmtAdapter
from adapters.citymgmt.models import CitymgmtDelivery
from hub.cases.lifecycle import Actor
from hub.cases.models import CaseAction
from hub.db.models import Case
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.support.citymgmt import StandIn
from tests.support.hubs import API_KEY

PUSH_SECRET = "push-secret-for-tests"
BASE_TIME = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
FAST: dict[str, Any] = {
    "enabled": True,
    "api_key": API_KEY.id,
    "push_secret": PUSH_SECRET,
    "timeout": 0.5,
    "retry_min_delay": 0.02,
    "retry_max_delay": 0.2,
    "max_attempts": 100,
}
DISPATCHER = Actor(kind="user", id="d01-dispatcher", org="d01", roles=frozenset({"dispatcher"}))
LIAISON = Actor(kind="user", id="dept-citymgmt", org="d01", roles=frozenset({"department"}))
LOOP: list[tuple[Actor, dict[str, Any]]] = [
    (DISPATCHER, {"action": "register"}),
    (DISPATCHER, {"action": "assign", "assignee": LIAISON.id}),
    (LIAISON, {"action": "start"}),
    (LIAISON, {"action": "feed_back", "note": "摊位已清理"}),
    (DISPATCHER, {"action": "close"}),
    (DISPATCHER, {"action": "evaluate", "satisfaction": 5}),
]
"""The closed loop a case owned by the system goes through: six status updates."""
EXPECTED_STATUSES = [
    "investigating", "action_scheduled", "in_progress", "fixed", "closed", "closed",
]  # fmt: skip


def request(n: int, version: int = 0, **fields: Any) -> dict[str, Any]:
    """GeoReport request number ``n`` as of its ``version``-th update."""
    out: dict[str, Any] = {
        "service_request_id": f"SR-{n:05d}",
        "status": "open",
        "service_code": "street_vending",
        "service_name": "占道经营",
        "description": f"request {n} version {version}",
        "address": f"和平大道 {n} 号",
        "requested_datetime": BASE_TIME.isoformat(),
        "updated_datetime": (BASE_TIME + timedelta(minutes=version)).isoformat(),
    }
    out.update(fields)
    return out


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    """A running stand-in city-management system."""
    system = StandIn(push_secret=PUSH_SECRET)
    await system.start()
    yield system
    await system.close()


@pytest.fixture
async def citymgmt_hub(backend: Backend, stand_in: StandIn) -> AsyncIterator[RunningHub]:
    """A hub with the adapter on, pushing to the stand-in."""
    hub = await start_hub(backend_settings(backend, citymgmt={**FAST, "base_url": stand_in.url}))
    try:
        yield hub
    finally:
        await hub.server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


def adapter_of(hub: RunningHub) -> CitymgmtAdapter:
    """The hub's city-management adapter."""
    return next(a for a in hub.hub.adapters if isinstance(a, CitymgmtAdapter))


async def push(
    stand_in: StandIn, http: aiohttp.ClientSession, hub: RunningHub, payload: object
) -> tuple[int, Any]:
    """The stand-in pushes ``payload`` to the hub, signed with the test key."""
    secret = API_KEY.secret.get_secret_value()
    return await stand_in.push(http, hub.url, API_KEY.id, secret, payload)


async def case_of(hub: RunningHub, service_request_id: str) -> Case | None:
    """The case of a request."""
    async with hub.hub.sessions() as session:
        result: Case | None = await session.scalar(
            select(Case).where(Case.external_system == "citymgmt",
                               Case.external_id == service_request_id)
        )  # fmt: skip
        return result


async def run_loop(hub: RunningHub, case_id: str) -> None:
    """Walk a case through the whole loop (six state changes)."""
    for actor, fields in LOOP:
        await hub.hub.cases.act(actor, case_id, CaseAction(**fields))


async def deliveries(hub: RunningHub) -> list[CitymgmtDelivery]:
    """Every delivery row."""
    async with hub.hub.sessions() as session:
        return list((await session.scalars(select(CitymgmtDelivery))).all())
