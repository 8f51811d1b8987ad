"""Monthly tallies of cases: what the statistics read for whole months instead of scanning
every case created in them.

Two tables hold, per UTC month of creation, the counts the statistics group by
(hub/cases/stats.py): (state, category root, tier, org, on_time) and (org, assignee, state,
on_time), with satisfaction sums. ``case_tally_keys`` remembers what each case was counted
as. They are brought up to date at the start of each statistics request: every case whose
``updated_at`` is after the last refresh (less :data:`LAG`, for writes that committed after
that refresh read) is moved — its old keys counted out, its current ones in — so the work
is proportional to the cases that changed, found through an index on ``updated_at``.
Every change to a tallied field goes through ``CaseService.record`` or the creation of a
case, which set ``updated_at``; cases are never deleted. The first refresh — the first
statistics request after the migration — counts every case once (about 20 s for a million
cases on the bench machine); it is not done at start, where its write lock would hold up
the hub's other writers on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Executable,
    Select,
    SQLColumnExpression,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from hub.db.models import (
    Case,
    CaseAssigneeTally,
    CaseOrgTally,
    CaseTallyKey,
    CaseTallyMark,
    TZDateTime,
    utcnow,
)

LAG = timedelta(minutes=5)
"""How far back of the last refresh changes are looked for again: a transaction that set
``updated_at`` before the refresh but committed after it is still seen."""
MARK_ID = 1
CHUNK = 2000
"""Changed cases moved per statement."""


def month_start(moment: datetime) -> datetime:
    """The first instant of ``moment``'s UTC month."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(month: datetime) -> datetime:
    """The first instant of the following month."""
    return (month + timedelta(days=32)).replace(day=1)


def whole_months(since: datetime, until: datetime) -> tuple[datetime, datetime] | None:
    """The whole months inside ``[since, until)`` as ``[first, end)``, or None if none."""
    first = month_start(since)
    if first < since:
        first = next_month(first)
    end = month_start(until)
    return (first, end) if first < end else None


def on_time_key() -> ColumnElement[int]:
    """``on_time`` as a key column: 1 on time, 0 late, -1 not closed."""
    return case((Case.on_time.is_(None), -1), (Case.on_time.is_(True), 1), else_=0)


def on_time_flag(value: bool | int | None) -> bool:
    """A grouped ``on_time`` (a case's bool or a tally's key) as "closed on time"."""
    return value in (True, 1)


async def refresh(session: AsyncSession) -> int:
    """Bring the tallies up to date; how many cases were (re)counted."""
    now = utcnow()
    mark = await _locked_mark(session)
    if mark is None:
        counted = await _build(session)
    else:
        changed = list(
            await session.scalars(select(Case.id).where(Case.updated_at > mark.seen_until - LAG))
        )
        for first in range(0, len(changed), CHUNK):
            await _move(session, changed[first : first + CHUNK])
        counted = len(changed)
    await session.execute(
        update(CaseTallyMark).where(CaseTallyMark.id == MARK_ID).values(seen_until=now)
    )
    return counted


async def _locked_mark(session: AsyncSession) -> CaseTallyMark | None:
    """The mark row, locked for this transaction (created if missing: None then)."""
    dialect = session.get_bind().dialect.name
    values = {"id": MARK_ID, "seen_until": datetime(1970, 1, 1, tzinfo=UTC)}
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    created = await session.execute(
        upsert(CaseTallyMark).values(values).on_conflict_do_nothing().returning(CaseTallyMark.id)
    )
    if created.first() is not None:
        return None
    query = select(CaseTallyMark).where(CaseTallyMark.id == MARK_ID)
    if dialect == "postgresql":
        query = query.with_for_update()  # concurrent refreshes take turns
    mark = (await session.scalars(query.execution_options(populate_existing=True))).one()
    return mark


def _month_of(column: SQLColumnExpression[datetime], dialect: str) -> ColumnElement[datetime]:
    """The UTC month of a timestamp column, in SQL, equal to :func:`month_start`'s."""
    if dialect == "postgresql":
        return func.date_trunc("month", column, "UTC", type_=TZDateTime)
    # SQLite keeps UTC text in SQLAlchemy's format: keep year and month, zero the rest.
    return func.strftime("%Y-%m-01 00:00:00.000000", column, type_=TZDateTime)


def _keys_from_cases(dialect: str) -> Select[*tuple[Any, ...]]:
    return select(
        Case.id, _month_of(Case.created_at, dialect), Case.state, Case.category_root,
        Case.tier, Case.org, on_time_key(), Case.assignee, Case.satisfaction,
    )  # fmt: skip


KEY_COLUMNS = ["case_id", "month", "state", "category_root", "tier", "org", "on_time",
               "assignee", "satisfaction"]  # fmt: skip
