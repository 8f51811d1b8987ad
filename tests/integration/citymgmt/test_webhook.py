"""The signed webhook: new requests become cases, updates are applied idempotently."""

from __future__ import annotations

import aiohttp

from tests.conftest import RunningHub
from tests.integration.citymgmt.conftest import case_of, push, request
from tests.support.citymgmt import HOOK_PATH, StandIn


async def test_a_pushed_request_becomes_a_case_and_a_newer_update_changes_it(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    status, answer = await push(stand_in, http, citymgmt_hub, request(1))
    assert status == 200, answer
    assert answer[0]["outcome"] == "created"
    case = await case_of(citymgmt_hub, "SR-00001")
    assert case is not None
    assert (case.category, case.channel, case.reporter_kind) == (
        "citymgmt.street_vending", "citymgmt", "system",
    )  # fmt: skip
    _, again = await push(stand_in, http, citymgmt_hub, request(1))
    assert again[0]["outcome"] == "unchanged"
    _, newer = await push(stand_in, http, citymgmt_hub, request(1, 2, description="moved"))
    assert newer[0]["outcome"] == "updated"
    _, older = await push(stand_in, http, citymgmt_hub, request(1, 1))
    assert older[0]["outcome"] == "stale"
    case = await case_of(citymgmt_hub, "SR-00001")
    assert case is not None and case.description == "moved" and case.version == 2


async def test_unknown_service_codes_land_in_the_city_management_root(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    _, answer = await push(stand_in, http, citymgmt_hub, [request(2, service_code="noise")])
    assert answer[0]["outcome"] == "created"
    case = await case_of(citymgmt_hub, "SR-00002")
    assert case is not None and case.category == "citymgmt"


async def test_bad_requests_and_bad_signatures_are_refused_with_codes(
    citymgmt_hub: RunningHub, stand_in: StandIn, http: aiohttp.ClientSession
) -> None:
    status, answer = await push(stand_in, http, citymgmt_hub, request(3, lat=91, long=0))
    assert (status, answer["error"]["code"]) == (422, "citymgmt.invalid_request")
    assert answer["error"]["details"][0]["loc"] == "lat"
    async with http.post(citymgmt_hub.url + HOOK_PATH, json=request(3)) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "auth.missing"
    assert await case_of(citymgmt_hub, "SR-00003") is None
