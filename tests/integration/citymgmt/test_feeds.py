"""Polling mode (we read its feeds) and the feeds we serve (it reads ours)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from adapters.citymgmt.models import CitymgmtDelivery
from hub.cases.models import CaseAction
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.citymgmt.conftest import (
    DISPATCHER,
    FAST,
    adapter_of,
    case_of,
    deliveries,
    push,
    request,
)
from tests.support.citymgmt import StandIn
from tests.support.hubs import API_KEY, token
from tests.support.rawws import eventually

FEEDS = "/api/v1/citymgmt"


@pytest.fixture
async def polling_hub(backend: Backend, stand_in: StandIn) -> AsyncIterator[RunningHub]:
    """A hub polling the stand-in's feeds (and pushing updates to it)."""
    now = datetime.now(UTC)
    stand_in.requests = [
        request(1, updated_datetime=(now - timedelta(minutes=3)).isoformat()),
        request(2, updated_datetime=(now - timedelta(minutes=2)).isoformat()),
    ]
    settings = {**FAST, "base_url": stand_in.url, "poll": True, "poll_interval": 3600}
    hub = await start_hub(backend_settings(backend, citymgmt=settings))
    try:
        yield hub
    finally:
        await hub.server.close()


async def _polls(hub: RunningHub, count: int) -> None:
    polls = adapter_of(hub).counters.polls_by_result
    await eventually(lambda: polls.get("ok", 0) >= count, f"{count} feed polls")


async def test_polled_requests_and_updates_are_applied_like_pushes(
    polling_hub: RunningHub, stand_in: StandIn
) -> None:
    await _polls(polling_hub, 2)  # both feeds, once, at start
    first = await case_of(polling_hub, "SR-00001")
    assert first is not None and await case_of(polling_hub, "SR-00002") is not None
    # Our own update about case 1, and their update closing it, come back in their feed.
    await polling_hub.hub.cases.act(DISPATCHER, first.id, CaseAction(action="register"))
    ours = (await deliveries(polling_hub))[0]
    now = datetime.now(UTC)
    stand_in.updates = [
        {"update_id": ours.id, "service_request_id": "SR-00001", "status": "investigating",
         "updated_datetime": now.isoformat(), "description": "echo"},
        {"update_id": "their-1", "service_request_id": "SR-00001", "status": "closed",
         "updated_datetime": now.isoformat(), "description": "closed on their side"},
        {"update_id": "their-2", "service_request_id": "SR-09999", "status": "closed",
         "updated_datetime": now.isoformat(), "description": "not ours"},
    ]  # fmt: skip
    stand_in.requests.append(request(2, updated_datetime=now.isoformat(), description="newer"))
    adapter = adapter_of(polling_hub)
    assert adapter.poller is not None
    adapter.poller.poll_now()
    await _polls(polling_hub, 4)
    case = await case_of(polling_hub, "SR-00001")
    assert case is not None and case.attributes["status"] == "closed"
    second = await case_of(polling_hub, "SR-00002")
    assert second is not None and second.description == "newer"
    assert adapter.counters.updates_by_outcome == {"own": 1, "updated": 1, "unknown": 1}
    # Polling again (overlapping windows) changes nothing.
    adapter.poller.poll_now()
    await _polls(polling_hub, 6)
    assert adapter.counters.requests_by_outcome["updated"] == 1


async def test_the_served_feeds_show_its_requests_and_our_updates(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    _, answer = await push(stand_in, http, citymgmt_hub, request(7))
    await citymgmt_hub.hub.cases.act(DISPATCHER, answer[0]["case_id"],
                                     CaseAction(action="register"))  # fmt: skip
    await stand_in.wait_for(lambda: len(stand_in.received) == 1)
    secret = API_KEY.secret.get_secret_value()
    signed = stand_in.signed_headers(API_KEY.id, secret, b"")
    async with http.get(citymgmt_hub.url + FEEDS + "/requests.json", headers=signed) as resp:
        assert resp.status == 200, await resp.text()
        requests = await resp.json()
    assert [(r["service_request_id"], r["status"]) for r in requests] == [
        ("SR-00007", "investigating")
    ]
    bearer = {"Authorization": "Bearer " + token("d01-leader", "d01", ["leader"])}
    async with http.get(citymgmt_hub.url + FEEDS + "/servicerequestupdates.json",
                        headers=bearer) as resp:  # fmt: skip
        assert resp.status == 200
        updates = await resp.json()
    rows: list[CitymgmtDelivery] = await deliveries(citymgmt_hub)
    assert [u["update_id"] for u in updates] == [rows[0].id]
    assert updates[0] == stand_in.received[0].update
    bad = {"start_date": "2026-11-23T00:00:00"}  # no offset
    async with http.get(citymgmt_hub.url + FEEDS + "/requests.json", params=bad,
                        headers=bearer) as resp:  # fmt: skip
        assert resp.status == 400
    async with http.get(citymgmt_hub.url + FEEDS + "/requests.json") as resp:
        assert resp.status == 401
