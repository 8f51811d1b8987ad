"""Cases through the REST API: a grid worker reports one each tick, and earlier cases move
one step along the seven-step loop, each step taken by the person the loop gives it to (the
centre's dispatcher registers, assigns and closes; the assignee starts and feeds back; the
reporter evaluates). Now and then a reject, an escalation, a return."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.demo.api import DemoApiError, HubApi
from hub.demo.content import CASE_REPORTS, NOTES
from hub.demo.people import People
from hub.demo.walk import Walker
from hub.org.seed import UserSpec

MAX_TRACKED = 200
"""Open cases the demo keeps moving; past it the oldest is left as it is (bounded)."""
MAX_STEPS_PER_TICK = 12
REJECT_P = 0.08
ESCALATE_P = 0.1
RETURN_P = 0.15
PRIORITIES = ("normal", "urgent", "emergency")
PRIORITY_WEIGHTS = (0.8, 0.15, 0.05)
DONE = frozenset({"evaluated", "rejected"})
STATE_NAMES = {
    "reported": "已上报", "registered": "已立案", "rejected": "不予立案", "assigned": "已指派",
    "handling": "处置中", "fed_back": "已反馈", "closed": "已结案", "evaluated": "已评价",
}  # fmt: skip
ADOPT_QUERIES = ("open=true", "state=closed")
"""Cases a restarted demo carries on with: not closed yet, or closed and not evaluated."""


@dataclass
class Tracked:
    """A case the demo reported, as it last saw it."""

    id: str
    number: str
    title: str
    state: str
    org: str
    tier_org: str
    assignee: str | None
    reporter: str
    version: int
    returned: bool = False
    escalated: bool = False

    def update(self, case: dict[str, Any]) -> None:
        """Take the hub's view of the case."""
        self.state = case["state"]
        self.tier_org = case["tier_org"]
        self.assignee = case["assignee"]
        self.version = case["version"]


