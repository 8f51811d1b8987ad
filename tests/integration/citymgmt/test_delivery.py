"""Acceptance 2 and the queue's API: status updates reach the system exactly once and in
order per case, through 500s and requests hanging past our timeout; dead letters are
visible and can be retried."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp
from sqlalchemy import select

from adapters.citymgmt.models import CitymgmtDelivery
from hub.cases.models import CaseAction
from tests.conftest import RunningHub
from tests.integration.citymgmt.conftest import (
    DISPATCHER,
    EXPECTED_STATUSES,
    LOOP,
    adapter_of,
    case_of,
    deliveries,
    push,
    request,
    run_loop,
)
from tests.support.citymgmt import StandIn
from tests.support.hubs import token
from tests.support.rawws import eventually

CASES = 12
FAULTS = ["500", "hang", "500", "500", "hang", "hang", "500", "hang"] * 3


async def _cases(hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession) -> list[str]:
    _, answer = await push(stand_in, http, hub, [request(n) for n in range(CASES)])
    assert [a["outcome"] for a in answer] == ["created"] * CASES
    return [a["case_id"] for a in answer]


async def test_updates_arrive_once_and_in_order_per_case_through_errors_and_timeouts(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    case_ids = await _cases(citymgmt_hub, stand_in, http)
    stand_in.faults = list(FAULTS)
    await asyncio.gather(*(run_loop(citymgmt_hub, cid) for cid in case_ids))
    # Every fault is met (the hub retried through them), each hung request outlasted our
    # timeout, then the system recovers.
    adapter = adapter_of(citymgmt_hub)
    failed = adapter.counters.attempts_failed_by_reason
    await stand_in.wait_for(lambda: not stand_in.faults)
    await eventually(lambda: failed.get("timeout", 0) == FAULTS.count("hang"), "hangs time out")
    stand_in.release()
    total = CASES * len(LOOP)
    await stand_in.wait_for(lambda: len(stand_in.received) >= total)

    rows = await deliveries(citymgmt_hub)
    assert len(rows) == total
    ids = stand_in.update_ids()
    assert sorted(ids) == sorted(r.id for r in rows)  # each exactly once
    by_request: dict[str, list[str]] = defaultdict(list)
    for r in stand_in.received:
        by_request[r.update["service_request_id"]].append(r.update["status"])
    assert len(by_request) == CASES
    for statuses in by_request.values():
        assert statuses == EXPECTED_STATUSES  # in order per case
    seq = {r.id: r.seq for r in rows}
    for sr in by_request:
        seqs = [seq[r.update["update_id"]] for r in stand_in.received
                if r.update["service_request_id"] == sr]  # fmt: skip
        assert seqs == sorted(seqs)
    assert failed == {"http_500": FAULTS.count("500"), "timeout": FAULTS.count("hang")}


async def test_a_permanent_refusal_dead_letters_and_holds_the_case_until_retried(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    case_ids = await _cases(citymgmt_hub, stand_in, http)
    case_id = case_ids[0]
    stand_in.push_secret = "not-our-secret"  # our signature fails: 401, permanent
    await citymgmt_hub.hub.cases.act(DISPATCHER, case_id, CaseAction(action="register"))
    headers = {"Authorization": "Bearer " + token("d01-dispatcher", "d01", ["dispatcher"])}
    url = citymgmt_hub.url + "/api/v1/citymgmt/deliveries"

    async def dead() -> list[dict[str, object]]:
        async with http.get(url, params={"state": "dead"}, headers=headers) as resp:
            assert resp.status == 200
            body: list[dict[str, object]] = await resp.json()
            return body

    counters = adapter_of(citymgmt_hub).counters
    await eventually(lambda: counters.dead == 1, "the update is dead-lettered")
    rows = await dead()
    assert len(rows) == 1
    async with http.get(citymgmt_hub.url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'hub_citymgmt_deliveries{state="dead"} 1.0' in metrics
    assert 'hub_citymgmt_attempts_failed_total{reason="http_401"} 1.0' in metrics
    assert rows[0]["last_error"] == "answered HTTP 401"
    # The case's next update waits behind the dead one.
    liaison = {"action": "assign", "assignee": "dept-citymgmt"}
    await citymgmt_hub.hub.cases.act(DISPATCHER, case_id, CaseAction(**liaison))
    assert stand_in.received == []

    stand_in.push_secret = "push-secret-for-tests"
    async with http.post(f"{url}/{rows[0]['update_id']}/retry", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["state"] == "queued"
    await stand_in.wait_for(lambda: len(stand_in.received) == 2)
    assert [r.update["status"] for r in stand_in.received] == ["investigating", "action_scheduled"]
    async with http.post(f"{url}/{rows[0]['update_id']}/retry", headers=headers) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (409, "citymgmt.not_dead")
    worker = {"Authorization": "Bearer " + token("w", "d01.s01.c01.g01", ["grid_worker"])}
    async with http.get(url, headers=worker) as resp:
        assert resp.status == 403


async def test_changes_made_by_the_system_itself_are_not_echoed_back(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    await push(stand_in, http, citymgmt_hub, request(1))
    await push(stand_in, http, citymgmt_hub, request(1, 1, description="changed"))
    case = await case_of(citymgmt_hub, "SR-00001")
    assert case is not None and case.version == 2
    async with citymgmt_hub.hub.sessions() as session:
        assert (await session.scalars(select(CitymgmtDelivery))).all() == []
