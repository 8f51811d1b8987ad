"""Directory REST on both backends: admin CRUD, subtree scoping, validation, pagination,
and one directory event per write delivered to an SDK subscriber."""

from __future__ import annotations

import aiohttp

from hub.org.seed import read_users
from tests.conftest import RunningHub
from tests.integration.api.conftest import Api, outbox_count
from tests.support.clients import Recorder, alert, next_item, post_event, sdk_client
from tests.support.hubs import token

ADMIN = token("admin", "d01", ["admin"])
STREET_ADMIN = token("s01-admin", "d01.s01", ["admin"])
DISPATCHER = token("s01-dispatcher", "d01.s01", ["dispatcher"])
USERS = "/api/v1/users"
NODES = "/api/v1/org/nodes"


def node(path: str, level: str) -> dict[str, str]:
    """A create body for an org node."""
    return {"path": path, "name": "x", "level": level}


def new_user(user_id: str, org: str, **fields: object) -> dict[str, object]:
    """A valid create body."""
    body: dict[str, object] = {
        "id": user_id,
        "name": "测试用户",
        "title": "专职网格员",
        "phone": "13900000000",
        "org": org,
        "roles": ["grid_worker"],
    }
    body.update(fields)
    return body


async def test_admin_creates_reads_updates_and_deactivates_a_user(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, ADMIN)
    created = await api.post(USERS, new_user("new-worker", "d01.s01.c01.g01"))
    assert created.status == 201, created.body
    assert created.headers["Location"] == f"{USERS}/new-worker"
    assert created.body["active"] is True
    assert created.body["roles"] == ["grid_worker"]

    got = await api.get(f"{USERS}/new-worker")
    assert got.status == 200
    assert got.body["name"] == "测试用户" and got.body["org"] == "d01.s01.c01.g01"

    patched = await api.patch(
        f"{USERS}/new-worker",
        {
            "name": "新名字",
            "phone": "13911111111",
            "org": "d01.s02.c01.g02",
            "roles": ["grid_leader"],
        },
    )
    assert patched.status == 200, patched.body
    assert patched.body["name"] == "新名字"
    assert patched.body["org"] == "d01.s02.c01.g02"
    assert patched.body["roles"] == ["grid_leader"]
    assert patched.body["title"] == "专职网格员"  # untouched

    deleted = await api.delete(f"{USERS}/new-worker")
    assert deleted.status == 200 and deleted.body["active"] is False
    again = await api.get(f"{USERS}/new-worker")
    assert again.status == 200 and again.body["active"] is False  # row kept
    inactive = await api.get(USERS, active="false")
    assert [u["id"] for u in inactive.body["items"]] == ["new-worker"]

    reactivated = await api.patch(f"{USERS}/new-worker", {"active": True})
    assert reactivated.status == 200 and reactivated.body["active"] is True


async def test_admin_creates_lists_and_renames_org_nodes(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, ADMIN)
    street = await api.post(NODES, {"path": "d01.s09", "name": "新街道", "level": "street"})
    assert street.status == 201, street.body
    assert street.body == {"path": "d01.s09", "name": "新街道", "level": "street", "parent": "d01"}
    community = await api.post(
        NODES, {"path": "d01.s09.c01", "name": "新社区", "level": "community"}
    )
    assert community.status == 201, community.body
    grid = await api.post(NODES, {"path": "d01.s09.c01.g01", "name": "新网格", "level": "grid"})
    assert grid.status == 201, grid.body

    listed = await api.get(NODES, under="d01.s09")
    assert listed.status == 200
    assert [n["path"] for n in listed.body["items"]] == [
        "d01.s09",
        "d01.s09.c01",
        "d01.s09.c01.g01",
    ]
    everything = await api.get(NODES)
    assert len(everything.body["items"]) == 49 + 3

    renamed = await api.patch(f"{NODES}/d01.s09.c01", {"name": "更名社区"})
    assert renamed.status == 200, renamed.body
    assert (await api.get(f"{NODES}/d01.s09.c01")).body["name"] == "更名社区"

    person = await api.post(USERS, new_user("s09-worker", "d01.s09.c01.g01"))
    assert person.status == 201, person.body
    workers = await api.get(USERS, org="d01.s09")
    assert [u["id"] for u in workers.body["items"]] == ["s09-worker"]


