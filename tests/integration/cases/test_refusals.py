"""Wrong person, wrong moment, bad input: clear codes, and nothing changes."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.api.conftest import Api
from tests.integration.cases.helpers import (
    COMMUNITY,
    DEPARTMENT,
    DISTRICT,
    GRID_LEADER,
    OTHER_COMMUNITY,
    OTHER_STREET,
    OTHER_WORKER,
    STREET,
    WORKER,
    act,
    must,
    new_case,
    report,
)


async def test_actions_by_the_wrong_role_or_tier_are_refused_with_403_before_any_state_check(
    api: Api,
) -> None:
    case = await report(api)
    cid = case["id"]
    refusals = [
        (WORKER, "register", {}, "case.wrong_tier"),
        (STREET, "register", {}, "case.wrong_tier"),  # above the handling centre
        (GRID_LEADER, "register", {}, "case.wrong_tier"),  # not centre staff
        (COMMUNITY, "supervise", {"note": "快"}, "case.wrong_tier"),  # own tier, not higher
        (WORKER, "start", {}, "case.not_assignee"),
        (COMMUNITY, "feed_back", {}, "case.not_assignee"),
    ]
    for person, action, fields, code in refusals:
        reply = await act(api, person, cid, action, **fields)
        assert (reply.status, reply.code) == (403, code), (person.id, action, reply.body)
    # Someone outside the case's subtree does not see it at all.
    reply = await act(api, OTHER_COMMUNITY, cid, "register")
    assert (reply.status, reply.code) == (404, "case.not_found")
    detail = (await api.as_(COMMUNITY.token).get(f"/api/v1/cases/{cid}")).body
    assert detail["state"] == "reported" and detail["version"] == 1
    assert [e["action"] for e in detail["timeline"]] == ["report"]


async def test_actions_at_the_wrong_moment_are_refused_with_409(api: Api) -> None:
    cid = (await report(api))["id"]
    for action, fields in [
        ("close", {}),
        ("assign", {"assignee": WORKER.id}),
        ("return", {"note": "x"}),
        ("evaluate", {"satisfaction": 3}),
    ]:
        reply = await act(api, COMMUNITY, cid, action, **fields)
        assert (reply.status, reply.code) == (409, "case.invalid_transition"), action
        assert "reported" in reply.body["error"]["message"]
    await must(api, COMMUNITY, cid, "reject", note="重复上报")
    reply = await act(api, COMMUNITY, cid, "register")
    assert (reply.status, reply.code) == (409, "case.invalid_transition")
    # A case at the district centre has nowhere higher to go.
    top = (await report(api, DISTRICT, org="d01"))["id"]
    reply = await act(api, DISTRICT, top, "escalate", note="上报")
    assert (reply.status, reply.code) == (409, "case.no_higher_tier")


@pytest.mark.parametrize(
    ("fields", "code", "status"),
    [
        ({"action": "reject"}, "case.reason_required", 422),
        ({"action": "escalate", "note": ""}, "case.reason_required", 422),
        ({"action": "fly"}, "case.invalid", 422),
        ({"action": "evaluate"}, "case.invalid", 422),
        ({"action": "register", "assignee": "x"}, "case.invalid", 422),
        ({"action": "register", "if_version": 7}, "case.version_conflict", 409),
    ],
)
async def test_malformed_actions_get_a_clear_code(
    api: Api, fields: dict[str, object], code: str, status: int
) -> None:
    cid = (await report(api))["id"]
    reply = await api.as_(COMMUNITY.token).post(f"/api/v1/cases/{cid}/actions", fields)
    assert (reply.status, reply.code) == (status, code), reply.body


async def test_assignment_checks_the_assignee_and_the_deadline(api: Api) -> None:
    cid = (await report(api))["id"]
    await must(api, COMMUNITY, cid, "register")
    reply = await act(api, COMMUNITY, cid, "assign", assignee="nobody")
    assert (reply.status, reply.code) == (422, "case.unknown_assignee")
    reply = await act(api, COMMUNITY, cid, "assign", assignee=OTHER_STREET.id)
    assert (reply.status, reply.code) == (403, "case.assignee_outside_scope")
    reply = await act(
        api, COMMUNITY, cid, "assign", assignee=WORKER.id, deadline="2020-01-01T00:00:00+08:00"
    )
    assert (reply.status, reply.code) == (422, "case.invalid_deadline")
    reply = await act(
        api, COMMUNITY, cid, "assign", assignee=WORKER.id, deadline="2099-01-01T08:00"
    )
    assert (reply.status, reply.code) == (422, "case.invalid")  # no time zone
    case = await must(
        api, COMMUNITY, cid, "assign", assignee=DEPARTMENT.id,
        deadline="2099-01-01T08:00:00+08:00",
    )  # fmt: skip
    assert case["due_at"].startswith("2099-01-01T00:00:00")  # stored and shown in UTC
    # Reassigning before work starts is allowed; the new assignee then starts.
    case = await must(api, COMMUNITY, cid, "assign", assignee=OTHER_WORKER.id)
    assert case["assignee"] == OTHER_WORKER.id
    reply = await act(api, DEPARTMENT, cid, "start")
    assert (reply.status, reply.code) == (403, "case.not_assignee")


async def test_reports_are_placed_by_org_location_or_reporter_and_checked(api: Api) -> None:
    assert (await report(api, WORKER))["tier_org"] == "d01.s01.c01"
    # Without org or location a console report belongs to the reporter's own org.
    reply = await api.as_(STREET.token).post(
        "/api/v1/cases", {"title": "街道巡查发现", "category": "other"}
    )
    assert reply.status == 201 and reply.body["org"] == "d01.s01"
    assert reply.body["tier"] == "street"
    for body, status, code in [
        (new_case(category="nonsense"), 422, "case.unknown_category"),
        (new_case(org="d01.s02.c01.g01"), 403, "case.outside_scope"),
        (new_case(title=""), 422, "case.invalid"),
        (new_case(direct_to_district=True), 422, "case.invalid"),  # not an emergency
    ]:
        reply = await api.as_(WORKER.token).post("/api/v1/cases", body)
        assert (reply.status, reply.code) == (status, code), body
    reply = await api.as_(COMMUNITY.token).post("/api/v1/cases", new_case(org="d01.s01.c01.g99"))
    assert (reply.status, reply.code) == (422, "case.unknown_org")


async def test_an_emergency_goes_straight_to_the_district_only_from_the_grid(api: Api) -> None:
    body = new_case(priority="emergency", direct_to_district=True, title="燃气泄漏")
    reply = await api.as_(GRID_LEADER.token).post("/api/v1/cases", body)
    assert reply.status == 201 and reply.body["tier_org"] == "d01"
    assert reply.body["tier"] == "district"
    reply = await api.as_(COMMUNITY.token).post("/api/v1/cases", body)
    assert (reply.status, reply.code) == (403, "case.direct_report_forbidden")
    # The district centre handles it from the first step.
    direct = await report(api, WORKER, **body)
    case = await must(api, DISTRICT, direct["id"], "register")
    assert case["state"] == "registered" and case["tier_org"] == "d01"


async def test_two_concurrent_actions_on_one_case_run_one_after_the_other(api: Api) -> None:
    cid = (await report(api))["id"]
    first, second = await asyncio.gather(
        act(api, COMMUNITY, cid, "register"), act(api, COMMUNITY, cid, "register")
    )
    # One wins; the other sees the committed state and is refused for it, not lost.
    assert sorted([first.status, second.status]) == [200, 409]
    detail = (await api.as_(COMMUNITY.token).get(f"/api/v1/cases/{cid}")).body
    assert [e["action"] for e in detail["timeline"]] == ["report", "register"]
    assert detail["version"] == 2


async def test_reports_arriving_together_get_unique_consecutive_numbers_and_each_its_record(
    api: Api,
) -> None:
    # Enough at once to be written as several batches, which on PostgreSQL overlap.
    cases = await asyncio.gather(*(report(api, title=f"同时上报 {n}") for n in range(80)))
    serials = sorted(int(case["number"].rsplit("-", 1)[1]) for case in cases)
    assert serials == list(range(serials[0], serials[0] + 80))
    assert len({case["id"] for case in cases}) == 80
    for case in cases[::16]:
        detail = (await api.as_(COMMUNITY.token).get(f"/api/v1/cases/{case['id']}")).body
        assert detail["number"] == case["number"]
        assert [e["action"] for e in detail["timeline"]] == ["report"]
