"""Notices end to end on both backends: targeting, live pop-ups on user:<id>, read
receipts and the sender's live counts, the unread list after being offline, and the
refusals (roles, scope, validation)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from centrifuge import ReplyError
from sqlalchemy import func, select

from hub.db.models import Notice, NoticeRecipient
from tests.conftest import RunningHub
from tests.integration.api.conftest import Api
from tests.integration.notices.conftest import Connect
from tests.integration.notices.helpers import add_bulk_users
from tests.support.hubs import token

NOTICES = "/api/v1/notices"
S01_DISPATCHER = ("s01-dispatcher", "d01.s01", ["dispatcher"])
S01_LEADER = ("s01-leader", "d01.s01", ["leader"])
C01_LEADER = ("s01c01-leader", "d01.s01.c01", ["grid_leader"])
C01_WORKER = ("s01c01g01-worker", "d01.s01.c01.g01", ["grid_worker"])
C02_WORKER = ("s01c02g01-worker", "d01.s01.c02.g01", ["grid_worker"])
S02_WORKER = ("s02c01g01-worker", "d01.s02.c01.g01", ["grid_worker"])
C01_USERS = {
    "s01c01-dispatcher",
    "s01c01-leader",
    "s01c01g01-worker",
    "s01c01g02-worker",
    "s01c01g03-worker",
    "s01c01g04-worker",
}


def tok(who: tuple[str, str, list[str]]) -> str:
    """A token for one of the demo users above."""
    return token(*who)


def notice(targets: dict[str, Any], title: str = "关于召开网格工作例会的通知", **extra: Any) -> Any:
    """A notice body."""
    return {
        "kind": "meeting",
        "title": title,
        "body": "请于周五下午三点到街道综治中心参加例会。",
        "targets": targets,
        **extra,
    }


async def receipts(api: Api, sender: tuple[str, str, list[str]], notice_id: str) -> Any:
    """Every receipt of a notice, following the cursor."""
    items: list[Any] = []
    params: dict[str, str] = {"limit": "2"}
    while True:
        reply = await api.as_(tok(sender)).get(f"{NOTICES}/{notice_id}/receipts", **params)
        assert reply.status == 200, reply.body
        items += reply.body["items"]
        if reply.body["next_cursor"] is None:
            return reply.body, items
        params["cursor"] = reply.body["next_cursor"]


async def test_a_notice_to_an_org_subtree_reaches_exactly_its_users_live(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    inside = [await live(*C01_WORKER), await live(*C01_LEADER)]
    outside = await live(*C02_WORKER)
    sender = await live(*S01_DISPATCHER)
    sent = await api.as_(tok(S01_DISPATCHER)).post(NOTICES, notice({"orgs": ["d01.s01.c01"]}))
    assert sent.status == 201, sent.body
    notice_id = sent.body["id"]
    assert sent.body["recipient_count"] == len(C01_USERS)
    for client in inside:
        event = await client.next_of("notice.new")
        assert event["data"]["notice_id"] == notice_id
        assert event["data"]["title"] == "关于召开网格工作例会的通知"
        assert event["data"]["sender_id"] == "s01-dispatcher"
        assert event["data"]["sender_name"] == "赵军"
    confirmation = await sender.next_of("notice.sent")
    assert confirmation["data"] == {
        "notice_id": notice_id,
        "kind": "meeting",
        "level": "normal",
        "title": "关于召开网格工作例会的通知",
        "recipient_count": len(C01_USERS),
        "created_at": confirmation["data"]["created_at"],
    }

    # The negative, proved with a later marker: the first thing the outsider gets is the
    # notice to the whole street, not the one to community c01.
    marker = await api.as_(tok(S01_DISPATCHER)).post(NOTICES, notice({"orgs": ["d01.s01"]}))
    assert marker.status == 201
    first = await outside.next_event()
    assert first["type"] == "notice.new"
    assert first["data"]["notice_id"] == marker.body["id"]

    body, items = await receipts(api, S01_DISPATCHER, notice_id)
    assert {r["user_id"] for r in items} == C01_USERS
    assert body["total"] == len(C01_USERS) and body["unread"] == len(C01_USERS)
    assert all(r["delivered_at"] is not None and r["read_at"] is None for r in items)


async def test_roles_resolve_inside_the_senders_subtree(api: Api) -> None:
    sent = await api.as_(tok(S01_DISPATCHER)).post(
        NOTICES, notice({"roles": ["leader", "grid_leader"], "users": ["s01c01g01-worker"]})
    )
    assert sent.status == 201, sent.body
    _, items = await receipts(api, S01_DISPATCHER, sent.body["id"])
    assert {r["user_id"] for r in items} == {
        "s01-leader",
        "s01c01-leader",
        "s01c02-leader",
        "s01c03-leader",
        "s01c01g01-worker",
    }  # not d01-leader (above the sender) nor s02-leader (beside)


async def test_read_receipts_move_the_senders_counts_live(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    sender = await live(*S01_DISPATCHER)
    reader = await live(*C02_WORKER)
    sent = await api.as_(tok(S01_DISPATCHER)).post(
        NOTICES, notice({"users": ["s01c01g01-worker", "s01c02g01-worker"]}, level="urgent")
    )
    assert sent.status == 201
    notice_id = sent.body["id"]
    await sender.next_of("notice.sent")

    read = await api.as_(tok(C01_WORKER)).post(f"{NOTICES}/{notice_id}/read", {})
    assert read.status == 200 and read.body["read_via"] == "rest"
    progress = await sender.next_of("notice.read_progress")
    assert progress["data"] == {"notice_id": notice_id, "read": 1, "unread": 1, "total": 2}

    await reader.next_of("notice.new")
    receipt = await reader.rpc("notice.read", {"notice_id": notice_id})
    assert receipt["read_via"] == "ws" and receipt["user_id"] == "s01c02g01-worker"
    # Coalesced to one push a second per notice, but the trailing one always comes.
    progress = await sender.next_of("notice.read_progress")
    assert progress["data"] == {"notice_id": notice_id, "read": 2, "unread": 0, "total": 2}

    mine = await api.as_(tok(S01_DISPATCHER)).get(f"{NOTICES}/sent")
    assert [(n["id"], n["read"], n["unread"]) for n in mine.body["items"]] == [(notice_id, 2, 0)]
    _, items = await receipts(api, S01_DISPATCHER, notice_id)
    assert {r["user_id"]: r["read_via"] for r in items} == {
        "s01c01g01-worker": "rest",
        "s01c02g01-worker": "ws",
    }
    unread = await api.as_(tok(S01_DISPATCHER)).get(f"{NOTICES}/{notice_id}/receipts", read="false")
    assert unread.body["items"] == [] and unread.body["read"] == 2


async def test_a_burst_of_reads_gives_few_progress_pushes_and_the_last_one_is_exact(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    sender = await live(*S01_DISPATCHER)
    sent = await api.as_(tok(S01_DISPATCHER)).post(NOTICES, notice({"orgs": ["d01.s01.c01"]}))
    notice_id = sent.body["id"]
    users = sorted(C01_USERS)
    await asyncio.gather(
        *(
            api.as_(token(u, "d01.s01.c01", ["grid_worker"])).post(
                f"{NOTICES}/{notice_id}/read", {}
            )
            for u in users
        )
    )
    pushes = []
    while True:
        progress = await sender.next_of("notice.read_progress")
        pushes.append(progress["data"]["read"])
        if progress["data"]["read"] == len(users):
            break
    assert len(pushes) <= 3  # the first at once, then at most one a second


async def test_a_user_who_was_offline_sees_the_notice_as_unread_on_connect(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    sender = api.as_(tok(S01_LEADER))
    older = await sender.post(NOTICES, notice({"users": ["s01c02g01-worker"]}, title="旧通知"))
    newer = await sender.post(
        NOTICES, notice({"users": ["s01c02g01-worker"]}, title="红头文件", kind="red_header")
    )
    assert older.status == 201 and newer.status == 201, newer.body

    worker = await live(*C02_WORKER)
    unread = await worker.rpc("notice.unread", {})
    assert unread["unread"] == 2 and unread["total"] == 2
    assert [n["id"] for n in unread["notices"]] == [newer.body["id"], older.body["id"]]
    assert unread["notices"][0]["kind"] == "red_header"
    assert unread["notices"][0]["sender_name"] == "黄伟"

    await worker.rpc("notice.read", {"notice_id": newer.body["id"]})
    unread = await worker.rpc("notice.unread", {"limit": 10})
    assert [n["id"] for n in unread["notices"]] == [older.body["id"]]

    # The inbox: unread first, then read; pages follow the cursor.
    inbox = api.as_(tok(C02_WORKER))
    first = await inbox.get(f"{NOTICES}/inbox", limit="1")
    assert first.body["unread"] == 1 and first.body["total"] == 2
    assert [n["id"] for n in first.body["items"]] == [older.body["id"]]
    second = await inbox.get(f"{NOTICES}/inbox", limit="1", cursor=first.body["next_cursor"])
    assert [n["id"] for n in second.body["items"]] == [newer.body["id"]]
    assert second.body["items"][0]["read_at"] is not None
    assert second.body["next_cursor"] is None

    full = await inbox.get(f"{NOTICES}/{older.body['id']}")
    assert full.status == 200 and full.body["body"].startswith("请于周五")
    assert full.body["read_at"] is None and full.body["targets"] is None


async def test_reading_twice_stores_one_receipt_over_rest_and_rpc(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    sent = await api.as_(tok(S01_DISPATCHER)).post(
        NOTICES, notice({"users": ["s01c01g01-worker", "s01c02g01-worker"]})
    )
    notice_id = sent.body["id"]
    reader = api.as_(tok(C01_WORKER))
    first = await reader.post(f"{NOTICES}/{notice_id}/read", {})
    again = await reader.post(f"{NOTICES}/{notice_id}/read", {})
    assert first.status == again.status == 200
    assert first.body == again.body

    worker = await live(*C02_WORKER)
    by_ws = await worker.rpc("notice.read", {"notice_id": notice_id})
    by_ws_again = await worker.rpc("notice.read", {"notice_id": notice_id})
    by_rest = await api.as_(tok(C02_WORKER)).post(f"{NOTICES}/{notice_id}/read", {})
    assert by_ws == by_ws_again == by_rest.body
    assert by_ws["read_via"] == "ws"

    async with running_hub.hub.sessions() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(NoticeRecipient)
            .where(NoticeRecipient.notice_id == notice_id, NoticeRecipient.read_at.is_not(None))
        )
    assert stored == 2


async def test_a_red_header_notice_by_a_dispatcher_is_forbidden(api: Api) -> None:
    body = notice({"orgs": ["d01.s01.c01"]}, kind="red_header")
    refused = await api.as_(tok(S01_DISPATCHER)).post(NOTICES, body)
    assert refused.status == 403 and refused.code == "notice.red_header_forbidden"
    allowed = await api.as_(tok(S01_LEADER)).post(NOTICES, body)
    assert allowed.status == 201 and allowed.body["kind"] == "red_header"


async def test_targets_outside_the_senders_subtree_are_forbidden(api: Api) -> None:
    sender = api.as_(tok(S01_DISPATCHER))
    for targets in ({"orgs": ["d01.s02"]}, {"orgs": ["d01"]}, {"users": ["s02c01g01-worker"]}):
        refused = await sender.post(NOTICES, notice(targets))
        assert refused.status == 403, targets
        assert refused.code == "notice.target_outside_scope"
    mixed = await sender.post(NOTICES, notice({"orgs": ["d01.s01.c01"], "users": ["d01-leader"]}))
    assert mixed.status == 403 and mixed.code == "notice.target_outside_scope"


async def test_invalid_notices_and_strangers_get_clear_codes(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    sender = api.as_(tok(S01_DISPATCHER))
    cases = [
        (notice({}), 422, "notice.invalid"),
        (notice({"orgs": ["d01.s01"]}, kind="gossip"), 422, "notice.invalid"),
        (notice({"orgs": ["d01.s01"]}, title=""), 422, "notice.invalid"),
        (notice({"orgs": ["D01!"]}), 422, "notice.invalid"),
        (notice({"orgs": ["d01.s01"]}, attachments=[{"name": "a"}]), 422, "notice.invalid"),
        (notice({"users": ["nobody"]}), 422, "notice.unknown_target"),
        (notice({"orgs": ["d01.s01.c09"]}), 422, "notice.unknown_target"),
        (notice({"users": ["s01-dispatcher"]}), 422, "notice.no_recipients"),
    ]
    for body, status, code in cases:
        reply = await sender.post(NOTICES, body)
        assert (reply.status, reply.code) == (status, code), (body, reply.body)
    assert (await sender.post(NOTICES, notice({}))).body["error"]["details"]
    bad_json = await sender.call("POST", NOTICES, data=b"{")
    assert bad_json.status == 400 and bad_json.code == "request.invalid_json"
    worker = await api.as_(tok(C01_WORKER)).post(NOTICES, notice({"orgs": ["d01.s01.c01.g01"]}))
    assert worker.status == 403 and worker.code == "auth.forbidden"

    sent = await sender.post(NOTICES, notice({"users": ["s01c01g01-worker"]}))
    notice_id = sent.body["id"]
    stranger = api.as_(tok(C02_WORKER))
    for reply in (
        await stranger.get(f"{NOTICES}/{notice_id}"),
        await stranger.post(f"{NOTICES}/{notice_id}/read", {}),
        await api.as_(tok(C01_WORKER)).get(f"{NOTICES}/{notice_id}/receipts"),
        await stranger.get(f"{NOTICES}/01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ):
        assert reply.status == 404 and reply.code == "notice.not_found"
    assert (await stranger.get(f"{NOTICES}/inbox", cursor="bm9wZQ")).status == 400

    client = await live(*C02_WORKER)
    with pytest.raises(ReplyError) as bad:
        await client.rpc("notice.read", {"id": notice_id})
    assert bad.value.code == 107 and bad.value.message.startswith("notice.invalid")
    with pytest.raises(ReplyError) as not_mine:
        await client.rpc("notice.read", {"notice_id": notice_id})
    assert not_mine.value.code == 103 and not_mine.value.message.startswith("notice.not_found")
    with pytest.raises(ReplyError) as bad_limit:
        await client.rpc("notice.unread", {"limit": 0})
    assert bad_limit.value.code == 107
    assert (await client.rpc("notice.unread", None))["notices"] == []


async def test_a_large_notice_is_fanned_out_in_the_background_to_every_recipient(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    hub = running_hub.hub
    users = await add_bulk_users(hub.sessions, "d01.s03.c03", "g90", 2000)
    last = await live(users[-1], "d01.s03.c03.g90", ["grid_worker"])
    sent = await api.as_(token("s03-dispatcher", "d01.s03", ["dispatcher"])).post(
        NOTICES, notice({"orgs": ["d01.s03.c03.g90"]}, level="urgent")
    )
    assert sent.status == 201, sent.body
    notice_id = sent.body["id"]
    assert sent.body["recipient_count"] == 2000
    event = await last.next_of("notice.new")
    assert event["data"]["notice_id"] == notice_id and event["data"]["level"] == "urgent"
    fan_out = hub.notices.fanouts.get(notice_id)
    if fan_out is not None:
        await fan_out

    async with hub.sessions() as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(NoticeRecipient)
            .where(
                NoticeRecipient.notice_id == notice_id, NoticeRecipient.delivered_at.is_not(None)
            )
        )
        stored = await session.get(Notice, notice_id)
    assert rows == 2000
    assert stored is not None and stored.sent_at is not None
    unread = await last.rpc("notice.unread", {})
    assert [n["id"] for n in unread["notices"]] == [notice_id]


async def test_a_fan_out_cut_short_by_a_stop_is_resumed_for_the_recipients_not_yet_pushed(
    running_hub: RunningHub, api: Api, live: Connect
) -> None:
    hub = running_hub.hub
    sent = await api.as_(tok(S01_LEADER)).post(NOTICES, notice({"orgs": ["d01.s01.c01"]}))
    assert sent.status == 201, sent.body
    notice_id = sent.body["id"]
    # As a hub stopped mid fan-out leaves it: not sent, one recipient not yet pushed.
    async with hub.sessions() as session, session.begin():
        stored = await session.get(Notice, notice_id)
        mine = await session.get(NoticeRecipient, (notice_id, C01_WORKER[0]))
        assert stored is not None and mine is not None
        stored.sent_at = None
        mine.delivered_at = None
    worker = await live(*C01_WORKER)
    assert await hub.notices.resume_fanouts() == 1
    event = await worker.next_of("notice.new")
    # The pop-up keeps the notice's id as its event id: consumers deduplicate a repeat.
    assert event["id"] == notice_id and event["data"]["notice_id"] == notice_id
    fan_out = hub.notices.fanouts.get(notice_id)
    if fan_out is not None:
        await fan_out
    async with hub.sessions() as session:
        stored = await session.get(Notice, notice_id)
        mine = await session.get(NoticeRecipient, (notice_id, C01_WORKER[0]))
    assert stored is not None and stored.sent_at is not None
    assert mine is not None and mine.delivered_at is not None
    assert await hub.notices.resume_fanouts() == 0
