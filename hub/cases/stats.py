"""Case statistics for leaders (考核): counts by state, category, tier and org, on-time
closure rates, rankings of orgs and assignees, average satisfaction.

Whole UTC months of the range are read from the monthly tallies (hub/cases/tallies.py,
brought up to date first); only the partial months at its edges are counted from the cases
themselves. Both give grouped rows — (state, category root, tier, org, on_time) and
(assignee, state, on_time) — that are rolled up in Python: the cost is a few thousand
tally rows per month plus the edge days, not a scan of every case in the range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Executable, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from hub.cases import tallies
from hub.cases.lifecycle import State
from hub.db.models import Case, CaseAssigneeTally, CaseOrgTally, OrgNode, User
from hub.db.paths import in_subtree
from hub.org.seed import LEVELS

CLOSED_STATES = (State.CLOSED.value, State.EVALUATED.value)
"""Cases counted as closed (结案): on_time is set when a case closes."""
DEPARTMENT_ROLE = "department"
MAX_ASSIGNEES = 100
"""The assignee ranking lists at most this many (the best first)."""

T = TypeVar("T", "OrgTally", "AssigneeTally")
_Counts = tuple[int, int, int, int, int]


def level_depth(level: str) -> int:
    """Number of path segments of an org node at ``level`` (district = 1)."""
    return LEVELS.index(level) + 1


class Tally(BaseModel):
    """Counts and rates of one group of cases."""

    total: int = Field(description="Cases (in the range and scope).")
    closed: int = Field(description="Of which closed (states closed or evaluated).")
    on_time: int = Field(description="Of which closed by their deadline.")
    closure_rate: float | None = Field(description="closed / total; null without cases.")
    on_time_rate: float | None = Field(
        description="On-time closure rate (按期办结率): on_time / closed; null when none closed."
    )
    satisfaction: float | None = Field(
        description="Average satisfaction of the evaluated cases; null when none rated."
    )
    rated: int = Field(description="Cases with a satisfaction score.")


class OrgTally(Tally):
    """One org node of the breakdown level, with its rank."""

    org: str = Field(description="Path of the org node (a case filed higher up keeps its own).")
    name: str | None = Field(description="The node's name; null if it is not in the tree.")
    rank: int | None = Field(description="1 = best on-time closure rate; null if none closed.")


class AssigneeTally(Tally):
    """One assignee (handler), with its rank."""

    assignee: str = Field(description="User id.")
    name: str | None = Field(description="The user's name; null if not in the directory.")
    department: bool = Field(description="The user holds the role `department` (职能部门).")
    rank: int | None = Field(description="1 = best on-time closure rate; null if none closed.")


class CaseStats(BaseModel):
    """Statistics of the cases created in ``[from, to)`` inside an org subtree."""

    model_config = ConfigDict(serialize_by_alias=True, populate_by_name=True)

    org: str = Field(description="Root of the subtree counted.")
    level: str = Field(description="Level of the org breakdown.")
    since: datetime = Field(alias="from", description="Start of the range (inclusive).")
    until: datetime = Field(alias="to", description="End of the range (exclusive).")
    overall: Tally
    by_state: dict[str, int] = Field(description="Cases per state (states with none omitted).")
    by_category: dict[str, int] = Field(description="Cases per root category.")
    by_tier: dict[str, int] = Field(description="Cases per handling tier (community…).")
    by_org: list[OrgTally] = Field(
        description="Per org node at `level`, ranked: on-time closure rate (desc), then "
        "closed (desc), then path; orgs without a closed case last."
    )
    departments: list[AssigneeTally] = Field(
        description="Assignees holding the role `department`, ranked like `by_org`."
    )
    assignees: list[AssigneeTally] = Field(
        description=f"Every assignee, ranked like `by_org` (the first {MAX_ASSIGNEES})."
    )


@dataclass
class _Sum:
    """Running totals of one group."""

    total: int = 0
    closed: int = 0
    on_time: int = 0
    score: int = 0
    rated: int = 0

    def add(self, total: int, closed: int, on_time: int, score: int, rated: int) -> None:
        """Add a grouped row's counts."""
        self.total += total
        self.closed += closed
        self.on_time += on_time
        self.score += score
        self.rated += rated

    def tally(self) -> Tally:
        """Counts with their rates."""
        return Tally(
            total=self.total,
            closed=self.closed,
            on_time=self.on_time,
            closure_rate=self.closed / self.total if self.total else None,
            on_time_rate=self.on_time / self.closed if self.closed else None,
            satisfaction=self.score / self.rated if self.rated else None,
            rated=self.rated,
        )


