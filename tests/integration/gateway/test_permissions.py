"""A community user never receives an event of a sibling community, on any path: subscribe,
history, presence, publish, recovery (forged positions included), the personal channel;
and over random org trees, every client receives exactly the events of its subtree."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.client import ErrorCode
from protocols.envelope import Envelope, org_contains
from tests.conftest import RunningHub
from tests.support.clients import Recorder, alert, next_item, post_event, sdk_client
from tests.support.hubs import token
from tests.support.rawws import ConnectionClosed, RawClient

C01 = ("s01c01-dispatcher", "d01.s01.c01", ["dispatcher"])
STREET = ("s01-dispatcher", "d01.s01", ["dispatcher"])
DENIED = ErrorCode.PERMISSION_DENIED


def envelope(org: str, title: str) -> Envelope:
    return Envelope(type="alert.raised", source="test/permissions", org=org, data={"title": title})


async def test_community_user_is_refused_sibling_parent_and_other_users_channels(
    running_hub: RunningHub,
) -> None:
    publisher = running_hub.hub.publisher
    for i in range(3):
        await publisher.publish_now(envelope("d01.s01.c02.g01", f"兄弟社区{i}"))
    await publisher.publish_encoded(envelope("d01.s01", "个人").encode(), ["user:s01-dispatcher"])
    # The real current positions: a forged recovery below uses the right epoch.
    bus = running_hub.hub.bus
    client, _ = await RawClient.connected(running_hub.ws_url, token(*C01))
    try:
        forbidden = [
            "org:d01.s01.c02",
            "org:d01.s01.c02.g01",
            "org:d01.s01",
            "org:d01",
            "org:d01.s01.c010",  # shares a string prefix with the user's own node
            "org:d01.s01.c01x",
            "org:d01.s02.c01",
            "user:s01-dispatcher",
            "user:s01c02-dispatcher",
        ]
        for name in forbidden:
            position = (await bus.history(name, since=None, limit=0)).position
            forged = {"offset": 0, "epoch": position.epoch}
            replies = [
                await client.call("subscribe", {"channel": name}),
                await client.call("subscribe", {"channel": name, "recover": True, **forged}),
                await client.call(
                    "subscribe", {"channel": name, "recover": True, "offset": 0, "epoch": "x"}
                ),
                await client.call("history", {"channel": name, "limit": -1}),
                await client.call("history", {"channel": name, "limit": -1, "since": forged}),
                await client.call("presence", {"channel": name}),
                await client.call("presence_stats", {"channel": name}),
                await client.call("publish", {"channel": name, "data": {"text": "越权"}}),
            ]
            for reply in replies:
                assert reply.get("error", {}).get("code") == DENIED, (name, reply)
        # Nothing of those channels reached the client by any other way either.
        assert [m for m in client.pending() if "push" in m] == []
        assert running_hub.hub.gateway.node.channels.keys() == {"user:s01c01-dispatcher"}
    finally:
        await client.close()


async def test_connect_recovery_ignores_another_users_personal_channel(
    running_hub: RunningHub,
) -> None:
    secret = envelope("d01.s01.c02", "别人的通知")
    positions = await running_hub.hub.publisher.publish_encoded(
        secret.encode(), ["user:s01c02-dispatcher"]
    )
    victim = positions["user:s01c02-dispatcher"]
    forged = {"recover": True, "offset": 0, "epoch": victim.epoch}
    client, result = await RawClient.connected(
        running_hub.ws_url, token(*C01), subs={"user:s01c02-dispatcher": forged}
    )
    try:
        assert set(result["subs"]) == {"user:s01c01-dispatcher"}
        assert "publications" not in result["subs"]["user:s01c01-dispatcher"]
        marker = envelope("d01.s01.c01", "自己的")
        await running_hub.hub.publisher.publish_encoded(marker.encode(), ["user:s01c01-dispatcher"])
        push = await client.publication()
        assert push["pub"]["data"]["id"] == marker.id
        assert secret.id not in str(client.received)
    finally:
        await client.close()


async def test_sibling_events_never_reach_a_community_subscriber_live_or_recovered(
    running_hub: RunningHub,
) -> None:
    recorder = Recorder()
    client = sdk_client(running_hub.ws_url, token(*C01), recorder)
    sub = client.new_subscription("org:d01.s01.c01", events=recorder)
    street = Recorder()
    observer = sdk_client(running_hub.ws_url, token(*STREET), street)
    street_sub = observer.new_subscription("org:d01.s01", events=street)
    await client.connect()
    await observer.connect()
    try:
        await sub.subscribe()
        await street_sub.subscribe()
        await next_item(recorder.subscribed)
        await next_item(street.subscribed)

        siblings = ["d01.s01.c02", "d01.s01.c02.g01", "d01.s01.c03.g04", "d01.s01", "d01.s02.c01"]
        sent = [await _ingest(running_hub, org, "兄弟社区事件") for org in siblings[:4]]
        marker = await _ingest(running_hub, "d01.s01.c01.g02", "本社区标记")
        # The street centre sees all of them, in order: they were all published.
        seen = [(await next_item(street.publications)).pub.data["id"] for _ in range(5)]
        assert seen == [*sent, marker]
        # The community subscriber's first publication is the marker, at offset 1: no
        # sibling event was ever published on its channel.
        first = await next_item(recorder.publications)
        assert first.pub.data["id"] == marker
        assert first.pub.offset == 1
        assert recorder.publications.empty()

        # Offline, then recovery: only the community's own events come back.
        await client.disconnect()
        hidden = [await _ingest(running_hub, org, "离线期间兄弟事件") for org in siblings[:2]]
        own = await _ingest(running_hub, "d01.s01.c01", "离线期间本社区")
        seen = [(await next_item(street.publications)).pub.data["id"] for _ in range(3)]
        assert seen == [*hidden, own]
        await client.connect()
        again = await next_item(recorder.subscribed)
        assert again.was_recovering and again.recovered
        recovered = await next_item(recorder.publications)
        assert recovered.pub.data["id"] == own and recovered.pub.offset == 2
        assert recorder.publications.empty()
        assert recorder.server_publications.empty()
    finally:
        await client.disconnect()
        await observer.disconnect()


async def test_refresh_with_a_token_for_another_org_does_not_keep_the_old_subtree(
    running_hub: RunningHub,
) -> None:
    """A user moved from community c02 to c01 refreshes with the new token. From then
    on, c02's events must not reach them: the hub either drops the subscriptions the new
    token does not allow or makes the client reconnect (a 3000-3499 code) so it
    subscribes again under the new permissions."""
    user = "mover"
    client, _ = await RawClient.connected(
        running_hub.ws_url, token(user, "d01.s01.c02", ["dispatcher"])
    )
    try:
        await client.result("subscribe", {"channel": "org:d01.s01.c02"})
        publisher = running_hub.hub.publisher
        secret = envelope("d01.s01.c02.g01", "调离之后的旧社区事件")
        marker = envelope("d01.s01.c01", "marker")
        try:
            await client.call("refresh", {"token": token(user, "d01.s01.c01", ["dispatcher"])})
            await publisher.publish_now(secret)
            await publisher.publish_encoded(marker.encode(), [f"user:{user}"])
            got = await client.publication()
            while got["channel"] != f"user:{user}":
                assert got["pub"]["data"]["id"] != secret.id, "old subtree still delivered"
                got = await client.publication()
        except ConnectionClosed as closed:
            assert closed.code is not None and 3000 <= closed.code < 3500, closed.code
        assert secret.id not in str(client.received)
    finally:
        await client.close()


async def _ingest(hub: RunningHub, org: str, title: str) -> str:
    status, body = await post_event(hub.url, alert(org, title))
    assert status == 202, body
    return str(body["id"])


# -- random trees ------------------------------------------------------------------------------

SEGMENTS = ["s1", "s10", "s11", "c1", "c12", "g1", "g10"]


@st.composite
def placements(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    """A random org tree under a fresh root, users placed on random nodes, and random
    event targets. Returns (nodes, user orgs, event orgs)."""
    root = draw(st.sampled_from(["t1", "t10"])) + "x" + str(draw(st.integers(0, 10**9)))
    nodes = [root]
    frontier = [(root, 1)]
    while frontier:
        path, depth = frontier.pop()
        if depth < 4:
            for child in draw(st.lists(st.sampled_from(SEGMENTS), max_size=3, unique=True)):
                nodes.append(f"{path}.{child}")
                frontier.append((nodes[-1], depth + 1))
    users = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=5))
    events = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=12))
    return nodes, users, events


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(placements())
async def test_every_client_receives_exactly_the_events_of_its_subtree(
    sqlite_hub: RunningHub, placement: tuple[list[str], list[str], list[str]]
) -> None:
    _, user_orgs, event_orgs = placement
    clients: list[tuple[str, RawClient]] = []
    try:
        for i, org in enumerate(user_orgs):
            client, _ = await RawClient.connected(
                sqlite_hub.ws_url, token(f"user{i}", org, ["grid_worker"])
            )
            clients.append((org, client))
            # Subscribing to the own node is allowed; the parent, if any, is not.
            await client.result("subscribe", {"channel": f"org:{org}"})
            if "." in org:
                parent = org.rsplit(".", 1)[0]
                assert await client.error("subscribe", {"channel": f"org:{parent}"}) == DENIED
        published: list[tuple[str, str]] = []
        publisher = sqlite_hub.hub.publisher
        for org in event_orgs:
            env = envelope(org, "随机")
            await publisher.publish_now(env)
            published.append((org, env.id))
        # Then a "done" on each user's personal channel: the hub delivers in publish
        # order, so once a client has its "done", every org event before it has arrived.
        done = envelope(event_orgs[0], "done").encode()
        for i in range(len(clients)):
            await publisher.publish_encoded(done, [f"user:user{i}"])
        for org, client in clients:
            got: list[str] = []
            while True:
                push = await client.publication()
                if push["channel"].startswith("user:"):
                    break
                assert push["channel"] == f"org:{org}"
                got.append(push["pub"]["data"]["id"])
            expected = [eid for eorg, eid in published if org_contains(org, eorg)]
            assert got == expected, (org, event_orgs)
    finally:
        for _, client in clients:
            await client.close()
