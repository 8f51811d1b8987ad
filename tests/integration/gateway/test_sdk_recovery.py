"""The official centrifuge-python SDK against the hub: connect, subscribe, receive an
event pushed through the signed ingest API, and recover missed publications."""

from __future__ import annotations

from tests.conftest import RunningHub
from tests.support.clients import alert, next_item, post_event, subscribe
from tests.support.hubs import token
from tests.support.rawws import eventually


async def test_sdk_receives_ingested_event_and_recovers_missed_ones(
    running_hub: RunningHub,
) -> None:
    watched = await subscribe(
        running_hub.ws_url, token("s01-dispatcher", "d01.s01", ["dispatcher"]), "org:d01.s01"
    )
    client, recorder, first = watched.client, watched.recorder, watched.subscribed
    assert first.recoverable and not first.was_recovering

    status, body = await post_event(running_hub.url, alert("d01.s01.c02.g03", "井盖缺失"))
    assert status == 202, body
    pub = await next_item(recorder.publications)
    assert pub.pub.data["id"] == body["id"]
    assert pub.pub.data["type"] == "alert.raised"
    assert pub.pub.data["data"]["title"] == "井盖缺失"
    assert body["channels"] == [
        "org:d01.s01.c02.g03",
        "org:d01.s01.c02",
        "org:d01.s01",
        "org:d01",
    ]

    await client.disconnect()
    missed = []
    for i in range(3):
        status, body = await post_event(running_hub.url, alert("d01.s01.c01", f"离线期间 {i}"))
        assert status == 202
        missed.append(body["id"])
    # The events are committed to the outbox; wait until the relay has published them.
    await _wait_published(running_hub, 4)

    await client.connect()
    again = await next_item(recorder.subscribed)
    assert again.was_recovering and again.recovered
    got = [(await next_item(recorder.publications)).pub.data["id"] for _ in missed]
    assert got == missed
    await client.disconnect()


async def _wait_published(running_hub: RunningHub, count: int) -> None:
    relay = running_hub.hub.relay
    await eventually(lambda: relay.published >= count, f"the relay published {count} events")
