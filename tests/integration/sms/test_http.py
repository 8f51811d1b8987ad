"""The HTTP provider against a stand-in Jasmin, and Jasmin's callbacks into the hub."""

from __future__ import annotations

import aiohttp

from adapters.sms.http import DLR_PATH, MO_PATH
from hub.sms.service import SmsService
from tests.conftest import RunningHub
from tests.integration.mqtt.helpers import until
from tests.integration.sms.conftest import console_events, state_of
from tests.support.jasmin import FakeJasmin, dlr_params, mo_params, post_form

TEXT = "【青山区综治中心】明早九点在红钢城街道召开网格员例会，请准时参加。"


def service(hub: RunningHub) -> SmsService:
    """The hub's SMS service."""
    assert hub.hub.sms is not None
    return hub.hub.sms


async def test_message_goes_to_send_in_ucs2_and_dlrs_move_it_to_delivered(
    http_hub: RunningHub, jasmin: FakeJasmin
) -> None:
    events = await console_events(http_hub)
    await service(http_hub).enqueue("13800138000", TEXT, key="meeting-1")
    await jasmin.wait_for(lambda: len(jasmin.sent) == 1)
    sent = jasmin.sent[0]
    assert sent.params["coding"] == "8"
    assert bytes.fromhex(sent.params["hex-content"]).decode("utf-16-be") == TEXT
    assert sent.params["to"] == "13800138000"
    assert sent.params["dlr"] == "yes" and sent.params["dlr-level"] == "3"
    dlr_url = sent.params["dlr-url"]
    assert dlr_url == http_hub.url + DLR_PATH
    await until(lambda: service(http_hub).counters.submitted == 1)

    status, body = await post_form(dlr_url, dlr_params(sent.message_id, "ESME_ROK", level=1))
    assert (status, body) == (200, "ACK/Jasmin")
    assert await state_of(http_hub, "meeting-1") == "sent"
    status, body = await post_form(dlr_url, dlr_params(sent.message_id, "DELIVRD"))
    assert (status, body) == (200, "ACK/Jasmin")
    data = await events.next("sms.delivered", lambda d: d["message_id"] == "meeting-1")
    assert data["to"] == "13800138000"
    # Jasmin resending the same report is acknowledged and changes nothing.
    assert await post_form(dlr_url, dlr_params(sent.message_id, "DELIVRD")) == (200, "ACK/Jasmin")
    assert service(http_hub).counters.receipts == {"interim": 1, "applied": 1, "duplicate": 1}
    await events.close()


async def test_inbound_callback_is_stored_once_published_and_acknowledged(
    http_hub: RunningHub,
) -> None:
    events = await console_events(http_hub)
    params = mo_params("5e0c9a1b-mo-1", "13912345678", "收到，明天准时参加。")
    assert await post_form(http_hub.url + MO_PATH, params) == (200, "ACK/Jasmin")
    data = await events.next("sms.received")
    assert data["text"] == "收到，明天准时参加。" and data["sender"] == "13912345678"
    # Jasmin resends when it missed our answer: acknowledged, stored and published once.
    assert await post_form(http_hub.url + MO_PATH, params) == (200, "ACK/Jasmin")
    assert service(http_hub).counters.inbound == 1
    assert service(http_hub).counters.inbound_duplicates == 1
    await events.close()


async def test_garbage_callbacks_get_400_with_an_error_code_are_counted_and_serving_goes_on(
    http_hub: RunningHub,
) -> None:
    async def post(path: str, params: dict[str, str]) -> tuple[int, dict[str, object]]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(http_hub.url + path, data=params) as resp,
        ):
            return resp.status, await resp.json()

    status, body = await post(DLR_PATH, {"id": "x", "level": "9"})
    assert status == 400 and body["error"]["code"] == "sms.bad_dlr"  # type: ignore[index]
    status, body = await post(MO_PATH, {"from": "1390000", "content": "hi"})
    assert status == 400 and body["error"]["code"] == "sms.bad_mo"  # type: ignore[index]
    status, body = await post(DLR_PATH, dlr_params("no-such-message", "DELIVRD"))
    assert status == 404 and body["error"]["code"] == "sms.unknown_message"  # type: ignore[index]
    counters = service(http_hub).counters
    assert sum(counters.rejected_by_reason.values()) == 2
    assert counters.receipts == {"unknown_id": 1}
    params = mo_params("mo-after-garbage", "13912345678", "ok")
    assert await post_form(http_hub.url + MO_PATH, params) == (200, "ACK/Jasmin")


async def test_gateway_down_for_a_while_then_every_queued_message_is_sent_exactly_once(
    http_hub: RunningHub, jasmin: FakeJasmin
) -> None:
    await jasmin.go_down()
    keys = [f"down-{n}" for n in range(8)]
    for n, key in enumerate(keys):
        await service(http_hub).enqueue(f"1380000{n:04d}", f"message {n}", key=key)
    counters = service(http_hub).counters
    await until(lambda: counters.submit_failures.get("temporary", 0) >= 2 * len(keys))
    assert {await state_of(http_hub, k) for k in keys} <= {"queued", "sending"}
    await jasmin.start()
    await jasmin.wait_for(lambda: len(jasmin.sent) == len(keys))
    await until(lambda: counters.submitted == len(keys))
    assert sorted(s.params["content"] for s in jasmin.sent) == sorted(
        f"message {n}" for n in range(8)
    )
    assert {await state_of(http_hub, k) for k in keys} == {"sent"}
    assert await service(http_hub).send_once() == 0
    assert len(jasmin.sent) == len(keys)
