"""Time limits (限时办结): the yellow and red alerts fire once each per deadline, pushed to
the centre and the assignee, also when the hub restarts in between."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from hub.config import PROJECT_ROOT
from hub.db.models import CaseEntry
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.integration.cases.helpers import (
    COMMUNITY,
    WORKER,
    CaseSettingsFactory,
    must,
    report,
)
from tests.integration.notices.helpers import connect_user
from tests.support.clients import Subscriber, next_item, subscribe


def short_limits(tmp_path: Path, seconds: float) -> Path:
    """A categories file whose every time limit is ``seconds`` long."""
    spec = json.loads((PROJECT_ROOT / "config" / "case_categories.json").read_text("utf-8"))
    hours = seconds / 3600
    spec["time_limits_hours"] = {"default": {p: hours for p in ("normal", "urgent", "emergency")}}
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    return path


async def next_type(sub: Subscriber) -> str:
    """The type of the next publication on ``sub``."""
    data: dict[str, Any] = (await next_item(sub.recorder.publications)).pub.data
    kind: str = data["type"]
    return kind


async def alerts_in_timeline(hub: RunningHub, case_id: str) -> list[str]:
    """The alert rows of a case's timeline, in order."""
    async with hub.hub.sessions() as session:
        actions = await session.scalars(
            select(CaseEntry.action).where(CaseEntry.case_id == case_id).order_by(CaseEntry.id)
        )
        return [a for a in actions if a in ("due_soon", "overdue")]


async def test_yellow_then_red_alerts_fire_once_to_the_centre_and_the_assignee(
    backend: Backend, case_settings: CaseSettingsFactory, tmp_path: Path
) -> None:
    cases = case_settings(
        categories_file=short_limits(tmp_path, 2.0), sweep_interval=0.05, due_soon_fraction=0.5
    )
    hub = await start_hub(backend_settings(backend, cases=cases))
    centre = await subscribe(hub.ws_url, COMMUNITY.token, "org:d01.s01.c01")
    handler = await connect_user(hub.ws_url, WORKER.id, WORKER.org, list(WORKER.roles))
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, hub.url, None)
            case_id = (await report(api))["id"]
            await must(api, COMMUNITY, case_id, "register")
            await must(api, COMMUNITY, case_id, "assign", assignee=WORKER.id)
            seen = [await next_type(centre) for _ in range(5)]
            assert seen == [
                "case.reported", "case.registered", "case.assigned", "case.due_soon",
                "case.overdue",
            ]  # fmt: skip
            assert (await handler.next_of("case.due_soon"))["subject"] == case_id
            assert (await handler.next_of("case.overdue"))["subject"] == case_id
            # Later sweeps find nothing more to raise.
            assert await hub.hub.deadlines.sweep() == 0
            assert await alerts_in_timeline(hub, case_id) == ["due_soon", "overdue"]
            detail = (await api.as_(COMMUNITY.token).get(f"/api/v1/cases/{case_id}")).body
            assert detail["due_soon"] is True and detail["overdue"] is True
            listed = await api.as_(COMMUNITY.token).get("/api/v1/cases", alert="overdue")
            assert [c["id"] for c in listed.body["items"]] == [case_id]
            # Closing late is recorded as not on time.
            await must(api, WORKER, case_id, "start")
            await must(api, WORKER, case_id, "feed_back", note="已处理")
            closed = await must(api, COMMUNITY, case_id, "close")
            assert closed["on_time"] is False
    finally:
        await centre.client.disconnect()
        await handler.client.disconnect()
        await hub.server.close()


async def test_alerts_fire_once_each_across_a_hub_restart(
    backend: Backend, case_settings: CaseSettingsFactory, tmp_path: Path
) -> None:
    cases = case_settings(
        categories_file=short_limits(tmp_path, 5.0), sweep_interval=0.05, due_soon_fraction=0.25
    )
    # Yellow after 1.25 s, red after 5 s: the restart happens in between.
    settings = backend_settings(backend, cases=cases)
    first = await start_hub(settings)
    watcher = await subscribe(first.ws_url, COMMUNITY.token, "org:d01.s01.c01")
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(http, first.url, None)
            case_id = (await report(api))["id"]
            await must(api, COMMUNITY, case_id, "register")
            assert [await next_type(watcher) for _ in range(3)] == [
                "case.reported", "case.registered", "case.due_soon"
            ]  # fmt: skip
    finally:
        await watcher.client.disconnect()
        await first.server.close()
    # The red moment falls after the restart (or while no hub runs): raised once, by the
    # new process; the yellow one is not raised again.
    second = await start_hub(settings)
    watcher = await subscribe(second.ws_url, COMMUNITY.token, f"case:{case_id}")
    try:
        assert await next_type(watcher) == "case.overdue"
        assert await second.hub.deadlines.sweep() == 0
        assert await alerts_in_timeline(second, case_id) == ["due_soon", "overdue"]
    finally:
        await watcher.client.disconnect()
        await second.server.close()
