"""The seven-step closed loop (七步闭环) as a pure decision table: which action is allowed
in which state, to whom, at which tier, and where it leads. No I/O: the service
(hub/cases/service.py) asks ``decide`` and then writes what it answers.

report 上报 → register 立案 (or reject 不予立案) → assign 指派 → start 处置 → feed back 反馈
→ close 核查结案 (or return 退回 to the handler) → evaluate 评价. Besides the loop: escalate
上报上级 (the centre hands the case to its parent tier's centre) and supervise 督办 (a higher
tier presses the handling centre; no state change).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.envelope import org_contains


class State(StrEnum):
    """Where a case stands."""

    REPORTED = "reported"
    REGISTERED = "registered"
    REJECTED = "rejected"
    ASSIGNED = "assigned"
    HANDLING = "handling"
    FED_BACK = "fed_back"
    CLOSED = "closed"
    EVALUATED = "evaluated"


class Action(StrEnum):
    """What someone does to a case (one timeline row and one event each)."""

    REPORT = "report"
    REGISTER = "register"
    REJECT = "reject"
    ASSIGN = "assign"
    START = "start"
    FEED_BACK = "feed_back"
    CLOSE = "close"
    RETURN = "return"
    EVALUATE = "evaluate"
    ESCALATE = "escalate"
    SUPERVISE = "supervise"


TERMINAL = frozenset({State.REJECTED, State.EVALUATED})
OPEN = frozenset({State.REPORTED, State.REGISTERED, State.ASSIGNED, State.HANDLING, State.FED_BACK})
"""States of a case nobody has closed yet."""
TIMED = frozenset({State.REGISTERED, State.ASSIGNED, State.HANDLING, State.FED_BACK})
"""States in which the time limit runs (from registration to closure)."""
CENTRE_ROLES = ("dispatcher", "leader")
"""Who acts for a command centre (综治中心)."""
CENTRE_LEVELS = ("district", "street", "community")
"""Org levels that have a command centre; a grid's cases go to its community."""

# action → (states it is allowed in, state it leads to; None = unchanged)
TRANSITIONS: dict[Action, tuple[frozenset[State], State | None]] = {
    Action.REGISTER: (frozenset({State.REPORTED}), State.REGISTERED),
    Action.REJECT: (frozenset({State.REPORTED}), State.REJECTED),
    Action.ASSIGN: (frozenset({State.REGISTERED, State.ASSIGNED}), State.ASSIGNED),
    Action.START: (frozenset({State.ASSIGNED}), State.HANDLING),
    Action.FEED_BACK: (frozenset({State.HANDLING}), State.FED_BACK),
    Action.CLOSE: (frozenset({State.FED_BACK}), State.CLOSED),
    Action.RETURN: (frozenset({State.FED_BACK}), State.HANDLING),
    Action.EVALUATE: (frozenset({State.CLOSED}), State.EVALUATED),
    Action.ESCALATE: (frozenset({State.REPORTED, State.REGISTERED}), State.REPORTED),
    Action.SUPERVISE: (OPEN, None),
}

NEEDS_REASON = frozenset({Action.REJECT, Action.RETURN, Action.ESCALATE, Action.SUPERVISE})
"""Actions refused without a note saying why."""


class Who(StrEnum):
    """Whom an action is reserved to."""

    CENTRE = "centre"  # dispatcher or leader of the centre handling the case
    ASSIGNEE = "assignee"
    CENTRE_OR_REPORTER = "centre_or_reporter"
    HIGHER_CENTRE = "higher_centre"  # dispatcher or leader of a tier above the handling one


WHO: dict[Action, Who] = {
    Action.REGISTER: Who.CENTRE,
    Action.REJECT: Who.CENTRE,
    Action.ASSIGN: Who.CENTRE,
    Action.START: Who.ASSIGNEE,
    Action.FEED_BACK: Who.ASSIGNEE,
    Action.CLOSE: Who.CENTRE,
    Action.RETURN: Who.CENTRE,
    Action.EVALUATE: Who.CENTRE_OR_REPORTER,
    Action.ESCALATE: Who.CENTRE,
    Action.SUPERVISE: Who.HIGHER_CENTRE,
}