async def test_street_admin_cannot_write_outside_their_street(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, STREET_ADMIN)
    own = await api.post(USERS, new_user("s01-new", "d01.s01.c02"))
    assert own.status == 201, own.body

    attempts = [
        await api.post(USERS, new_user("s02-new", "d01.s02.c01")),
        await api.patch(f"{USERS}/s02-dispatcher", {"name": "改名"}),
        await api.delete(f"{USERS}/s02-dispatcher"),
        await api.patch(f"{USERS}/s01-new", {"org": "d01.s02"}),  # moving out of the street
        await api.post(NODES, {"path": "d01.s02.c09", "name": "x", "level": "community"}),
        await api.post(NODES, {"path": "d01.s09", "name": "x", "level": "street"}),
        await api.patch(f"{NODES}/d01.s02", {"name": "改名"}),
        await api.patch(f"{NODES}/d01", {"name": "改名"}),
        await api.get(f"{USERS}/s02-dispatcher"),
        await api.get(USERS, org="d01.s02"),
        await api.get(NODES, under="d01"),
    ]
    for reply in attempts:
        assert (reply.status, reply.code) == (403, "auth.forbidden"), reply.body
    assert (await api.get(f"{USERS}/s01-new")).body["org"] == "d01.s01.c02"
    assert (await Api(http, running_hub.url, ADMIN).get(f"{USERS}/s02-dispatcher")).body[
        "name"
    ] == "冯婷"
    assert await outbox_count(running_hub.hub, prefix="directory.") == 1


async def test_dispatcher_reads_own_subtree_but_cannot_write(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, DISPATCHER)
    people = await api.get(USERS, role="grid_worker")
    assert people.status == 200
    assert len(people.body["items"]) == 12
    assert all(u["org"].startswith("d01.s01.") for u in people.body["items"])
    assert (await api.get(f"{USERS}/s01c01g01-worker")).status == 200
    assert (await api.get(f"{NODES}/d01.s01.c03")).body["level"] == "community"
    assert (await api.get(f"{USERS}/s02-dispatcher")).code == "auth.forbidden"

    writes = [
        await api.post(USERS, new_user("x1", "d01.s01.c01")),
        await api.patch(f"{USERS}/s01c01g01-worker", {"name": "改名"}),
        await api.delete(f"{USERS}/s01c01g01-worker"),
        await api.post(NODES, {"path": "d01.s01.c09", "name": "x", "level": "community"}),
        await api.patch(f"{NODES}/d01.s01.c01", {"name": "改名"}),
    ]
    for reply in writes:
        assert (reply.status, reply.code) == (403, "auth.forbidden"), reply.body

    anonymous = api.as_(None)
    for reply in [await anonymous.get(USERS), await anonymous.post(USERS, new_user("x", "d01"))]:
        assert (reply.status, reply.code) == (401, "auth.required")
    forged = await api.as_("not-a-jwt").get(USERS)
    assert (forged.status, forged.code) == (401, "auth.invalid_token")
    assert await outbox_count(running_hub.hub, prefix="directory.") == 0