def _cube(where: ColumnElement[bool]) -> Executable:
    """Counts per (state, category root, tier, org, on_time) of the cases matching."""
    keys = (Case.state, Case.category_root, Case.tier, Case.org, Case.on_time)
    return (
        select(
            *keys,
            func.count().label("n"),
            func.sum(Case.satisfaction).label("score"),
            func.count(Case.satisfaction).label("rated"),
        )
        .where(where)
        .group_by(*keys)
    )


def _per_assignee(where: ColumnElement[bool]) -> Executable:
    """Counts per (assignee, state, on_time) of the assigned cases matching."""
    keys = (Case.assignee, Case.state, Case.on_time)
    return (
        select(
            *keys,
            func.count().label("n"),
            func.sum(Case.satisfaction).label("score"),
            func.count(Case.satisfaction).label("rated"),
        )
        .where(where, Case.assignee.is_not(None))
        .group_by(*keys)
    )


def prefix(org: str, depth: int) -> str:
    """The first ``depth`` dotted segments of an org path (the whole path if shorter)."""
    return ".".join(org.split(".")[:depth])


@dataclass
class _Rows:
    """Grouped rows: per (org, state, on_time); per category root; per tier; per
    (assignee, state, on_time). Cube rows of the cases serve as all of the first three."""

    orgs: list[Any]
    categories: list[Any]
    tiers: list[Any]
    assigned: list[Any]


async def _grouped(session: AsyncSession, root: str, since: datetime, until: datetime) -> _Rows:
    """The grouped rows of ``[since, until)`` in ``root``'s subtree: whole months from the
    tallies, the edges from the cases."""
    await tallies.refresh(session)
    await session.commit()  # the refresh's lock is held no longer than it takes
    months = tallies.whole_months(since, until)
    edges = [(since, until)]
    rows = _Rows([], [], [], [])
    if months is not None:
        first, end = months
        edges = [(a, b) for a, b in ((since, first), (end, until)) if a < b]
        inside = [in_subtree(CaseOrgTally.org, root)]
        if session.get_bind().dialect.name == "postgresql":
            parts = {
                tallies.ORG_PART: rows.orgs,
                tallies.CATEGORY_PART: rows.categories,
                tallies.TIER_PART: rows.tiers,
            }
            for row in await session.execute(tallies.marginals(first, end, inside)):
                parts[row.part].append(row)
        else:  # SQLite has no GROUPING SETS: one query per marginal
            for target, keys in (
                (rows.orgs, ("org", "state", "on_time")),
                (rows.categories, ("category_root",)),
                (rows.tiers, ("tier",)),
            ):
                target += await session.execute(tallies.org_rows(first, end, inside, keys))
        rows.assigned += await session.execute(
            tallies.assignee_rows(first, end, [in_subtree(CaseAssigneeTally.org, root)])
        )
    for a, b in edges:
        where = and_(Case.created_at >= a, Case.created_at < b, in_subtree(Case.org, root))
        cube = list(await session.execute(_cube(where)))
        rows.orgs += cube
        rows.categories += cube
        rows.tiers += cube
        rows.assigned += await session.execute(_per_assignee(where))
    return rows


