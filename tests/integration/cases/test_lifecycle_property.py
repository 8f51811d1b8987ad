"""Property: whatever sequence of actions anyone tries, a case only ever moves along the
lifecycle's edges, refused actions change nothing, and the timeline is one unbroken chain."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis import target as steer
from sqlalchemy import select

from hub.cases.lifecycle import TRANSITIONS, Action, Actor, State
from hub.cases.models import CaseAction, CaseReport
from hub.cases.service import CaseError
from hub.db.models import Case, CaseEntry
from tests.conftest import RunningHub
from tests.integration.cases.helpers import (
    COMMUNITY,
    DEPARTMENT,
    DISTRICT,
    GRID,
    GRID_LEADER,
    OTHER_WORKER,
    STREET,
    WORKER,
    Person,
)

PEOPLE = [WORKER, OTHER_WORKER, GRID_LEADER, COMMUNITY, STREET, DISTRICT, DEPARTMENT]
ACTIONS = [a for a in Action if a is not Action.REPORT]


def actor(person: Person) -> Actor:
    """The person as the service sees them."""
    return Actor("user", person.id, person.org, frozenset(person.roles), person.id)


def spec(action: Action, assignee: Person, satisfaction: int, with_note: bool) -> CaseAction:
    """A well-formed request for ``action`` (refusals come from the lifecycle, not input)."""
    fields: dict[str, object] = {"action": action.value, "note": "理由" if with_note else ""}
    if action is Action.ASSIGN:
        fields["assignee"] = assignee.id
    if action is Action.EVALUATE:
        fields["satisfaction"] = satisfaction
    return CaseAction.model_validate(fields)


steps = st.lists(
    st.tuples(
        st.sampled_from(PEOPLE),
        st.sampled_from(ACTIONS),
        st.sampled_from(PEOPLE),
        st.integers(1, 5),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
async def test_random_action_sequences_never_leave_the_lifecycle(
    running_hub: RunningHub,
    steps: list[tuple[Person, Action, Person, int, bool]],
) -> None:
    service = running_hub.hub.cases
    report = CaseReport(title="随机", category="other", org=GRID)
    case = await service.report(actor(WORKER), report)
    state, version = State.REPORTED, 1
    for person, action, assignee, satisfaction, with_note in steps:
        try:
            after = await service.act(
                actor(person), case.id, spec(action, assignee, satisfaction, with_note)
            )
        except CaseError:
            async with service.sessions() as session:
                stored = await session.get(Case, case.id)
            assert stored is not None
            assert (stored.state, stored.version) == (state.value, version)
            continue
        allowed_in, target = TRANSITIONS[action]
        assert state in allowed_in, (state, action)
        assert after.state == (target or state).value
        state, version = State(after.state), after.version
        assert version > 1
    async with service.sessions() as session:
        entries = list(
            await session.scalars(
                select(CaseEntry).where(CaseEntry.case_id == case.id).order_by(CaseEntry.id)
            )
        )
    assert entries[0].action == "report" and entries[0].from_state is None
    for before, entry in pairwise(entries):
        assert entry.from_state == before.to_state
        allowed_in, target = TRANSITIONS[Action(entry.action)]
        assert State(entry.from_state) in allowed_in
        assert entry.to_state == (target.value if target else entry.from_state)
    assert entries[-1].to_state == state.value
    steer(float(len(entries)), label="timeline length")  # towards deep walks
