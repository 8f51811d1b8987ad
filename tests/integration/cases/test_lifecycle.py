"""The seven-step loop through the REST API, seen live by console clients (SDK) on the
right channels and nowhere else."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import RunningHub
from tests.integration.api.conftest import Api
from tests.integration.cases.helpers import (
    COMMUNITY,
    DEPARTMENT,
    DISTRICT,
    OTHER_COMMUNITY,
    OTHER_STREET,
    STREET,
    WORKER,
    act,
    must,
    report,
)
from tests.integration.notices.helpers import connect_user
from tests.support.clients import Subscriber, alert, next_item, post_event, subscribe

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

WALK = [
    "case.reported", "case.escalated", "case.registered", "case.assigned", "case.started",
    "case.supervised", "case.fed_back", "case.returned", "case.fed_back", "case.closed",
    "case.evaluated",
]  # fmt: skip


async def types_seen(sub: Subscriber, count: int) -> list[str]:
    """The types of the next ``count`` case events on ``sub`` (the district channel also
    carries the sms.* events of the texts the assignee gets)."""
    seen: list[str] = []
    while len(seen) < count:
        kind = (await next_item(sub.recorder.publications)).pub.data["type"]
        if kind.startswith("case."):
            seen.append(kind)
    return seen


async def upload(api: Api, token: str, case_id: str, name: str, data: bytes, ctype: str) -> Any:
    """Upload one attachment; the reply."""
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=ctype)
    async with api.http.post(
        f"{api.base}/api/v1/cases/{case_id}/attachments",
        data=form,
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_a_case_walks_the_seven_steps_with_escalation_and_a_return_seen_live_where_it_belongs(
    running_hub: RunningHub, api: Api
) -> None:
    ws = running_hub.ws_url
    watchers = {
        "community": await subscribe(ws, COMMUNITY.token, "org:d01.s01.c01"),
        "street": await subscribe(ws, STREET.token, "org:d01.s01"),
        "district": await subscribe(ws, DISTRICT.token, "org:d01"),
    }
    bystanders = {
        "other community": await subscribe(ws, OTHER_COMMUNITY.token, "org:d01.s01.c02"),
        "other street": await subscribe(ws, OTHER_STREET.token, "org:d01.s02"),
    }
    handler = await connect_user(ws, DEPARTMENT.id, DEPARTMENT.org, list(DEPARTMENT.roles))
    clients = [s.client for s in (*watchers.values(), *bystanders.values())] + [handler.client]
    try:
        case = await report(api, WORKER)
        case_id = case["id"]
        assert case["state"] == "reported"
        assert case["tier_org"] == "d01.s01.c01" and case["tier"] == "community"
        assert case["number"].startswith("d01-") and case["channel"] == "console"
        per_case = await subscribe(ws, STREET.token, f"case:{case_id}")
        clients.append(per_case.client)

        # 1. The community cannot handle it and hands it to the street (上报上级).
        case = await must(api, COMMUNITY, case_id, "escalate", note="涉及多个社区，需街道协调")
        assert (case["state"], case["tier_org"], case["tier"]) == ("reported", "d01.s01", "street")
        # The community no longer acts for it.
        refused = await act(api, COMMUNITY, case_id, "register")
        assert (refused.status, refused.code) == (403, "case.wrong_tier")
        # 2. Register (立案): the time limit starts.
        case = await must(api, STREET, case_id, "register", note="立案")
        assert case["state"] == "registered" and case["due_at"] is not None
        # 3. Assign (指派) to the city-management department's liaison.
        case = await must(api, STREET, case_id, "assign", assignee=DEPARTMENT.id, note="请处置")
        assert case["assignee"] == DEPARTMENT.id and case["state"] == "assigned"
        assert (await handler.next_of("case.assigned"))["subject"] == case_id
        # 4. Start (处置), pressed by the district meanwhile (督办).
        case = await must(api, DEPARTMENT, case_id, "start")
        assert case["state"] == "handling"
        await must(api, DISTRICT, case_id, "supervise", note="请于今日内处理完毕")
        assert (await handler.next_of("case.supervised"))["data"]["note"] == "请于今日内处理完毕"
        # 5. Feed back (反馈) with a photo.
        status, photo = await upload(api, DEPARTMENT.token, case_id, "现场.png", PNG, "image/png")
        assert status == 201, photo
        case = await must(
            api, DEPARTMENT, case_id, "feed_back", note="已清理", attachments=[photo["id"]]
        )
        assert case["state"] == "fed_back"
        # 6. Verification fails: returned to the handler (退回), then fed back again.
        case = await must(api, STREET, case_id, "return", note="仍有杂物未清理")
        assert case["state"] == "handling"
        assert (await handler.next_of("case.returned"))["data"]["note"] == "仍有杂物未清理"
        await must(api, DEPARTMENT, case_id, "feed_back", note="已全部清理")
        case = await must(api, STREET, case_id, "close", note="核查属实")
        assert case["state"] == "closed" and case["on_time"] is True
        # 7. Evaluate (评价) by the reporter.
        case = await must(api, WORKER, case_id, "evaluate", satisfaction=5, note="满意")
        assert case["state"] == "evaluated" and case["satisfaction"] == 5

        for name, watcher in watchers.items():
            assert await types_seen(watcher, len(WALK)) == WALK, name
        seen = await types_seen(per_case, len(WALK) - 1)
        if seen[0] == "case.reported":  # it subscribed before the relay published the report
            seen = seen[1:] + await types_seen(per_case, 1)
        assert seen == WALK[1:]
        # Nothing reached the other street or community: the first thing they see is a
        # marker published after every case event.
        for org in ("d01.s01.c02", "d01.s02"):
            status, _ = await post_event(running_hub.url, alert(org, "marker"))
            assert status == 202
        for name, bystander in bystanders.items():
            first = await next_item(bystander.recorder.publications)
            assert first.pub.data["type"] == "alert.raised", name

        detail = (await api.as_(STREET.token).get(f"/api/v1/cases/{case_id}")).body
        assert [e["action"] for e in detail["timeline"]] == [
            "report", "escalate", "register", "assign", "start", "supervise", "feed_back",
            "return", "feed_back", "close", "evaluate",
        ]  # fmt: skip
        assert detail["timeline"][1]["details"] == {
            "from_tier_org": "d01.s01.c01", "to_tier_org": "d01.s01"
        }  # fmt: skip
        assert detail["timeline"][6]["details"]["attachments"] == [photo["id"]]
        assert [a["id"] for a in detail["attachments"]] == [photo["id"]]
        async with api.http.get(
            api.base + photo["url"], headers={"Authorization": f"Bearer {STREET.token}"}
        ) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
            assert await resp.read() == PNG
    finally:
        for client in clients:
            await client.disconnect()
