"""People of the demo directory who take part in cases, and small helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.integration.api.conftest import Api, Reply
from tests.support.hubs import token

CaseSettingsFactory = Callable[..., dict[str, object]]


@dataclass(frozen=True)
class Person:
    """A demo user with their org and roles."""

    id: str
    org: str
    roles: tuple[str, ...]

    @property
    def token(self) -> str:
        """A token for them."""
        return token(self.id, self.org, list(self.roles))


WORKER = Person("s01c01g01-worker", "d01.s01.c01.g01", ("grid_worker",))
OTHER_WORKER = Person("s01c01g02-worker", "d01.s01.c01.g02", ("grid_worker",))
GRID_LEADER = Person("s01c01-leader", "d01.s01.c01", ("grid_leader",))
COMMUNITY = Person("s01c01-dispatcher", "d01.s01.c01", ("dispatcher",))
OTHER_COMMUNITY = Person("s01c02-dispatcher", "d01.s01.c02", ("dispatcher",))
STREET = Person("s01-dispatcher", "d01.s01", ("dispatcher",))
STREET_LEADER = Person("s01-leader", "d01.s01", ("leader",))
OTHER_STREET = Person("s02-dispatcher", "d01.s02", ("dispatcher",))
DISTRICT = Person("d01-dispatcher", "d01", ("dispatcher",))
DEPARTMENT = Person("dept-citymgmt", "d01", ("department",))

GRID = "d01.s01.c01.g01"


def new_case(**fields: Any) -> dict[str, Any]:
    """A report body for a case in the worker's grid."""
    body: dict[str, Any] = {
        "title": "楼道堆放杂物",
        "description": "3号楼2单元楼道堆满纸箱，存在消防隐患",
        "category": "safety.fire",
        "priority": "normal",
        "org": GRID,
    }
    body.update(fields)
    return body


async def report(api: Api, person: Person = WORKER, **fields: Any) -> dict[str, Any]:
    """Report a case as ``person``; the stored case."""
    reply = await api.as_(person.token).post("/api/v1/cases", new_case(**fields))
    assert reply.status == 201, reply.body
    case: dict[str, Any] = reply.body
    return case


async def act(api: Api, person: Person, case_id: str, action: str, **fields: Any) -> Reply:
    """Post one action as ``person``."""
    body = {"action": action, **fields}
    return await api.as_(person.token).post(f"/api/v1/cases/{case_id}/actions", body)


async def must(
    api: Api, person: Person, case_id: str, action: str, **fields: Any
) -> dict[str, Any]:
    """Post one action that must succeed; the case after it."""
    reply = await act(api, person, case_id, action, **fields)
    assert reply.status == 200, (action, reply.body)
    case: dict[str, Any] = reply.body
    return case
