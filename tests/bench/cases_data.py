"""Bulk case data for the case benchmarks: one million cases generated inside PostgreSQL,
the report bodies POSTed to the hub, and the naive statistics used as the peer."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

STREETS = COMMUNITIES = 3
GRIDS = 4
ROOTS = ("dispute", "security", "safety", "citymgmt", "livelihood", "environment", "other")
LEAVES = {
    "dispute": "dispute.neighbour",
    "security": "security",
    "safety": "safety.fire",
    "citymgmt": "citymgmt.sanitation",
    "livelihood": "livelihood",
    "environment": "environment",
    "other": "other",
}
STATS_FROM = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
STATS_TO = datetime.fromisoformat("2027-01-01T00:00:00+00:00")
CLOSED = ("closed", "evaluated")

# 36 grids of d01 (3 streets × 3 communities × 4 grids, config/org_tree.json), 7 root
# categories, a plausible spread of states; on_time for closed cases (85 % in time),
# satisfaction for evaluated ones, an assignee once assigned (the grid's worker, or one of
# the two departments), created at random over 2026. updated_at is never in the future (the
# hub stamps it when it writes): the cases created after "now" were loaded an hour ago.
GENERATE = """
INSERT INTO cases (id, number, category, category_root, priority, title, description,
    org, tier_org, tier, channel, reporter_kind, reporter_id, reporter_name, state,
    assignee, attributes, created_at, updated_at, closed_at, on_time, satisfaction, version)
SELECT lpad(g::text, 26, '0'), 'd01-bench-' || lpad(g::text, 8, '0'),
    root || '.x', root, (ARRAY['normal','normal','normal','urgent','emergency'])[1 + g % 5],
    'bench case', '', grid, community, tier, 'console', 'user', 'bench', '', state,
    CASE WHEN state IN ('reported', 'registered', 'rejected') THEN NULL
         WHEN u_who < 0.8 THEN 's' || s || 'c' || c || 'g' || gr || '-worker'
         WHEN u_who < 0.9 THEN 'dept-citymgmt' ELSE 'dept-police' END,
    '{}', created, LEAST(created, now() - interval '1 hour'),
    CASE WHEN state IN ('closed', 'evaluated') THEN created + interval '2 days' END,
    CASE WHEN state IN ('closed', 'evaluated') THEN u_time < 0.85 END,
    CASE WHEN state = 'evaluated' THEN 1 + floor(u_time * 5)::int END,
    1
FROM (
    SELECT g, s, c, gr, u_who, u_time, created,
        'd01.s' || s || '.c' || c || '.g' || gr AS grid,
        'd01.s' || s || '.c' || c AS community,
        (ARRAY['dispute','security','safety','citymgmt','livelihood','environment',
               'other'])[1 + floor(u_root * 7)::int] AS root,
        CASE WHEN u_tier < 0.85 THEN 'community' WHEN u_tier < 0.97 THEN 'street'
             ELSE 'district' END AS tier,
        CASE WHEN u_state < 0.05 THEN 'reported' WHEN u_state < 0.08 THEN 'rejected'
             WHEN u_state < 0.12 THEN 'registered' WHEN u_state < 0.20 THEN 'assigned'
             WHEN u_state < 0.30 THEN 'handling' WHEN u_state < 0.35 THEN 'fed_back'
             WHEN u_state < 0.60 THEN 'closed' ELSE 'evaluated' END AS state
    FROM (
        SELECT g,
            lpad((1 + floor(random() * 3))::int::text, 2, '0') AS s,
            lpad((1 + floor(random() * 3))::int::text, 2, '0') AS c,
            lpad((1 + floor(random() * 4))::int::text, 2, '0') AS gr,
            random() AS u_root, random() AS u_tier, random() AS u_state,
            random() AS u_who, random() AS u_time,
            timestamptz '2026-01-01 00:00:00+00' + random() * interval '365 days' AS created
        FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
    ) AS u
) AS v
"""


async def generate_cases(conn: AsyncConnection, count: int, chunk: int = 250_000) -> None:
    """Insert ``count`` cases in chunks (each chunk one statement)."""
    await conn.execute(text("SELECT setseed(0.42)"))
    for start in range(1, count + 1, chunk):
        stop = min(count, start + chunk - 1)
        await conn.execute(text(GENERATE), {"start": start, "stop": stop})


def grids() -> list[str]:
    """The 36 demo grids of d01."""
    return [
        f"d01.s{s:02d}.c{c:02d}.g{g:02d}"
        for s in range(1, STREETS + 1)
        for c in range(1, COMMUNITIES + 1)
        for g in range(1, GRIDS + 1)
    ]


def report_bodies(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` report bodies spread over the grids and categories."""
    rng = random.Random(seed)
    places = grids()
    return [
        {
            "title": f"bench case {n}",
            "description": "3号楼2单元楼道堆满纸箱，存在消防隐患",
            "category": LEAVES[rng.choice(ROOTS)],
            "priority": rng.choice(("normal", "normal", "urgent")),
            "org": rng.choice(places),
        }
        for n in range(count)
    ]


NAIVE_ROWS = """
SELECT state, category_root, tier, org, on_time, satisfaction, assignee FROM cases
WHERE created_at >= :since AND created_at < :until AND (org = :root OR org LIKE :like)
"""


async def naive_stats(conn: AsyncConnection, root: str, depth: int) -> dict[str, Any]:
    """The peer: fetch the matching rows and tally them in a Python loop."""
    rows = await conn.execute(
        text(NAIVE_ROWS),
        {"since": STATS_FROM, "until": STATS_TO, "root": root, "like": root + ".%"},
    )
    by: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    orgs: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    people: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for state, root_code, tier, org, on_time, score, assignee in rows:
        by["state"][state] += 1
        by["category"][root_code] += 1
        by["tier"][tier] += 1
        closed = state in CLOSED
        targets = [orgs[".".join(org.split(".")[:depth])]]
        if assignee is not None:
            targets.append(people[assignee])
        for tally in targets:
            tally[0] += 1
            tally[1] += closed
            tally[2] += closed and on_time is True
            tally[3] += score or 0
            tally[4] += score is not None
    ranking = sorted(orgs.items(), key=lambda kv: -(kv[1][2] / kv[1][1] if kv[1][1] else -1))
    return {"by": by, "orgs": ranking, "assignees": len(people)}
