"""Camera status through the registry on both backends: camera.online / camera.offline
are published once per change on the camera's org channels and ``camera:<id>``, and the
``camera:<id>`` channel is refused to anyone outside the camera's org subtree."""

from __future__ import annotations

from typing import Any

from protocols.client import ErrorCode
from tests.conftest import RunningHub
from tests.integration.api.conftest import Api
from tests.integration.cameras.conftest import ADMIN, GATE, OTHER_STREET, STREET
from tests.support.clients import Subscriber, next_item, subscribe
from tests.support.rawws import RawClient


async def next_camera_event(subscriber: Subscriber) -> dict[str, Any]:
    """The next camera.* envelope the subscriber receives."""
    while True:
        envelope: dict[str, Any] = (await next_item(subscriber.recorder.publications)).pub.data
        if envelope["type"].startswith("camera."):
            return envelope


async def test_set_status_publishes_online_and_offline_once_per_change(
    running_hub: RunningHub, api: Api
) -> None:
    registry = running_hub.hub.cameras
    assert registry is not None
    street = await subscribe(running_hub.ws_url, STREET.token, "org:d01.s01")
    per_camera = await subscribe(running_hub.ws_url, STREET.token, f"camera:{GATE}")
    try:
        await registry.set_status(GATE, True, "first frame")
        await registry.set_status(GATE, True)  # same status: nothing
        await registry.set_status(GATE, False, "connection refused")
        await registry.set_status(GATE, False, "still refused")  # nothing
        await registry.set_status(GATE, True, "reconnected")
        await registry.set_status("no-such-camera", True)  # ignored
        for subscriber in (street, per_camera):
            got = [await next_camera_event(subscriber) for _ in range(3)]
            assert [(e["type"], e["data"]["reason"]) for e in got] == [
                ("camera.online", "first frame"),
                ("camera.offline", "connection refused"),
                ("camera.online", "reconnected"),
            ]
            first = got[0]
            assert first["org"] == "d01.s01.c01.g01" and first["subject"] == GATE
            assert first["data"]["camera_id"] == GATE and first["data"]["name"] == "青和居小区东门"
            assert first["data"]["org"] == "d01.s01.c01.g01" and first["data"]["at"]
        # Nothing more was published: a change made now is the very next event.
        await registry.set_status(GATE, False, "sentinel")
        for subscriber in (street, per_camera):
            assert (await next_camera_event(subscriber))["data"]["reason"] == "sentinel"
    finally:
        await street.client.disconnect()
        await per_camera.client.disconnect()
    record = await registry.get(GATE)
    assert record is not None and record.status == "offline"
    camera = (await api.as_(ADMIN.token).get(f"/api/v1/cameras/{GATE}")).body
    assert camera["status"] == "offline" and camera["status_changed_at"]


async def test_camera_channel_is_refused_to_outsiders_and_for_unknown_cameras(
    running_hub: RunningHub,
) -> None:
    outsider, _ = await RawClient.connected(running_hub.ws_url, OTHER_STREET.token)
    insider, _ = await RawClient.connected(running_hub.ws_url, STREET.token)
    try:
        for name in (f"camera:{GATE}", "camera:no-such-camera", "camera:" + "x" * 65):
            for method, params in [
                ("subscribe", {"channel": name}),
                ("history", {"channel": name, "limit": -1}),
                ("publish", {"channel": name, "data": {"x": 1}}),
            ]:
                reply = await outsider.call(method, params)
                assert reply.get("error", {}).get("code") == ErrorCode.PERMISSION_DENIED, (
                    name,
                    method,
                    reply,
                )
        assert "error" not in await insider.call("subscribe", {"channel": f"camera:{GATE}"})
        assert "error" in await insider.call("subscribe", {"channel": "camera:no-such-camera"})
    finally:
        await outsider.close()
        await insider.close()