async def test_invalid_writes_get_422_with_details(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, ADMIN)
    cases: list[tuple[str, str, object, int, str, str | None]] = [
        ("POST", USERS, new_user("bad id!", "d01"), 422, "user.invalid", "id"),
        ("POST", USERS, new_user("u1", "d01", roles=["boss"]), 422, "user.invalid", "roles"),
        ("POST", USERS, new_user("u1", "d01", name=""), 422, "user.invalid", "name"),
        ("POST", USERS, new_user("u1", "D01..x"), 422, "user.invalid", "org"),
        ("POST", USERS, new_user("u1", "d01.s07"), 422, "user.invalid", "org"),
        ("POST", USERS, new_user("u1", "d01", extra=1), 422, "user.invalid", "extra"),
        ("POST", USERS, {"id": "u1"}, 422, "user.invalid", "name"),
        ("POST", USERS, [], 422, "user.invalid", None),
        ("POST", USERS, new_user("admin", "d01"), 409, "user.exists", None),
        ("PATCH", f"{USERS}/admin", {}, 422, "user.invalid", None),
        ("PATCH", f"{USERS}/admin", {"id": "other"}, 422, "user.invalid", "id"),
        ("PATCH", f"{USERS}/admin", {"name": None}, 422, "user.invalid", "name"),
        ("PATCH", f"{USERS}/admin", {"roles": ["boss"]}, 422, "user.invalid", "roles"),
        ("PATCH", f"{USERS}/admin", {"phone": "1" * 33}, 422, "user.invalid", "phone"),
        ("PATCH", f"{USERS}/nobody", {"name": "x"}, 404, "user.not_found", None),
        ("DELETE", f"{USERS}/nobody", None, 404, "user.not_found", None),
        ("POST", NODES, node("d01.s01", "street"), 409, "org.exists", None),
        ("POST", NODES, node("d01.s01.c09", "grid"), 422, "org.invalid", "level"),
        ("POST", NODES, node("d01.s01.c01.g01.x1", "grid"), 422, "org.invalid", "level"),
        ("POST", NODES, node("d01.s08.c01", "community"), 422, "org.unknown_parent", None),
        ("POST", NODES, node("d02", "district"), 422, "org.invalid", "path"),
        ("POST", NODES, node("d01.s09", "town"), 422, "org.invalid", "level"),
        ("POST", NODES, node("d01.S9", "street"), 422, "org.invalid", "path"),
        ("PATCH", f"{NODES}/d01.s01", {"name": ""}, 422, "org.invalid", "name"),
        ("PATCH", f"{NODES}/d01.s01", {"level": "grid"}, 422, "org.invalid", "level"),
        ("PATCH", f"{NODES}/d01.s07", {"name": "x"}, 404, "org.not_found", None),
    ]  # fmt: skip
    for method, path, body, status, code, loc in cases:
        reply = await api.call(method, path, json=body)
        assert (reply.status, reply.code) == (status, code), (method, path, body, reply.body)
        if loc is not None:
            locs = [d["loc"] for d in reply.body["error"]["details"]]
            assert any(entry.split(".")[0] == loc for entry in locs), (body, locs)

    broken = await api.call("POST", USERS, data=b'{"id": ')
    assert (broken.status, broken.code) == (400, "request.invalid_json")
    for params in [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"cursor": "garbage!"},
        {"role": "boss"},
        {"org": "D01"},
        {"active": "maybe"},
        {"roles": "admin"},
    ]:
        reply = await api.get(USERS, **params)
        assert (reply.status, reply.code) == (400, "request.invalid_query"), (params, reply.body)
        assert reply.body["error"]["details"]
    assert await outbox_count(running_hub.hub, prefix="directory.") == 0


async def test_pagination_walks_all_66_demo_users_exactly_once(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, ADMIN)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "10"} if cursor is None else {"limit": "10", "cursor": cursor}
        page = await api.get(USERS, **params)
        assert page.status == 200, page.body
        pages += 1
        assert len(page.body["items"]) <= 10
        seen.extend(u["id"] for u in page.body["items"])
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    demo = read_users(running_hub.hub.settings.users_file)  # type: ignore[arg-type]
    assert len(demo) == 66
    assert len(seen) == len(set(seen)) == 66
    assert set(seen) == {u.id for u in demo}
    assert seen == sorted(seen)
    assert pages == 7