def _split(
    state: str, on_time: bool | int | None, n: int, score: int | None, rated: int
) -> _Counts:
    """A grouped row as (total, closed, on_time, satisfaction sum, rated)."""
    closed = n if state in CLOSED_STATES else 0
    on = closed if tallies.on_time_flag(on_time) else 0
    return (int(n), int(closed), int(on), int(score or 0), int(rated))


def rank_key(item: Tally, key: str) -> tuple[int, float, int, str]:
    """Sort key: with a rate first, higher rate, more closed, then by key."""
    rate = item.on_time_rate
    return (rate is None, -(rate or 0.0), -item.closed, key)


def _ranked(items: Iterable[T], key: str) -> list[T]:
    ordered = sorted(items, key=lambda item: rank_key(item, getattr(item, key)))
    rank = 0
    for item in ordered:
        if item.on_time_rate is not None:
            rank += 1
            item.rank = rank
    return ordered


async def case_stats(
    session: AsyncSession, root: str, since: datetime, until: datetime, level: str
) -> CaseStats:
    """The statistics of the cases created in ``[since, until)`` in ``root``'s subtree,
    broken down by org at ``level`` (at least ``root``'s own depth)."""
    depth = max(level_depth(level), root.count(".") + 1)
    rows = await _grouped(session, root, since, until)
    overall, by_org = _Sum(), dict[str, _Sum]()
    by_state, by_category, by_tier = dict[str, int](), dict[str, int](), dict[str, int]()
    for row in rows.orgs:
        counts = _split(row.state, row.on_time, row.n, row.score, row.rated)
        overall.add(*counts)
        by_org.setdefault(prefix(row.org, depth), _Sum()).add(*counts)
        by_state[row.state] = by_state.get(row.state, 0) + counts[0]
    for row in rows.categories:
        by_category[row.category_root] = by_category.get(row.category_root, 0) + int(row.n)
    for row in rows.tiers:
        by_tier[row.tier] = by_tier.get(row.tier, 0) + int(row.n)
    names = await _org_names(session, list(by_org))
    orgs = [
        OrgTally(org=org, name=names.get(org), rank=None, **sums.tally().model_dump())
        for org, sums in by_org.items()
    ]
    per_assignee = dict[str, _Sum]()
    for row in rows.assigned:
        counts = _split(row.state, row.on_time, row.n, row.score, row.rated)
        per_assignee.setdefault(row.assignee, _Sum()).add(*counts)
    users = await _users(session, list(per_assignee))
    assignees = []
    for user_id, sums in per_assignee.items():
        name, roles = users.get(user_id, (None, []))
        assignees.append(
            AssigneeTally(
                assignee=user_id,
                name=name,
                department=DEPARTMENT_ROLE in roles,
                rank=None,
                **sums.tally().model_dump(),
            )
        )
    ranked = _ranked(assignees, "assignee")
    departments = _ranked((a.model_copy() for a in ranked if a.department), "assignee")
    return CaseStats(
        org=root,
        level=LEVELS[min(depth, len(LEVELS)) - 1],
        since=since,
        until=until,
        overall=overall.tally(),
        by_state=dict(sorted(by_state.items())),
        by_category=dict(sorted(by_category.items())),
        by_tier=dict(sorted(by_tier.items())),
        by_org=_ranked(orgs, "org"),
        departments=departments,
        assignees=ranked[:MAX_ASSIGNEES],
    )


async def _org_names(session: AsyncSession, paths: list[str]) -> dict[str, str]:
    if not paths:
        return {}
    rows = await session.execute(select(OrgNode.path, OrgNode.name).where(OrgNode.path.in_(paths)))
    return {row.path: row.name for row in rows}


async def _users(session: AsyncSession, ids: list[str]) -> dict[str, tuple[str, list[str]]]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.name, User.roles).where(User.id.in_(ids)))
    return {row.id: (row.name, list(row.roles or [])) for row in rows}