class CaseDriver:
    """Reports and moves the demo's cases."""

    def __init__(
        self,
        api: HubApi,
        people: People,
        walkers: list[Walker],
        rng: random.Random,
        say: Callable[[str], None],
        *,
        advance_probability: float,
    ) -> None:
        self._api = api
        self._people = people
        self._walkers = walkers
        self._rng = rng
        self._say = say
        self._advance_p = advance_probability
        self._categories: dict[str, list[str]] = {}
        self.cases: dict[str, Tracked] = {}
        self.reported = 0
        self.steps = 0

    async def load_categories(self, user: UserSpec) -> None:
        """Leaf codes per root from the hub's category tree (roots the demo can write)."""
        tree = await self._api.request("GET", "/api/v1/cases/categories", user)
        for root in tree["categories"]:
            if root["code"] in CASE_REPORTS:
                leaves = [c["code"] for c in root.get("children", [])] or [root["code"]]
                self._categories[root["code"]] = leaves

    async def adopt(self, user: UserSpec) -> int:
        """Take up the unfinished cases demo grid workers reported before (a restarted demo
        carries on with them); ``user`` must see the whole district. Returns how many."""
        found: list[dict[str, Any]] = []
        for query in ADOPT_QUERIES:
            path = f"/api/v1/cases?{query}&limit={MAX_TRACKED}"
            found += (await self._api.request("GET", path, user))["items"]
        found.sort(key=lambda c: c["id"])  # ids are ULIDs: oldest first
        for case in found[-MAX_TRACKED:]:
            reporter = self._people.by_id(case["reporter_id"])
            if case["reporter_kind"] != "user" or reporter is None:
                continue
            if "grid_worker" not in reporter.roles:
                continue
            self.cases[case["id"]] = Tracked(
                case["id"], case["number"], case["title"], case["state"], case["org"],
                case["tier_org"], case["assignee"], reporter.id, case["version"],
            )  # fmt: skip
        return len(self.cases)

    async def tick(self) -> None:
        """Earlier cases one step on, then one new report."""
        steps = 0
        for case in list(self.cases.values()):
            if steps >= MAX_STEPS_PER_TICK:
                break
            if self._rng.random() < self._advance_p:
                steps += 1
                await self._advance(case)
        await self.report()

    async def report(self) -> None:
        """A random grid worker reports what they see where they are."""
        if not self._categories or not self._walkers:
            return
        walker = self._rng.choice(self._walkers)
        reporter = self._people.by_id(walker.worker_id)
        if reporter is None:
            return
        root = self._rng.choice(sorted(self._categories))
        title, description = self._rng.choice(CASE_REPORTS[root])
        body = {
            "title": title,
            "description": description,
            "category": self._rng.choice(self._categories[root]),
            "priority": self._rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0],
            "location": {"lat": walker.position.lat, "lon": walker.position.lon},
            "channel": "grid_phone",
        }
        try:
            case = await self._api.request("POST", "/api/v1/cases", reporter, body)
        except DemoApiError as err:
            self._say(f"上报失败（{reporter.name}）：{err}")
            return
        self.reported += 1
        tracked = Tracked(
            case["id"], case["number"], title, case["state"], case["org"], case["tier_org"],
            case["assignee"], reporter.id, case["version"],
        )  # fmt: skip
        if len(self.cases) >= MAX_TRACKED:
            self.cases.pop(next(iter(self.cases)))
        self.cases[tracked.id] = tracked
        self._say(f"案件 {tracked.number} {reporter.name}上报「{title}」→ {tracked.tier_org}")

    async def _advance(self, case: Tracked) -> None:
        plan = self._next_step(case)
        if plan is None:
            self.cases.pop(case.id, None)
            return
        actor, body = plan
        body["if_version"] = case.version
        try:
            reply = await self._api.request("POST", f"/api/v1/cases/{case.id}/actions", actor, body)
        except DemoApiError as err:
            await self._resync(case, err)
            return
        self.steps += 1
        action = body["action"]
        case.update(reply)
        case.returned |= action == "return"
        case.escalated |= action == "escalate"
        extra = f" 给 {reply['assignee_name']}" if action == "assign" else ""
        self._say(
            f"案件 {case.number} {actor.name}：{_ACTION_NAMES[action]}{extra}"
            f" → {STATE_NAMES.get(case.state, case.state)}"
        )
        if case.state in DONE:
            self.cases.pop(case.id, None)

    def _next_step(self, case: Tracked) -> tuple[UserSpec, dict[str, Any]] | None:
        """Who does what next, or None if the demo is done with the case."""
        centre = self._people.centre(case.tier_org)
        r = self._rng.random()
        if case.state == "reported" and centre is not None:
            if not case.escalated and r < ESCALATE_P and case.tier_org.count(".") >= 2:
                return centre, self._body("escalate")
            if r > 1 - REJECT_P:
                return centre, self._body("reject")
            return centre, self._body("register")
        if case.state == "registered" and centre is not None:
            assignee = self._assignee(case)
            if assignee is None:
                return None
            return centre, {**self._body("assign"), "assignee": assignee.id}
        if case.state in ("assigned", "handling") and case.assignee:
            worker = self._people.by_id(case.assignee)
            if worker is None:
                return None
            return worker, self._body("start" if case.state == "assigned" else "feed_back")
        if case.state == "fed_back" and centre is not None:
            if not case.returned and r < RETURN_P:
                return centre, self._body("return")
            return centre, self._body("close")
        if case.state == "closed":
            reporter = self._people.by_id(case.reporter)
            if reporter is None:
                return None
            body = self._body("evaluate")
            body["satisfaction"] = self._rng.choice((3, 4, 4, 5, 5, 5))
            return reporter, body
        return None

    def _body(self, action: str) -> dict[str, Any]:
        return {"action": action, "note": self._rng.choice(NOTES[action])}

    def _assignee(self, case: Tracked) -> UserSpec | None:
        """The grid worker of the case's grid if the centre covers it, else one of the
        centre's grid workers."""
        staff = self._people.workers_under(case.tier_org)
        local = [u for u in staff if u.org == case.org]
        pool = local or staff
        return self._rng.choice(pool) if pool else None

    async def _resync(self, case: Tracked, err: DemoApiError) -> None:
        """Someone else acted (a person at the console), or the hub is away: take the
        hub's view of the case, or drop it if it is gone."""
        if err.status == 0:
            self._say(f"案件 {case.number}：暂时无法连接 hub（{err.message}）")
            return
        reporter = self._people.by_id(case.reporter)
        try:
            assert reporter is not None
            current = await self._api.request("GET", f"/api/v1/cases/{case.id}", reporter)
        except (DemoApiError, AssertionError):
            self.cases.pop(case.id, None)
            return
        case.update(current)
        if case.state in DONE:
            self.cases.pop(case.id, None)
        self._say(f"案件 {case.number}：{err.code}，已同步为 {STATE_NAMES.get(case.state)}")


_ACTION_NAMES = {
    "register": "立案", "reject": "不予立案", "escalate": "上报上级", "assign": "指派",
    "start": "开始处置", "feed_back": "反馈", "return": "退回重办", "close": "核查结案",
    "evaluate": "评价",
}  # fmt: skip
