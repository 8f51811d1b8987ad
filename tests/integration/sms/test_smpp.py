"""The SMPP provider against the test SMSC on a real socket, through the whole hub."""

from __future__ import annotations

from typing import Any

from adapters.sms import SmsAdapter
from hub.sms.service import SmsService
from protocols.sms import CommandStatus, DeliverSmResp, GenericNack, parse_udh, split_udh
from protocols.sms.smpp import HEADER
from tests.conftest import RunningHub
from tests.integration.mqtt.helpers import until
from tests.integration.sms.conftest import console_events, state_of
from tests.support.smsc import STATUS_BAD_DEST, STATUS_THROTTLED, TestSmsc, decimal_id

NOTICE = "网格员请注意：今晚八点起青山区红钢城街道停水检修，请通知辖区居民提前储水。"
CHINESE_200 = (NOTICE * 6)[:200]


def service(hub: RunningHub) -> SmsService:
    """The hub's SMS service."""
    assert hub.hub.sms is not None
    return hub.hub.sms


def adapter(hub: RunningHub) -> SmsAdapter:
    """The hub's SMS adapter."""
    return next(a for a in hub.hub.adapters if isinstance(a, SmsAdapter))


def rejected(hub: RunningHub) -> dict[str, int]:
    """The SMS rejection counters."""
    return service(hub).counters.rejected_by_reason


async def test_long_chinese_text_goes_out_as_three_ucs2_parts_and_decimal_receipts_deliver_it(
    smpp_hub: RunningHub, smsc: TestSmsc
) -> None:
    events = await console_events(smpp_hub)
    assert len(CHINESE_200) == 200
    queued = await service(smpp_hub).enqueue("+8613800138000", CHINESE_200, key="notice-1-u1")
    assert queued.segments == 3
    await smsc.wait_for(lambda: len(smsc.submitted) == 3)

    pdus = [s.pdu for s in smsc.submitted]
    refs = set()
    joined = ""
    for seq, pdu in enumerate(pdus, start=1):
        assert pdu.data_coding == 8
        assert pdu.esm_class & 0x40
        assert pdu.destination_addr == "8613800138000"
        assert pdu.dest_addr_ton == 1
        assert pdu.registered_delivery == 1
        udh, payload = split_udh(pdu.short_message)
        concat = parse_udh(udh)
        assert concat is not None and (concat.total, concat.seq) == (3, seq)
        refs.add(concat.ref)
        assert len(pdu.short_message) <= 140
        joined += payload.decode("utf-16-be")
    assert len(refs) == 1
    assert joined == CHINESE_200

    await until(lambda: len(smsc.submitted) == 3)  # recorded under the SMSC's hex ids
    for sub in smsc.submitted:
        assert any(c.isalpha() for c in sub.message_id)
        smsc.deliver_receipt(decimal_id(sub.message_id), "DELIVRD")
    data = await events.next("sms.delivered", lambda d: d["message_id"] == "notice-1-u1")
    assert data["segments"] == 3
    assert await state_of(smpp_hub, "notice-1-u1") == "delivered"
    assert service(smpp_hub).counters.receipts["applied"] == 3
    await events.close()


async def test_undeliverable_and_expired_receipts_fail_the_message_with_sms_failed(
    smpp_hub: RunningHub, smsc: TestSmsc
) -> None:
    events = await console_events(smpp_hub)
    await service(smpp_hub).enqueue("13800000001", "hello one", key="m-undeliv")
    await service(smpp_hub).enqueue("13800000002", "hello two", key="m-expired")
    await smsc.wait_for(lambda: len(smsc.submitted) == 2)
    by_to = {s.pdu.destination_addr: s.message_id for s in smsc.submitted}
    await until(lambda: True)
    smsc.deliver_receipt(decimal_id(by_to["13800000001"], 12), "UNDELIV", err="001")
    failed = await events.next("sms.failed", lambda d: d["message_id"] == "m-undeliv")
    assert failed["state"] == "failed"
    smsc.deliver_receipt(by_to["13800000002"].lower(), "EXPIRED")
    expired = await events.next("sms.failed", lambda d: d["message_id"] == "m-expired")
    assert expired["state"] == "expired"
    assert await state_of(smpp_hub, "m-expired") == "expired"
    # A repeated receipt changes nothing and is acknowledged.
    seq = smsc.deliver_receipt(decimal_id(by_to["13800000001"]), "DELIVRD")
    await smsc.wait_for(lambda: bool(smsc.responses_to(seq)))
    assert smsc.responses_to(seq)[0].status == 0
    assert await state_of(smpp_hub, "m-undeliv") == "failed"
    await events.close()


