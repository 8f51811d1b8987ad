"""Case statistics on both backends: exact counts by state, category, tier and org, on-time
closure rates, rankings of orgs, assignees and departments, the date-range boundaries and
the refusals (roles, scope, bad queries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.db.models import Case, CaseOrgTally, utcnow
from tests.conftest import RunningHub
from tests.integration.api.conftest import Api
from tests.integration.cases.helpers import DEPARTMENT, STREET_LEADER, WORKER, Person

STATS = "/api/v1/cases/stats"
DISTRICT_LEADER = Person("d01-leader", "d01", ("leader",))
POLICE = Person("dept-police", "d01", ("department",))
FROM = datetime(2026, 3, 1, tzinfo=UTC)
TO = datetime(2026, 4, 1, tzinfo=UTC)
MARCH = {"from": "2026-03-01", "to": "2026-04-01"}

# (key, org, state, category root, tier, on_time, satisfaction, assignee, created_at)
Row = tuple[str, str, str, str, str, bool | None, int | None, str | None, datetime]
DAY = timedelta(days=1)
ROWS: list[Row] = [
    ("a1", "d01.s01.c01.g01", "evaluated", "dispute", "community", True, 5, WORKER.id, FROM),
    ("a2", "d01.s01.c01.g02", "closed", "safety", "community", False, None,
     "s01c01g02-worker", FROM + DAY),
    ("a3", "d01.s01.c02.g01", "closed", "citymgmt", "street", True, None, DEPARTMENT.id,
     FROM + 2 * DAY),
    ("a4", "d01.s01.c02.g01", "handling", "citymgmt", "community", None, None, DEPARTMENT.id,
     FROM + 3 * DAY),
    ("a5", "d01.s01", "reported", "dispute", "street", None, None, None, FROM + 4 * DAY),
    ("b1", "d01.s02.c01.g01", "evaluated", "security", "district", True, 3, POLICE.id,
     FROM + 5 * DAY),
    ("b2", "d01.s02.c01.g01", "evaluated", "security", "community", True, 4, POLICE.id,
     FROM + 6 * DAY),
    ("b3", "d01.s02.c03.g02", "rejected", "other", "community", None, None, None,
     FROM + 7 * DAY),
    ("c1", "d01.s03.c01.g01", "closed", "environment", "community", False, None,
     DEPARTMENT.id, FROM + 8 * DAY),
    ("c2", "d01.s03.c01.g01", "closed", "environment", "community", False, None,
     DEPARTMENT.id, TO - timedelta(microseconds=1)),
    # Outside [FROM, TO): just before and exactly at the end.
    ("x1", "d01.s01.c01.g01", "closed", "dispute", "community", True, None, WORKER.id,
     FROM - timedelta(microseconds=1)),
    ("x2", "d01.s02.c01.g01", "evaluated", "security", "community", True, 1, POLICE.id, TO),
]  # fmt: skip


async def add_cases(running_hub: RunningHub, rows: list[Row]) -> None:
    """Insert the cases straight through the ORM."""
    async with running_hub.hub.sessions() as session, session.begin():
        for key, org, state, root, tier, on_time, score, assignee, at in rows:
            session.add(
                Case(
                    id=f"{key.upper():0>26}",
                    number=f"d01-2026-{key}",
                    category=f"{root}.x",
                    category_root=root,
                    priority="normal",
                    title=key,
                    description="",
                    org=org,
                    tier_org=org,
                    tier=tier,
                    channel="console",
                    reporter_kind="user",
                    reporter_id=WORKER.id,
                    reporter_name="",
                    state=state,
                    assignee=assignee,
                    attributes={},
                    created_at=at,
                    updated_at=utcnow(),  # the hub stamps its writes now
                    closed_at=at + DAY if on_time is not None else None,
                    on_time=on_time,
                    satisfaction=score,
                    version=1,
                )
            )


@pytest.fixture
async def seeded(running_hub: RunningHub) -> RunningHub:
    """A hub holding the cases above."""
    await add_cases(running_hub, ROWS)
    return running_hub


async def stats(api: Api, person: Person, **params: str) -> dict[str, Any]:
    """GET the statistics; must succeed."""
    reply = await api.as_(person.token).get(STATS, **params)
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


def orgs(body: dict[str, Any]) -> list[tuple[str, int, int, int, int | None]]:
    """(org, total, closed, on_time, rank) in ranking order."""
    return [(o["org"], o["total"], o["closed"], o["on_time"], o["rank"]) for o in body["by_org"]]


async def test_district_stats_count_every_dimension_exactly(seeded: RunningHub, api: Api) -> None:
    body = await stats(api, DISTRICT_LEADER, **MARCH, level="street")
    assert (body["org"], body["level"]) == ("d01", "street")
    assert body["from"].startswith("2026-03-01T00:00:00") and body["to"].startswith("2026-04-01")
    assert body["by_state"] == {
        "closed": 4, "evaluated": 3, "handling": 1, "rejected": 1, "reported": 1,
    }  # fmt: skip
    assert body["by_category"] == {
        "citymgmt": 2, "dispute": 2, "environment": 2, "other": 1, "safety": 1, "security": 2,
    }  # fmt: skip
    assert body["by_tier"] == {"community": 7, "district": 1, "street": 2}
    overall = body["overall"]
    assert (overall["total"], overall["closed"], overall["on_time"]) == (10, 7, 4)
    assert overall["closure_rate"] == pytest.approx(0.7)
    assert overall["on_time_rate"] == pytest.approx(4 / 7)
    assert (overall["satisfaction"], overall["rated"]) == (pytest.approx(4.0), 3)


async def test_orgs_are_ranked_by_on_time_closure_rate(seeded: RunningHub, api: Api) -> None:
    body = await stats(api, DISTRICT_LEADER, **MARCH, level="street")
    assert orgs(body) == [
        ("d01.s02", 3, 2, 2, 1),
        ("d01.s01", 5, 3, 2, 2),
        ("d01.s03", 2, 2, 0, 3),
    ]
    s02, s01, s03 = body["by_org"]
    assert (s02["on_time_rate"], s02["satisfaction"], s02["name"]) == (1.0, 3.5, "冶金街道")
    assert s01["on_time_rate"] == pytest.approx(2 / 3)
    assert (s03["on_time_rate"], s03["satisfaction"]) == (0.0, None)


async def test_a_street_leader_sees_communities_and_unclosed_orgs_rank_last(
    seeded: RunningHub, api: Api
) -> None:
    body = await stats(api, STREET_LEADER, **MARCH)
    assert (body["org"], body["level"], body["overall"]["total"]) == ("d01.s01", "community", 5)
    assert orgs(body) == [
        ("d01.s01.c02", 2, 1, 1, 1),
        ("d01.s01.c01", 2, 2, 1, 2),
        ("d01.s01", 1, 0, 0, None),  # filed at the street itself: kept as its own row
    ]
    assert body["by_org"][2]["on_time_rate"] is None


async def test_the_grid_breakdown_groups_by_full_paths(seeded: RunningHub, api: Api) -> None:
    body = await stats(api, DISTRICT_LEADER, **MARCH, org="d01.s01.c01")
    assert body["level"] == "grid"
    assert orgs(body) == [("d01.s01.c01.g01", 1, 1, 1, 1), ("d01.s01.c01.g02", 1, 1, 0, 2)]
    whole = await stats(api, DISTRICT_LEADER, **MARCH, level="grid")
    assert {o["org"]: o["total"] for o in whole["by_org"]} == {
        "d01.s01": 1, "d01.s01.c01.g01": 1, "d01.s01.c01.g02": 1, "d01.s01.c02.g01": 2,
        "d01.s02.c01.g01": 2, "d01.s02.c03.g02": 1, "d01.s03.c01.g01": 2,
    }  # fmt: skip


async def test_assignees_and_departments_are_ranked(seeded: RunningHub, api: Api) -> None:
    body = await stats(api, DISTRICT_LEADER, **MARCH)
    ranking = [(a["assignee"], a["total"], a["closed"], a["on_time"], a["rank"])
               for a in body["assignees"]]  # fmt: skip
    assert ranking == [
        (POLICE.id, 2, 2, 2, 1),  # 100 %, more closed than the worker's 100 %
        (WORKER.id, 1, 1, 1, 2),
        (DEPARTMENT.id, 4, 3, 1, 3),
        ("s01c01g02-worker", 1, 1, 0, 4),
    ]
    assert [(d["assignee"], d["rank"], d["department"]) for d in body["departments"]] == [
        (POLICE.id, 1, True),
        (DEPARTMENT.id, 2, True),
    ]
    citymgmt = body["departments"][1]
    assert citymgmt["on_time_rate"] == pytest.approx(1 / 3)
    assert citymgmt["name"] == "陈辉"
    assert body["assignees"][1]["department"] is False


async def test_the_range_includes_its_start_and_excludes_its_end(
    seeded: RunningHub, api: Api
) -> None:
    # The same instants written with a +08:00 offset (Beijing time).
    beijing = {"from": "2026-03-01T08:00:00+08:00", "to": "2026-04-01T08:00:00+08:00"}
    body = await stats(api, DISTRICT_LEADER, **beijing)
    assert body["overall"]["total"] == 10
    later = await stats(api, DISTRICT_LEADER, **{**MARCH, "from": "2026-03-01T00:00:00.000001Z"})
    assert later["overall"]["total"] == 9  # a1 was created exactly at the start
    wider = await stats(api, DISTRICT_LEADER, **{"from": "2026-02-28", "to": "2026-04-02"})
    assert wider["overall"]["total"] == 12
    empty = await stats(api, DISTRICT_LEADER, **{"from": "2025-01-01", "to": "2025-02-01"})
    assert empty["overall"]["total"] == 0 and empty["overall"]["on_time_rate"] is None
    assert (empty["by_org"], empty["assignees"], empty["by_state"]) == ([], [], {})


async def test_statistics_stay_inside_the_callers_subtree(seeded: RunningHub, api: Api) -> None:
    own = await stats(api, STREET_LEADER, **MARCH, org="d01.s01.c02")
    assert own["overall"]["total"] == 2
    outside = await api.as_(STREET_LEADER.token).get(STATS, **MARCH, org="d01.s02")
    assert (outside.status, outside.code) == (403, "auth.forbidden")
    above = await api.as_(STREET_LEADER.token).get(STATS, **MARCH, org="d01")
    assert (above.status, above.code) == (403, "auth.forbidden")
    department = await stats(api, DEPARTMENT, **MARCH)
    assert department["overall"]["total"] == 10


@pytest.mark.parametrize(
    ("who", "params", "status", "code"),
    [
        (WORKER, MARCH, 403, "auth.forbidden"),
        (None, MARCH, 401, "auth.required"),
        (DISTRICT_LEADER, {"from": "2026-04-01", "to": "2026-03-01"}, 400, "request.invalid_query"),
        (DISTRICT_LEADER, {"from": "yesterday"}, 400, "request.invalid_query"),
        (DISTRICT_LEADER, {"level": "district"}, 400, "request.invalid_query"),
        (DISTRICT_LEADER, {"org": "d01.s01.c01", "level": "street"}, 400,
         "request.invalid_query"),
        (DISTRICT_LEADER, {"org": "D01!"}, 400, "request.invalid_query"),
        (DISTRICT_LEADER, {"colour": "red"}, 400, "request.invalid_query"),
    ],
)  # fmt: skip
async def test_bad_requests_are_refused_with_a_code(
    running_hub: RunningHub,
    api: Api,
    who: Person | None,
    params: dict[str, str],
    status: int,
    code: str,
) -> None:
    reply = await api.as_(who.token if who else None).get(STATS, **params)
    assert (reply.status, reply.code) == (status, code), reply.body


async def test_stats_is_not_taken_for_a_case_id(running_hub: RunningHub, api: Api) -> None:
    body = await stats(api, DISTRICT_LEADER)
    assert body["overall"]["total"] == 0 and body["level"] == "street"


async def test_whole_months_are_read_from_tallies_that_follow_case_changes(
    seeded: RunningHub, api: Api
) -> None:
    before = await stats(api, DISTRICT_LEADER, **MARCH)
    async with seeded.hub.sessions() as session:
        tallied = await session.scalar(
            select(func.sum(CaseOrgTally.n)).where(CaseOrgTally.month == FROM)
        )
    assert tallied == 10  # March is tallied: the answer above came from the tallies
    # A case closes and a late report lands in March, as the service writes them (updated
    # now): the next answer counts both.
    async with seeded.hub.sessions() as session, session.begin():
        case = await session.get(Case, f"{'A5':0>26}")
        assert case is not None
        case.state, case.on_time, case.updated_at = "closed", True, utcnow()
    await add_cases(
        seeded,
        [("a6", "d01.s01.c01.g01", "reported", "dispute", "community", None, None, None,
          FROM + 9 * DAY)],
    )  # fmt: skip
    async with seeded.hub.sessions() as session, session.begin():
        late = await session.get(Case, f"{'A6':0>26}")
        assert late is not None
        late.updated_at = utcnow()
    after = await stats(api, DISTRICT_LEADER, **MARCH)
    assert after["overall"]["total"] == before["overall"]["total"] + 1
    assert after["overall"]["closed"] == before["overall"]["closed"] + 1
    assert after["overall"]["on_time"] == before["overall"]["on_time"] + 1
    assert after["by_state"]["reported"] == before["by_state"]["reported"]  # a5 out, a6 in
