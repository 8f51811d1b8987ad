"""``POST /api/v1/cameras/{id}/alarms`` on both backends: a signed alarm is committed and
pushed live as camera.alarm; every rejection has a clear code; a rule turns an alarm kind
into a case; alarm hooks run after the commit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hub.cameras.registry import CameraRecord
from hub.events import CameraAlarm
from tests.conftest import RunningHub
from tests.integration.api.conftest import Api
from tests.integration.cameras.conftest import (
    FIRE_CATEGORY,
    GATE,
    SCHOOL,
    STREET,
    push_alarm,
)
from tests.support.clients import WAIT, next_item, signed_headers, subscribe
from tests.support.hubs import NARROW_KEY

OVERSIZE = 65536 + 1  # one byte over the default ingest.max_body_bytes


def intrusion(**fields: Any) -> dict[str, Any]:
    """An alarm body."""
    body: dict[str, Any] = {
        "kind": "intrusion",
        "level": "warning",
        "description": "夜间翻越围墙",
        "occurred_at": "2026-11-23T22:15:00+08:00",
        "external_ref": "platform-alarm-0042",
    }
    body.update(fields)
    return body


async def test_signed_alarm_is_accepted_and_pushed_live(running_hub: RunningHub) -> None:
    registry = running_hub.hub.cameras
    assert registry is not None
    hooked: asyncio.Queue[tuple[CameraRecord, CameraAlarm]] = asyncio.Queue()

    async def hook(record: CameraRecord, alarm: CameraAlarm) -> None:
        await hooked.put((record, alarm))

    registry.alarm_hooks.append(hook)
    per_camera = await subscribe(running_hub.ws_url, STREET.token, f"camera:{GATE}")
    street = await subscribe(running_hub.ws_url, STREET.token, "org:d01.s01")
    try:
        status, body = await push_alarm(running_hub.url, GATE, intrusion())
        assert status == 202, body
        assert body["status"] == "accepted" and body["case_id"] is None
        assert f"camera:{GATE}" in body["channels"] and "org:d01.s01" in body["channels"]
        for subscriber in (per_camera, street):
            envelope = (await next_item(subscriber.recorder.publications)).pub.data
            assert envelope["id"] == body["id"] and envelope["type"] == "camera.alarm"
            assert envelope["org"] == "d01.s01.c01.g01"
            assert envelope["data"] == {
                "camera_id": GATE,
                "kind": "intrusion",
                "level": "warning",
                "description": "夜间翻越围墙",
                "at": "2026-11-23T14:15:00+00:00",
                "external_ref": "platform-alarm-0042",
            }
        record, alarm = await asyncio.wait_for(hooked.get(), WAIT)
        assert record.id == GATE and alarm.kind == "intrusion"
    finally:
        await per_camera.client.disconnect()
        await street.client.disconnect()


async def test_alarm_rejections_have_clear_codes(running_hub: RunningHub) -> None:
    url = running_hub.url
    raw = json.dumps(intrusion()).encode()
    forged = signed_headers(raw, secret="not-the-secret")
    assert await push_alarm(url, GATE, None, body=raw, headers=forged) == (
        401,
        {"error": {"code": "auth.bad_signature", "message": "signature does not match"}},
    )
    status, body = await push_alarm(url, GATE, None, body=raw, headers={})
    assert (status, body["error"]["code"]) == (401, "auth.missing")

    # The signature covers the timestamp and the body, not the path: each request below
    # differs in its body, or the second of two in one second would be a replay.
    status, body = await push_alarm(url, "no-such-camera", intrusion(external_ref="a1"))
    assert (status, body["error"]["code"]) == (404, "camera.not_found")
    status, body = await push_alarm(url, "x" * 65, intrusion(external_ref="a2"))
    assert (status, body["error"]["code"]) == (404, "camera.not_found")

    # The street's key reports for its own street's cameras only.
    narrow = {"key_id": NARROW_KEY.id, "secret": NARROW_KEY.secret.get_secret_value()}
    status, body = await push_alarm(url, SCHOOL, intrusion(external_ref="a3"), **narrow)
    assert (status, body["error"]["code"]) == (403, "auth.org_forbidden")
    status, body = await push_alarm(url, GATE, intrusion(external_ref="a4"), **narrow)
    assert status == 202, body

    big = json.dumps(intrusion(description="x" * OVERSIZE)).encode()
    status, body = await push_alarm(url, GATE, None, body=big, headers=signed_headers(big))
    assert (status, body["error"]["code"]) == (413, "request.too_large")

    for n, bad in enumerate(
        [
            intrusion(level="apocalyptic"),
            intrusion(kind="Not A Kind"),
            intrusion(occurred_at="2026-11-23T22:15:00"),
            intrusion(extra=1),
            {"level": "info"},
        ]
    ):
        status, body = await push_alarm(url, GATE, {**bad, "external_ref": f"bad-{n}"})
        assert (status, body["error"]["code"]) == (422, "camera.invalid_alarm"), bad
    junk = b"{not json"
    status, body = await push_alarm(url, GATE, None, body=junk, headers=signed_headers(junk))
    assert (status, body["error"]["code"]) == (400, "request.invalid_json")

    once = signed_headers(raw)
    assert (await push_alarm(url, GATE, None, body=raw, headers=once))[0] == 202
    status, body = await push_alarm(url, GATE, None, body=raw, headers=once)
    assert (status, body["error"]["code"]) == (409, "auth.replayed")


async def test_alarm_kind_with_a_rule_reports_a_case_at_the_camera(
    running_hub: RunningHub, api: Api
) -> None:
    watcher = await subscribe(running_hub.ws_url, STREET.token, "org:d01.s01")
    try:
        status, body = await push_alarm(
            running_hub.url, GATE, intrusion(kind="fire", level="critical", description="烟雾")
        )
        assert status == 202, body
        case_id = body["case_id"]
        assert case_id
        types = set()
        while types != {"camera.alarm", "case.reported"}:
            types.add((await next_item(watcher.recorder.publications)).pub.data["type"])
    finally:
        await watcher.client.disconnect()
    case = (await api.as_(STREET.token).get(f"/api/v1/cases/{case_id}")).body
    assert case["category"] == FIRE_CATEGORY and case["priority"] == "urgent"
    assert case["org"] == "d01.s01.c01.g01" and case["channel"] == "other_system"
    assert case["description"] == "烟雾" and case["state"] == "reported"
    assert case["attributes"]["camera_id"] == GATE
    assert case["attributes"]["alarm_id"] == body["id"]
