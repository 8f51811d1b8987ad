"""The case service: reports, the actions of the loop, and the timeline they leave.

Every change is one transaction holding the case row, its timeline row (全程留痕) and its
event in the outbox, so a crash never leaves a change without its record or its push.
Adapters that mirror cases elsewhere (city management) register ``on_change`` hooks, which
run inside that same transaction: their delivery rows commit with the change or not at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.channels import user_channel
from hub.auth.tokens import Identity
from hub.cases.categories import Categories
from hub.cases.lifecycle import (
    NEEDS_REASON,
    Action,
    Actor,
    CaseView,
    LifecycleError,
    State,
    decide,
    district_of,
    handling_centre,
    parent_path,
)
from hub.cases.models import CaseAction, CaseReport, ExternalRef, details_of
from hub.config import CaseSettings
from hub.db.bulk import insert_new
from hub.db.models import (
    Case,
    CaseAttachment,
    CaseCounter,
    CaseEntry,
    OrgNode,
    OutboxEvent,
    User,
    utcnow,
)
from hub.db.outbox import OutboxRelay, outbox_row
from hub.errors import HubError
from hub.events import CASE_EVENTS
from hub.publisher import channels_for
from protocols.envelope import new_event_id, org_contains

if TYPE_CHECKING:
    from hub.cases.intake import CaseIntake

log = structlog.get_logger(__name__)

SOURCE = "hub/cases"
PAST = {
    "report": "reported", "register": "registered", "reject": "rejected",
    "assign": "assigned", "start": "started", "feed_back": "fed_back", "close": "closed",
    "return": "returned", "evaluate": "evaluated", "escalate": "escalated",
    "supervise": "supervised", "update": "updated", "due_soon": "due_soon",
    "overdue": "overdue", "consult_start": "consult_started", "consult_end": "consult_ended",
    "consult_record": "consult_recorded",
}  # fmt: skip
"""Timeline action → event type suffix (``case.<past>``)."""
PERSONAL = frozenset({"assign", "return", "supervise", "due_soon", "overdue"})
"""Actions whose event also goes to the assignee's personal channel."""
DIRECT_REPORT_ROLES = ("grid_worker", "grid_leader")
HUB_ACTOR = Actor(kind="system", id="hub", org=None, name="Grid Hub")

ChangeHook = Callable[[AsyncSession, Case, CaseEntry], Awaitable[None]]
Locate = Callable[[float, float], str | None]


@dataclass(frozen=True, slots=True)
class Report:
    """One report waiting to become a case."""

    actor: Actor
    spec: CaseReport
    external: ExternalRef | None = None


@dataclass(frozen=True, slots=True)
class _Change:
    """What a timeline row says beyond who did which action when."""

    note: str = ""
    from_state: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra_channels: tuple[str, ...] = ()


_NO_CHANGE = _Change()