async def test_inbound_long_message_is_joined_stored_and_published_as_sms_received(
    smpp_hub: RunningHub, smsc: TestSmsc
) -> None:
    events = await console_events(smpp_hub)
    await until(lambda: smsc.bound == 1)
    text = "回复1确认收到通知。" * 12
    smsc.deliver_mo("13912345678", text)
    data = await events.next("sms.received")
    assert data["sender"] == "13912345678"
    assert data["recipient"] == "10690000"
    assert data["text"] == text
    assert service(smpp_hub).counters.inbound == 1


async def test_smsc_down_for_a_while_then_every_queued_message_is_sent_exactly_once(
    smpp_hub: RunningHub, smsc: TestSmsc
) -> None:
    await until(lambda: adapter(smpp_hub).ready)
    await smsc.go_down()
    await until(lambda: not adapter(smpp_hub).ready)
    keys = [f"outage-{n}" for n in range(12)]
    for n, key in enumerate(keys):
        await service(smpp_hub).enqueue(f"1380000{n:04d}", f"message {n}", key=key)
    assert {await state_of(smpp_hub, k) for k in keys} == {"queued"}
    await smsc.start()
    await smsc.wait_for(lambda: len(smsc.submitted) == len(keys))
    await until(lambda: service(smpp_hub).counters.submitted == len(keys))
    texts = sorted(s.pdu.short_message.decode() for s in smsc.submitted)
    assert texts == sorted(f"message {n}" for n in range(12))
    assert {await state_of(smpp_hub, k) for k in keys} == {"sent"}
    assert await service(smpp_hub).send_once() == 0
    assert len(smsc.submitted) == len(keys)


async def test_throttling_is_retried_and_a_permanent_refusal_fails_at_once(
    smpp_hub: RunningHub, smsc: TestSmsc
) -> None:
    events = await console_events(smpp_hub)
    smsc.refuse, smsc.refuse_count = STATUS_THROTTLED, 2
    await service(smpp_hub).enqueue("13800000003", "throttled first", key="m-throttled")
    await smsc.wait_for(lambda: len(smsc.submitted) == 1)
    assert smsc.refused == 2
    await until(lambda: service(smpp_hub).counters.submitted == 1)
    row = await service(smpp_hub).get("m-throttled")
    assert row is not None and row.state == "sent" and row.attempts == 3

    smsc.refuse = STATUS_BAD_DEST
    await service(smpp_hub).enqueue("13800000004", "never", key="m-refused")
    data = await events.next("sms.failed", lambda d: d["message_id"] == "m-refused")
    assert data["attempts"] == 1 and "ESME_RINVDSTADR" in data["error"]
    await events.close()


async def test_garbage_pdus_and_receipts_are_refused_counted_and_the_session_keeps_serving(
    smpp_hub: RunningHub, smsc: TestSmsc
) -> None:
    await until(lambda: smsc.bound == 1)
    # An unknown command id: generic_nack with the PDU's sequence.
    smsc.send_raw(HEADER.pack(16, 0x00000099, 0, 4242))
    await smsc.wait_for(lambda: bool(smsc.responses_to(4242)))
    nack = smsc.responses_to(4242)[0]
    assert isinstance(nack, GenericNack) and nack.status == CommandStatus.ESME_RINVCMDID
    # A receipt whose text is not a receipt: refused permanently, counted.
    seq = smsc.deliver(_receipt_pdu(b"this is not a receipt"))
    await smsc.wait_for(lambda: bool(smsc.responses_to(seq)))
    resp = smsc.responses_to(seq)[0]
    assert isinstance(resp, DeliverSmResp) and resp.status == CommandStatus.ESME_RX_P_APPN
    # A receipt for an id nobody sent: acknowledged (resending will not help), counted.
    seq = smsc.deliver_receipt("00000000000000000001", "DELIVRD")
    await smsc.wait_for(lambda: bool(smsc.responses_to(seq)))
    assert smsc.responses_to(seq)[0].status == 0
    counters = service(smpp_hub).counters
    assert counters.receipts["unknown_id"] == 1
    assert rejected(smpp_hub) == {"unknown_command": 1, "bad_receipt": 1}
    # Still serving: a message goes out and its receipt applies.
    await service(smpp_hub).enqueue("13800000005", "still here", key="m-after")
    await smsc.wait_for(lambda: len(smsc.submitted) == 1)
    smsc.deliver_receipt(decimal_id(smsc.submitted[0].message_id), "DELIVRD")
    await until(lambda: counters.receipts.get("applied") == 1)
    assert await state_of(smpp_hub, "m-after") == "delivered"
    assert smsc.binds == 1
    metrics = await _metrics(smpp_hub)
    assert 'hub_sms_rejected_total{reason="bad_receipt"} 1.0' in metrics


def _receipt_pdu(text: bytes) -> Any:
    from protocols.sms import DeliverSm

    return DeliverSm(0, source_addr="1", destination_addr="2", esm_class=0x04, short_message=text)


async def _metrics(hub: RunningHub) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(hub.url + "/metrics") as resp:
        return await resp.text()