async def test_user_filters_combine(running_hub: RunningHub, http: aiohttp.ClientSession) -> None:
    api = Api(http, running_hub.url, ADMIN)

    async def ids(**params: str) -> list[str]:
        reply = await api.get(USERS, **params)
        assert reply.status == 200, reply.body
        return [u["id"] for u in reply.body["items"]]

    assert await ids(org="d01.s02.c03") == [
        "s02c03-dispatcher", "s02c03-leader",
        "s02c03g01-worker", "s02c03g02-worker", "s02c03g03-worker", "s02c03g04-worker",
    ]  # fmt: skip
    assert await ids(role="leader") == ["d01-leader", "s01-leader", "s02-leader", "s03-leader"]
    assert len(await ids(role="grid_leader")) == 9
    assert await ids(role="dispatcher", org="d01.s03", q="c02") == ["s03c02-dispatcher"]
    assert await ids(q="王建国") == ["admin"]
    assert await ids(q="S01C01G01") == ["s01c01g01-worker"]  # case-insensitive
    assert await ids(q="%") == []  # LIKE wildcards are literal
    assert await ids(active="false") == []
    assert len(await ids(active="true", limit="500")) == 66


async def test_every_write_publishes_one_event_on_the_node_channel(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    api = Api(http, running_hub.url, ADMIN)
    node = "d01.s01.c01.g09"
    recorder = Recorder()
    client = sdk_client(running_hub.ws_url, ADMIN, recorder)
    sub = client.new_subscription(f"org:{node}", events=recorder)
    await client.connect()
    await sub.subscribe()
    await next_item(recorder.subscribed)

    writes = [
        (
            api.post(NODES, {"path": node, "name": "第九网格", "level": "grid"}),
            "directory.org_changed",
            {"path": node, "action": "created"},
        ),
        (
            api.patch(f"{NODES}/{node}", {"name": "第九网格（新）"}),
            "directory.org_changed",
            {"path": node, "action": "updated"},
        ),
        (
            api.post(USERS, new_user("g09-worker", node)),
            "directory.user_changed",
            {"user_id": "g09-worker", "action": "created"},
        ),
        (
            api.patch(f"{USERS}/g09-worker", {"title": "兼职网格员"}),
            "directory.user_changed",
            {"user_id": "g09-worker", "action": "updated"},
        ),
        (
            api.delete(f"{USERS}/g09-worker"),
            "directory.user_changed",
            {"user_id": "g09-worker", "action": "deactivated"},
        ),
    ]
    for request, event_type, data in writes:
        reply = await request
        assert reply.status in (200, 201), reply.body
        pub = await next_item(recorder.publications)
        assert pub.pub.data["type"] == event_type
        assert pub.pub.data["data"] == data
        assert pub.pub.data["org"] == node
        assert pub.pub.data["source"] == "hub/directory"

    # Deactivating again is no change: no event. A sentinel event pushed after it must be
    # the next publication, so nothing else was published in between.
    assert (await api.delete(f"{USERS}/g09-worker")).status == 200
    status, body = await post_event(running_hub.url, alert(node, "哨兵"))
    assert status == 202, body
    sentinel = await next_item(recorder.publications)
    assert sentinel.pub.data["id"] == body["id"]
    assert recorder.publications.empty()
    assert await outbox_count(running_hub.hub, prefix="directory.") == len(writes)
    await client.disconnect()


async def test_moving_a_user_tells_the_old_and_the_new_node(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    recorder = Recorder()
    client = sdk_client(running_hub.ws_url, ADMIN, recorder)
    old = client.new_subscription("org:d01.s01.c01.g01", events=recorder)
    new = client.new_subscription("org:d01.s02", events=recorder)
    await client.connect()
    await old.subscribe()
    await new.subscribe()
    await next_item(recorder.subscribed)
    await next_item(recorder.subscribed)

    api = Api(http, running_hub.url, ADMIN)
    moved = await api.patch(f"{USERS}/s01c01g01-worker", {"org": "d01.s02.c01.g01"})
    assert moved.status == 200, moved.body
    first = await next_item(recorder.publications)
    second = await next_item(recorder.publications)
    assert first.pub.data["id"] == second.pub.data["id"]
    assert first.pub.data["data"] == {"user_id": "s01c01g01-worker", "action": "updated"}
    assert first.pub.data["org"] == "d01.s02.c01.g01"
    await client.disconnect()