class CaseError(HubError):
    """A case request refused: status, documented code, message, optional details."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(code, message, status)
        self.details = details


def actor_of(identity: Identity) -> Actor:
    """The actor a signed-in user is."""
    return Actor(kind="user", id=identity.user, org=identity.org, roles=identity.roles)


def case_channel(case_id: str) -> str:
    """The per-case channel."""
    return f"case:{case_id}"


def actor_label(actor: Actor) -> str:
    """How an actor appears in events: a user id, ``system:<id>`` or ``citizen:<id>``."""
    return actor.id if actor.kind == "user" else f"{actor.kind}:{actor.id}"


def can_view(actor: Actor, case: Case) -> bool:
    """Who may see a case: anyone whose org subtree holds it, its assignee, its reporter."""
    if actor.org is not None and org_contains(actor.org, case.org):
        return True
    if actor.kind != "user":
        return False
    return actor.id == case.assignee or (
        case.reporter_kind == "user" and actor.id == case.reporter_id
    )


def view_of(case: Case) -> CaseView:
    """What the lifecycle needs to know of ``case``."""
    return CaseView(
        state=State(case.state),
        org=case.org,
        tier_org=case.tier_org,
        assignee=case.assignee,
        reporter_kind=case.reporter_kind,
        reporter_id=case.reporter_id,
    )


class CaseService:
    """Reports cases, applies the loop's actions, keeps the timeline."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        relay: OutboxRelay,
        categories: Categories,
        settings: CaseSettings,
        locate: Locate,
    ) -> None:
        self.sessions = sessions
        self.relay = relay
        self.categories = categories
        self.settings = settings
        self._locate = locate
        self.on_change: list[ChangeHook] = []
        """Called inside the transaction of every change (after its timeline row)."""
        self.intake: CaseIntake | None = None
        """The group commit of reports, while it runs (hub/cases/intake.py)."""

    async def may_read_channel(self, identity: Identity, case_id: str) -> bool:
        """The ``case:<id>`` channel guard: readable by whoever may see the case."""
        if len(case_id) != len(new_event_id()):
            return False
        async with self.sessions() as session:
            case = await session.get(Case, case_id)
        return case is not None and can_view(actor_of(identity), case)

    # -- report ---------------------------------------------------------------------------

    async def report(
        self, actor: Actor, spec: CaseReport, *, external: ExternalRef | None = None
    ) -> Case:
        """Store a new case in state ``reported`` at the centre that handles its place
        (through the intake's group commit when it runs, else in a transaction of its own)."""
        self.check_category(spec)
        if self.intake is not None:
            case = await self.intake.submit(actor, spec, external)
        else:
            async with self.sessions() as session, session.begin():
                case = await self.new_case(session, actor, spec, utcnow(), external)
            self.relay.notify()
        log.debug("case reported", case_id=case.id, number=case.number, tier_org=case.tier_org)
        return case

    def check_category(self, spec: CaseReport) -> None:
        """422 for a category that is not in the tree."""
        if spec.category not in self.categories.root_of:
            raise CaseError(
                422,
                "case.unknown_category",
                f"no category {spec.category!r}",
                [{"loc": "category", "msg": "not a code of the category tree"}],
            )

    async def new_case(
        self,
        session: AsyncSession,
        actor: Actor,
        spec: CaseReport,
        now: datetime,
        external: ExternalRef | None = None,
    ) -> Case:
        """Add a reported case, its first timeline row and event to ``session``'s
        transaction (for callers that create cases inside their own transaction)."""
        (outcome,) = await self.new_cases(session, [Report(actor, spec, external)], now)
        if isinstance(outcome, CaseError):
            raise outcome
        return outcome

    async def new_cases(
        self, session: AsyncSession, reports: list[Report], now: datetime, *, bulk: bool = False
    ) -> list[Case | CaseError]:
        """Add several reported cases to ``session``'s transaction with a handful of
        statements whatever their number (one lookup of the org nodes, one of the
        reporters' names, one counter update per district): each report's case, or the
        CaseError that refuses it (the others go on). With ``bulk`` the cases, their
        timeline rows and events are inserted at once, outside the session (hub/db/bulk.py):
        the returned cases are then detached copies, not for changing in this transaction."""
        orgs: list[str | CaseError] = []
        for report in reports:
            try:
                self.check_category(report.spec)
                orgs.append(self._case_org(report.actor, report.spec))
            except CaseError as err:
                orgs.append(err)
        levels = await self._levels(session, [o for o in orgs if isinstance(o, str)])
        names = await self._names(session, [r.actor for r in reports])
        outcomes: list[Case | CaseError] = []
        for report, org in zip(reports, orgs, strict=True):
            try:
                if isinstance(org, CaseError):
                    raise org
                outcomes.append(self._build(report, org, levels, now))
            except CaseError as err:
                outcomes.append(err)
        cases = [c for c in outcomes if isinstance(c, Case)]
        await self._number(session, cases, now.year)
        actors: list[Actor] = []
        for report, outcome in zip(reports, outcomes, strict=True):
            if isinstance(outcome, Case):
                actor = report.actor
                if not actor.name and actor.id in names:
                    actor = dataclasses.replace(actor, name=names[actor.id])
                    outcome.reporter_name = outcome.reporter_name or actor.name
                actors.append(actor)
        if not bulk:
            session.add_all(cases)
            for case, actor in zip(cases, actors, strict=True):
                await self.record(session, case, "report", actor, now=now)
            return outcomes
        await insert_new(session, cases)  # before the hooks: what they add refers to them
        rows: list[CaseEntry | OutboxEvent] = []
        for case, actor in zip(cases, actors, strict=True):
            entry, event = self._timeline_row(case, "report", actor, now)
            rows += (entry, event)
            for hook in self.on_change:
                await hook(session, case, entry)
        await insert_new(session, rows)
        return outcomes

    def _build(self, report: Report, org: str, levels: dict[str, str], now: datetime) -> Case:
        actor, spec, external = report.actor, report.spec, report.external
        if org not in levels:
            raise CaseError(
                422, "case.unknown_org", f"no org node {org}", [{"loc": "org", "msg": "unknown"}]
            )
        if spec.direct_to_district:
            if not (actor.kind == "user" and not actor.roles.isdisjoint(DIRECT_REPORT_ROLES)):
                raise CaseError(
                    403,
                    "case.direct_report_forbidden",
                    "emergency direct reports (越级直报) are made by grid workers and leaders",
                )
            tier_org = district_of(org)
        else:
            tier_org = handling_centre(org, levels)
        location = spec.location
        return Case(
            id=new_event_id(),
            number="",
            category=spec.category,
            category_root=self.categories.root_of[spec.category],
            priority=spec.priority,
            title=spec.title,
            description=spec.description,
            lat=location.lat if location else None,
            lon=location.lon if location else None,
            address=location.address if location else None,
            org=org,
            tier_org=tier_org,
            tier=levels.get(tier_org, "district"),
            channel=spec.channel,
            reporter_kind=actor.kind,
            reporter_id=actor.id,
            reporter_name=spec.reporter_name or actor.name,
            reporter_phone=spec.reporter_phone,
            state=State.REPORTED.value,
            external_system=external.system if external else None,
            external_id=external.id if external else None,
            external_updated_at=external.updated_at if external else None,
            attributes=dict(spec.attributes),
            created_at=now,
            updated_at=now,
            version=1,
        )

    def _case_org(self, actor: Actor, spec: CaseReport) -> str:
        """Where the case belongs: the given org, else the grid containing the location,
        else the reporter's own org; always inside the reporter's scope."""
        if spec.org is not None:
            org = spec.org
            scope = actor.org
        elif spec.location is not None and (
            grid := self._locate(spec.location.lat, spec.location.lon)
        ):
            # Anyone may report what they see anywhere in their own district.
            org, scope = grid, district_of(actor.org) if actor.org else None
        elif actor.org is not None:
            return actor.org
        else:
            raise CaseError(
                422, "case.no_org", "say where the case is: an org or a location inside a grid"
            )
        if scope is None or not org_contains(scope, org):
            raise CaseError(403, "case.outside_scope", f"{org} is outside your org {actor.org}")
        return org

    async def _levels(self, session: AsyncSession, orgs: Iterable[str]) -> dict[str, str]:
        """Level of each of ``orgs`` and of their ancestors (absent: no such node)."""
        paths: set[str] = set()
        for org in orgs:
            path: str | None = org
            while path is not None and path not in paths:
                paths.add(path)
                path = parent_path(path)
        if not paths:
            return {}
        rows = await session.execute(
            select(OrgNode.path, OrgNode.level).where(OrgNode.path.in_(paths))
        )
        return {row.path: row.level for row in rows}

    async def _names(self, session: AsyncSession, actors: Iterable[Actor]) -> dict[str, str]:
        """Display names of the users among ``actors`` that came without one."""
        wanted = {a.id for a in actors if a.kind == "user" and not a.name}
        if not wanted:
            return {}
        rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
        return {row.id: row.name for row in rows}

    async def _number(self, session: AsyncSession, cases: list[Case], year: int) -> None:
        """Hand out the cases' numbers: one counter update per district for all of them.
        Done last before the writes: on PostgreSQL the counter row stays locked until
        commit."""
        by_district: dict[str, list[Case]] = {}
        for case in cases:
            by_district.setdefault(district_of(case.org), []).append(case)
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        for district, group in sorted(by_district.items()):
            statement = (
                insert(CaseCounter)
                .values(district=district, year=year, last=len(group))
                .on_conflict_do_update(
                    index_elements=[CaseCounter.district, CaseCounter.year],
                    set_={"last": CaseCounter.last + len(group)},
                )
                .returning(CaseCounter.last)
            )
            last = (await session.execute(statement)).scalar_one()
            for offset, case in enumerate(group):
                case.number = f"{district}-{year}-{last - len(group) + 1 + offset:06d}"

    # -- actions --------------------------------------------------------------------------

    async def act(self, actor: Actor, case_id: str, spec: CaseAction) -> Case:
        """Apply one action of the loop (or refuse it with a clear code)."""
        action = Action(spec.action)
        if action in NEEDS_REASON and not spec.note:
            raise CaseError(
                422,
                "case.reason_required",
                f"{action.value} needs a note saying why",
                [{"loc": "note", "msg": "required for this action"}],
            )
        now = utcnow()
        async with self.sessions() as session, session.begin():
            case = await self.locked(session, actor, case_id)
            if not actor.name and (name := (await self._names(session, [actor])).get(actor.id)):
                actor = dataclasses.replace(actor, name=name)
            if spec.if_version is not None and spec.if_version != case.version:
                raise CaseError(
                    409,
                    "case.version_conflict",
                    f"the case changed (version {case.version}, you had {spec.if_version})",
                )
            try:
                target = decide(view_of(case), actor, action)
            except LifecycleError as err:
                raise CaseError(err.status, err.code, err.message) from err
            await self._check_attachments(session, case, spec.attachments)
            details = details_of(spec)
            from_state = case.state
            await self._apply(session, case, action, spec, details, now)
            case.state = target.value
            await self.record(
                session, case, action.value, actor, note=spec.note, from_state=from_state,
                details=details, now=now,
            )  # fmt: skip
        self.relay.notify()
        log.info("case action", case_id=case.id, action=action.value, state=case.state)
        return case

    async def locked(self, session: AsyncSession, actor: Actor, case_id: str) -> Case:
        """The case, locked for this transaction, if ``actor`` may see it: a row lock on
        PostgreSQL; on SQLite, which has none, a no-op write first takes the database's
        write lock, so two actions on one case run one after the other on what the first
        committed (a read first would leave the second on a stale snapshot)."""
        if session.get_bind().dialect.name == "sqlite":
            await session.execute(
                update(Case).where(Case.id == case_id).values(version=Case.version)
            )
        case = await session.get(Case, case_id, with_for_update=True)
        if case is None or not can_view(actor, case):
            raise CaseError(404, "case.not_found", f"no case {case_id} for you")
        return case

    async def _apply(
        self,
        session: AsyncSession,
        case: Case,
        action: Action,
        spec: CaseAction,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        """The facts an action changes besides the state."""
        if action is Action.REGISTER:
            case.registered_at = now
            limit = self.categories.time_limit(case.category, case.priority)
            self.start_clock(case, now, now + limit)
            details["due_at"] = case.due_at.isoformat() if case.due_at else None
        elif action is Action.ASSIGN:
            assert spec.assignee is not None
            user = await self._assignee(session, case, spec.assignee)
            case.assignee, case.assignee_name = user.id, user.name
            details["assignee"] = user.id
            if spec.deadline is not None:
                if spec.deadline <= now:
                    raise CaseError(422, "case.invalid_deadline", "the deadline is in the past")
                self.start_clock(case, now, spec.deadline)
                details["due_at"] = spec.deadline.isoformat()
        elif action is Action.CLOSE:
            case.closed_at = now
            case.on_time = case.due_at is None or now <= case.due_at
            details["on_time"] = case.on_time
        elif action is Action.EVALUATE:
            case.satisfaction = spec.satisfaction
        elif action is Action.ESCALATE:
            above = parent_path(case.tier_org)
            assert above is not None  # decide() refuses escalation from the top
            levels = await self._levels(session, [above])
            details["from_tier_org"] = case.tier_org
            case.tier_org = handling_centre(above, levels)
            case.tier = levels.get(case.tier_org, "district")
            details["to_tier_org"] = case.tier_org
            case.assignee = case.assignee_name = None
            case.registered_at = None
            self.stop_clock(case)

    async def _assignee(self, session: AsyncSession, case: Case, user_id: str) -> User:
        """An active user inside the handling centre's subtree, or a department liaison
        at or above it (departments sit at the district)."""
        user = await session.get(User, user_id)
        if user is None or not user.active:
            raise CaseError(
                422,
                "case.unknown_assignee",
                f"no active user {user_id}",
                [{"loc": "assignee", "msg": "unknown or inactive user"}],
            )
        inside = org_contains(case.tier_org, user.org)
        department_above = "department" in user.roles and org_contains(user.org, case.tier_org)
        if not (inside or department_above):
            raise CaseError(
                403,
                "case.assignee_outside_scope",
                f"{user_id} ({user.org}) is neither under {case.tier_org} nor a department",
            )
        return user

    async def _check_attachments(self, session: AsyncSession, case: Case, ids: list[str]) -> None:
        if not ids:
            return
        found = set(
            await session.scalars(
                select(CaseAttachment.id).where(
                    CaseAttachment.case_id == case.id, CaseAttachment.id.in_(ids)
                )
            )
        )
        missing = [i for i in ids if i not in found]
        if missing:
            raise CaseError(
                422,
                "case.unknown_attachment",
                f"not attachments of this case: {', '.join(missing[:5])}",
                [{"loc": "attachments", "msg": "upload them to the case first"}],
            )

    def start_clock(self, case: Case, start: datetime, due: datetime) -> None:
        """Run a new time limit from ``start`` to ``due``; its alerts may fire again."""
        due = due.astimezone(UTC)
        case.clock_started_at = start
        case.due_at = due
        case.warn_at = start + (due - start) * self.settings.due_soon_fraction
        case.due_soon_raised_at = case.overdue_raised_at = None

    @staticmethod
    def stop_clock(case: Case) -> None:
        """No time limit runs (the case went to another centre, which registers anew)."""
        case.clock_started_at = case.due_at = case.warn_at = None
        case.due_soon_raised_at = case.overdue_raised_at = None

    # -- the record -----------------------------------------------------------------------

    async def record(
        self,
        session: AsyncSession,
        case: Case,
        action: str,
        actor: Actor,
        *,
        note: str = "",
        from_state: str | None = None,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
        extra_channels: Iterable[str] = (),
    ) -> CaseEntry:
        """Write a timeline row and its event (outbox) for a change already applied to
        ``case``, bump the version, and run the ``on_change`` hooks."""
        change = _Change(note, from_state, details or {}, tuple(extra_channels))
        entry, event = self._timeline_row(case, action, actor, now or utcnow(), change)
        session.add(event)
        session.add(entry)
        for hook in self.on_change:
            await hook(session, case, entry)
        return entry

    def _timeline_row(
        self, case: Case, action: str, actor: Actor, now: datetime, change: _Change = _NO_CHANGE
    ) -> tuple[CaseEntry, OutboxEvent]:
        """The timeline row and outbox row of a change applied to ``case`` (whose version
        and update time it bumps), not yet added to a session."""
        note, from_state = change.note, change.from_state
        if action != "report":
            case.version += 1
        case.updated_at = now
        data = CASE_EVENTS[f"case.{PAST[action]}"](
            case_id=case.id,
            number=case.number,
            title=case.title,
            category=case.category,
            priority=case.priority,
            state=case.state,
            from_state=from_state,
            tier_org=case.tier_org,
            assignee=case.assignee,
            actor=actor_label(actor),
            note=note,
            due_at=case.due_at.isoformat() if case.due_at else None,
            at=now.isoformat(),
        )
        envelope = data.envelope(source=SOURCE, org=case.org, subject=case.id)
        channels = [case_channel(case.id), *change.extra_channels]
        if action in PERSONAL and case.assignee:
            channels.append(user_channel(case.assignee))
        entry = CaseEntry(
            case_id=case.id,
            action=action,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_name=actor.name,
            actor_org=actor.org,
            from_state=from_state,
            to_state=case.state,
            note=note,
            details=dict(change.details),
            event_id=envelope.id,
            at=now,
        )
        return entry, outbox_row(envelope, channels_for(envelope, channels))
