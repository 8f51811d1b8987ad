"""``POST /api/v1/events`` on both backends: acceptance and delivery, every documented
rejection (counted in metrics, harmless to the hub), and Idempotency-Key semantics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from typing import Any

import aiohttp

from protocols import signing
from tests.conftest import RunningHub
from tests.integration.api.conftest import outbox_count
from tests.support.clients import Recorder, alert, next_item, post_event, sdk_client, signed_headers
from tests.support.hubs import API_KEY, NARROW_KEY, token

EVENTS = "/api/v1/events"
SECRET = API_KEY.secret.get_secret_value()
OVERSIZE = 65536 + 1  # one byte over the default ingest.max_body_bytes


def encode(event: Any) -> bytes:
    """A request body."""
    return json.dumps(event, ensure_ascii=False).encode()


async def send(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST raw bytes with exactly these headers."""
    async with http.post(url + EVENTS, data=body, headers=headers) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def subscriber(running_hub: RunningHub, channel: str) -> tuple[Any, Recorder]:
    """A connected SDK client subscribed to ``channel`` (a district dispatcher)."""
    recorder = Recorder()
    client = sdk_client(
        running_hub.ws_url, token("d01-dispatcher", "d01", ["dispatcher"]), recorder
    )
    sub = client.new_subscription(channel, events=recorder)
    await client.connect()
    await sub.subscribe()
    await next_item(recorder.subscribed)
    return client, recorder


async def expect_only(recorder: Recorder, running_hub: RunningHub, ids: list[str]) -> None:
    """The subscriber receives exactly ``ids`` and nothing more: a sentinel event pushed
    last must be the very next publication."""
    for event_id in ids:
        pub = await next_item(recorder.publications)
        assert pub.pub.data["id"] == event_id
    status, body = await post_event(running_hub.url, alert("d01.s01", "哨兵"))
    assert status == 202
    pub = await next_item(recorder.publications)
    assert pub.pub.data["id"] == body["id"]


def rejected_counts(metrics_text: str) -> dict[str, float]:
    """``hub_ingest_rejected_total`` by code from a Prometheus exposition."""
    pattern = re.compile(r'^hub_ingest_rejected_total\{code="([^"]+)"\} (\S+)$', re.M)
    return {code: float(value) for code, value in pattern.findall(metrics_text)}


async def test_accepted_event_is_committed_and_delivered(running_hub: RunningHub) -> None:
    client, recorder = await subscriber(running_hub, "org:d01.s01.c01")
    status, body = await post_event(
        running_hub.url, alert("d01.s01.c01.g02", "路灯损坏", level="warning")
    )
    assert status == 202, body
    assert body["status"] == "accepted"
    assert body["channels"][0] == "org:d01.s01.c01.g02"
    pub = await next_item(recorder.publications)
    assert pub.pub.data["id"] == body["id"]
    assert pub.pub.data["source"] == f"external/{API_KEY.id}"
    assert pub.pub.data["data"] == {"title": "路灯损坏", "level": "warning"}
    assert await outbox_count(running_hub.hub, event_id=body["id"]) == 1
    await client.disconnect()