class LifecycleError(Exception):
    """An action refused: ``status`` 403 (not yours) or 409 (not now), a documented code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user (from a token), an external system or a citizen."""

    kind: str  # user, system, citizen
    id: str
    org: str | None
    roles: frozenset[str] = frozenset()
    name: str = ""

    def is_centre_staff(self) -> bool:
        """A dispatcher or leader (of whichever centre their org is)."""
        return self.kind == "user" and not self.roles.isdisjoint(CENTRE_ROLES)


@dataclass(frozen=True, slots=True)
class CaseView:
    """What ``decide`` needs to know of a case."""

    state: State
    org: str
    tier_org: str
    assignee: str | None
    reporter_kind: str
    reporter_id: str


def parent_path(path: str) -> str | None:
    """The parent node's path, or None for a root."""
    head, sep, _ = path.rpartition(".")
    return head if sep else None


def decide(case: CaseView, actor: Actor, action: Action) -> State:
    """The state ``action`` leads to, or LifecycleError saying why it is refused.

    The role check comes first (403), then the state check (409), so a caller who may never
    act on the case learns nothing of its state.
    """
    if action is Action.REPORT:
        raise LifecycleError(409, "case.invalid_transition", "a case is reported only once")
    _check_who(case, actor, action)
    allowed_in, target = TRANSITIONS[action]
    if case.state not in allowed_in:
        raise LifecycleError(
            409,
            "case.invalid_transition",
            f"{action.value} is not allowed while the case is {case.state.value}"
            f" (allowed in: {', '.join(sorted(s.value for s in allowed_in))})",
        )
    if action is Action.ESCALATE and parent_path(case.tier_org) is None:
        raise LifecycleError(
            409, "case.no_higher_tier", "the case is already at the top tier's centre"
        )
    return case.state if target is None else target


def _check_who(case: CaseView, actor: Actor, action: Action) -> None:
    who = WHO[action]
    if who is Who.ASSIGNEE:
        if actor.kind != "user" or actor.id != case.assignee:
            raise LifecycleError(
                403, "case.not_assignee", f"only the case's assignee may {action.value} it"
            )
        return
    at_centre = actor.is_centre_staff() and actor.org == case.tier_org
    if who is Who.CENTRE and not at_centre:
        raise LifecycleError(
            403,
            "case.wrong_tier",
            f"{action.value} is for the dispatchers and leaders of {case.tier_org},"
            " the centre handling the case",
        )
    if who is Who.CENTRE_OR_REPORTER:
        reporter = actor.kind == case.reporter_kind and actor.id == case.reporter_id
        if not (at_centre or reporter):
            raise LifecycleError(
                403,
                "case.wrong_tier",
                f"{action.value} is for the case's reporter or the centre {case.tier_org}",
            )
    if who is Who.HIGHER_CENTRE:
        higher = (
            actor.is_centre_staff()
            and actor.org is not None
            and actor.org != case.tier_org
            and org_contains(actor.org, case.tier_org)
        )
        if not higher:
            raise LifecycleError(
                403,
                "case.wrong_tier",
                f"supervision (督办) is issued by a centre above {case.tier_org}",
            )


def handling_centre(org: str, level_of: dict[str, str]) -> str:
    """The centre that first handles a case located at ``org``: the nearest node at or above
    it whose level has a centre (a grid's community)."""
    path: str | None = org
    while path is not None:
        if level_of.get(path) in CENTRE_LEVELS:
            return path
        path = parent_path(path)
    return org.split(".", 1)[0]


def district_of(org: str) -> str:
    """The district (the root of the path) a case belongs to, for its number."""
    return org.split(".", 1)[0]