ORG_KEYS = ["month", "state", "category_root", "tier", "org", "on_time"]
ASSIGNEE_KEYS = ["month", "org", "assignee", "state", "on_time"]
COUNTS = ["n", "score", "rated"]


def _counted(keys: list[str], sign: int, where: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """Counts of ``case_tally_keys`` rows matching ``where`` grouped by ``keys``."""
    k = CaseTallyKey
    columns = [getattr(k, name) for name in keys]
    return (
        select(
            *columns,
            (func.count() * sign).label("n"),
            (func.coalesce(func.sum(k.satisfaction), 0) * sign).label("score"),
            (func.count(k.satisfaction) * sign).label("rated"),
        )
        .where(where)
        .group_by(*columns)
    )


async def _add(session: AsyncSession, sign: int, where: ColumnElement[bool]) -> None:
    """Add (sign 1) or take away (-1) the keyed cases matching ``where`` to the tallies."""
    dialect = session.get_bind().dialect.name
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    assigned = and_(where, CaseTallyKey.assignee.is_not(None))
    for table, keys, rows in (
        (CaseOrgTally, ORG_KEYS, _counted(ORG_KEYS, sign, where)),
        (CaseAssigneeTally, ASSIGNEE_KEYS, _counted(ASSIGNEE_KEYS, sign, assigned)),
    ):
        statement = upsert(table).from_select(keys + COUNTS, rows)
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=keys,
                set_={c: getattr(table, c) + getattr(excluded, c) for c in COUNTS},
            )
        )


async def _move(session: AsyncSession, case_ids: list[str]) -> None:
    """Count some cases out under what they were and in under what they are."""
    dialect = session.get_bind().dialect.name
    ours = CaseTallyKey.case_id.in_(case_ids)
    await _add(session, -1, ours)
    await session.execute(delete(CaseTallyKey).where(ours))
    await session.execute(
        insert(CaseTallyKey).from_select(
            KEY_COLUMNS, _keys_from_cases(dialect).where(Case.id.in_(case_ids))
        )
    )
    await _add(session, 1, ours)


async def _build(session: AsyncSession) -> int:
    """Count every case from scratch."""
    dialect = session.get_bind().dialect.name
    for table in (CaseOrgTally, CaseAssigneeTally, CaseTallyKey):
        await session.execute(delete(table))
    result = await session.execute(
        insert(CaseTallyKey).from_select(KEY_COLUMNS, _keys_from_cases(dialect))
    )
    await _add(session, 1, literal(True))
    return int(getattr(result, "rowcount", 0) or 0)


def _sums(t: type[CaseOrgTally] | type[CaseAssigneeTally]) -> list[ColumnElement[int]]:
    """The summed counts of tally rows, labelled as the statistics read them."""
    return [
        func.sum(t.n).label("n"),
        func.sum(t.score).label("score"),
        func.sum(t.rated).label("rated"),
    ]


def org_rows(
    first: datetime, end: datetime, where: Iterable[ColumnElement[bool]], keys: Iterable[str]
) -> Executable:
    """Tallied counts of ``[first, end)`` per the given keys of the org tallies (e.g.
    ``("org", "state", "on_time")``): the marginals the statistics need, not the cube."""
    t = CaseOrgTally
    columns = [getattr(t, key) for key in keys]
    return (
        select(*columns, *_sums(t))
        .where(t.month >= first, t.month < end, *where)
        .group_by(*columns)
        .having(func.sum(t.n) > 0)
    )


ORG_PART, CATEGORY_PART, TIER_PART = 3, 1, 2
"""``grouping(category_root, tier)`` of the rows of :func:`marginals`: which set they are."""


def marginals(first: datetime, end: datetime, where: Iterable[ColumnElement[bool]]) -> Executable:
    """PostgreSQL: the three marginals the statistics need — per (org, state, on_time), per
    category root, per tier — in one pass over the org tallies (GROUPING SETS); ``part``
    tells them apart (:data:`ORG_PART` …)."""
    t = CaseOrgTally
    return (
        select(
            func.grouping(t.category_root, t.tier).label("part"),
            t.org,
            t.state,
            t.on_time,
            t.category_root,
            t.tier,
            *_sums(t),
        )
        .where(t.month >= first, t.month < end, *where)
        .group_by(
            func.grouping_sets(
                tuple_(t.org, t.state, t.on_time), tuple_(t.category_root), tuple_(t.tier)
            )
        )
        .having(func.sum(t.n) > 0)
    )


def assignee_rows(
    first: datetime, end: datetime, where: Iterable[ColumnElement[bool]]
) -> Executable:
    """Tallied counts per (assignee, state, on_time) of ``[first, end)``."""
    t = CaseAssigneeTally
    keys = (t.assignee, t.state, t.on_time)
    return (
        select(*keys, *_sums(t))
        .where(t.month >= first, t.month < end, *where)
        .group_by(*keys)
        .having(func.sum(t.n) > 0)
    )