async def test_every_documented_rejection_is_counted_and_harmless(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    url = running_hub.url
    good = encode(alert("d01.s01"))
    now = int(time.time())
    other_sig = signing.sign(SECRET, str(now), b"{}")

    def signed(body: bytes, **kw: Any) -> tuple[bytes, dict[str, str]]:
        return body, signed_headers(body, **kw)

    cases: list[tuple[str, tuple[bytes, dict[str, str]], int, str]] = [
        ("no auth headers", (good, {"Content-Type": "application/json"}), 401, "auth.missing"),
        ("no signature", (good, {"X-Api-Key": API_KEY.id, "X-Timestamp": str(now)}), 401,
         "auth.missing"),
        ("unknown key", signed(good, key_id="nobody"), 401, "auth.unknown_key"),
        ("stale", signed(good, timestamp=now - 3600), 401, "auth.stale_timestamp"),
        ("future", signed(good, timestamp=now + 3600), 401, "auth.stale_timestamp"),
        ("bad timestamp", (good, {"X-Api-Key": API_KEY.id, "X-Timestamp": "yesterday",
                                  "X-Signature": signing.sign(SECRET, "yesterday", good)}), 401,
         "auth.bad_timestamp"),
        ("wrong body signed", (good, {"X-Api-Key": API_KEY.id, "X-Timestamp": str(now),
                                      "X-Signature": other_sig}), 401, "auth.bad_signature"),
        ("wrong secret", signed(good, secret="guess"), 401, "auth.bad_signature"),
        ("invalid json", signed(b'{"type": "alert.raised",'), 400, "request.invalid_json"),
        ("not an object", signed(b"[1, 2]"), 422, "event.invalid"),
        ("unknown type", signed(encode({"type": "no.such", "org": "d01", "data": {}})), 422,
         "event.invalid"),
        ("internal type", signed(encode({"type": "message.posted", "org": "d01",
                                         "data": {"text": "hi"}})), 422, "event.invalid"),
        ("bad data", signed(encode(alert("d01", level="severe"))), 422, "event.invalid"),
        ("empty title", signed(encode(alert("d01", title=""))), 422, "event.invalid"),
        ("extra data field", signed(encode(alert("d01", colour="red"))), 422, "event.invalid"),
        ("extra top-level field", signed(encode({**alert("d01"), "priority": 1})), 422,
         "event.invalid"),
        ("missing data", signed(encode({"type": "alert.raised", "org": "d01"})), 422,
         "event.invalid"),
        ("outside the key's subtree", signed(encode(alert("d01.s02")), key_id=NARROW_KEY.id,
                                              secret=NARROW_KEY.secret.get_secret_value()), 403,
         "auth.org_forbidden"),
        ("unknown org", signed(encode(alert("d01.s01.c09"))), 422, "event.unknown_org"),
        ("bad idempotency key", signed(good, idempotency_key="k" * 129), 400,
         "request.bad_idempotency_key"),
        ("oversize", signed(b" " * OVERSIZE), 413, "request.too_large"),
    ]  # fmt: skip
    expected: Counter[str] = Counter()
    for name, (body, headers), status, code in cases:
        got_status, got, _ = await send(http, url, body, headers)
        assert (got_status, got["error"]["code"]) == (status, code), (name, got)
        expected[code] += 1
    details = (await send(http, url, *signed(encode(alert("d01", level="severe")))))[1]
    assert details["error"]["details"][0]["loc"] == "level"
    expected["event.invalid"] += 1

    # Replay: the identical signed request a second time.
    body, headers = signed(encode(alert("d01.s01", "一次")))
    first = await send(http, url, body, headers)
    assert first[0] == 202
    replay = await send(http, url, body, headers)
    assert (replay[0], replay[1]["error"]["code"]) == (409, "auth.replayed")
    expected["auth.replayed"] += 1

    async with http.get(url + "/metrics") as resp:
        counts = rejected_counts(await resp.text())
    assert counts == {code: float(n) for code, n in expected.items()}

    async with http.get(url + "/readyz") as resp:
        assert resp.status == 200, await resp.text()
    client, recorder = await subscriber(running_hub, "org:d01.s01")
    status, accepted = await post_event(url, alert("d01.s01", "之后仍然可用"))
    assert status == 202
    assert (await next_item(recorder.publications)).pub.data["id"] == accepted["id"]
    await client.disconnect()


async def test_idempotent_retry_gets_the_first_answer_and_publishes_once(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    client, recorder = await subscriber(running_hub, "org:d01.s01")
    body = encode(alert("d01.s01.c02", "重复提交"))
    now = int(time.time())
    first = await send(
        http,
        running_hub.url,
        body,
        signed_headers(body, timestamp=now - 1, idempotency_key="retry-1"),
    )
    assert first[0] == 202, first[1]
    assert "Idempotent-Replayed" not in first[2]
    # The retry is signed anew (a new timestamp), as a client retrying after a timeout does.
    retry = await send(
        http, running_hub.url, body, signed_headers(body, timestamp=now, idempotency_key="retry-1")
    )
    assert retry[0] == 202, retry[1]
    assert retry[1] == first[1]
    assert retry[2]["Idempotent-Replayed"] == "true"

    changed = encode(alert("d01.s01.c02", "另一个内容"))
    conflict = await send(
        http, running_hub.url, changed, signed_headers(changed, idempotency_key="retry-1")
    )
    assert (conflict[0], conflict[1]["error"]["code"]) == (409, "idempotency.conflict")

    await expect_only(recorder, running_hub, [first[1]["id"]])
    assert await outbox_count(running_hub.hub, event_id=first[1]["id"]) == 1
    assert await outbox_count(running_hub.hub, prefix="alert.") == 2  # + the sentinel
    await client.disconnect()


async def test_concurrent_requests_with_one_idempotency_key_make_one_event(
    running_hub: RunningHub, http: aiohttp.ClientSession
) -> None:
    client, recorder = await subscriber(running_hub, "org:d01.s01")
    body = encode(alert("d01.s01.c03", "并发提交"))
    now = int(time.time())
    # Each attempt carries its own signature (distinct timestamps), like real retries.
    attempts = [
        send(http, running_hub.url, body,
             signed_headers(body, timestamp=now - i, idempotency_key="burst"))
        for i in range(20)
    ]  # fmt: skip
    results = await asyncio.gather(*attempts)
    assert [status for status, _, _ in results] == [202] * 20, [r[1] for r in results]
    ids = {answer["id"] for _, answer, _ in results}
    assert len(ids) == 1
    replayed = [h.get("Idempotent-Replayed") for _, _, h in results]
    assert replayed.count(None) == 1 and replayed.count("true") == 19

    await expect_only(recorder, running_hub, list(ids))
    assert await outbox_count(running_hub.hub, prefix="alert.") == 2  # + the sentinel
    await client.disconnect()
