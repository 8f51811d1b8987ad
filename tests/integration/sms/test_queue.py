"""The outbound queue itself: validation, idempotency, the console provider and what a
crash in the middle of the queue leaves behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from hub.db.models import SmsMessage, utcnow
from hub.errors import HubError
from hub.sms.service import SmsService
from tests.conftest import Backend, RunningHub
from tests.integration.mqtt.helpers import until
from tests.integration.sms.conftest import console_events, sms_hub, state_of
from tests.support.smsc import TestSmsc


def service(hub: RunningHub) -> SmsService:
    """The hub's SMS service."""
    assert hub.hub.sms is not None
    return hub.hub.sms


async def test_enqueue_validates_and_is_idempotent_on_its_key(sqlite_backend: Backend) -> None:
    hub = await sms_hub(sqlite_backend, provider="console")
    try:
        sms = service(hub)
        for to in ("", "12", "13800x", "+" + "1" * 21):
            with pytest.raises(HubError) as bad:
                await sms.enqueue(to, "hi")
            assert bad.value.code == "sms.invalid_number"
        with pytest.raises(HubError) as bad:
            await sms.enqueue("13800000000", "长" * 1000)
        assert bad.value.code == "sms.invalid_text"
        with pytest.raises(HubError) as bad:
            await sms.enqueue("13800000000", "hi", key="has space")
        assert bad.value.code == "sms.invalid_key"
        first = await sms.enqueue("13800000000", "hi", key="k-1")
        again = await sms.enqueue("13800000000", "hi", key="k-1")
        assert first.created and not again.created and again.id == "k-1"
        with pytest.raises(HubError) as bad:
            await sms.enqueue("13800000000", "something else", key="k-1")
        assert bad.value.code == "sms.key_conflict" and bad.value.status == 409
        generated = await sms.enqueue("13800000000", "no key")
        assert len(generated.id) == 26
    finally:
        await hub.server.close()


async def test_console_provider_logs_and_marks_messages_delivered(backend: Backend) -> None:
    hub = await sms_hub(backend)
    try:
        events = await console_events(hub)
        await service(hub).enqueue("13800000000", "控制台短信", key="console-1")
        data = await events.next("sms.delivered", lambda d: d["message_id"] == "console-1")
        assert data["segments"] == 1
        assert await state_of(hub, "console-1") == "delivered"
        await events.close()
    finally:
        await hub.server.close()


async def test_after_a_crash_only_attempts_without_a_recorded_provider_id_are_sent_again(
    smpp_hub: RunningHub, smsc: TestSmsc
) -> None:
    """What a SIGKILL leaves: rows claimed ('sending') with no provider id, and rows whose
    ids were recorded ('sent'). Only the first are resent, once, and only after the
    sending timeout: the previous process may still be submitting until then."""
    sms = service(smpp_hub)
    await until(lambda: smsc.bound == 1)
    await sms.enqueue("13800000010", "recorded before the crash", key="crash-sent")
    await smsc.wait_for(lambda: len(smsc.submitted) == 1)
    await until(lambda: sms.counters.submitted == 1)
    # Simulate the crash states by hand (the sender would not leave them otherwise).
    async with smpp_hub.hub.sessions() as session, session.begin():
        for key, to in (("crash-stale", "13800000011"), ("crash-fresh", "13800000012")):
            session.add(SmsMessage(id=key, to=to, text=key, segments=1, coding=0,
                                   state="sending", attempts=1, claimed_at=utcnow(),
                                   next_attempt_at=utcnow()))  # fmt: skip
        await session.flush()
        await session.execute(
            update(SmsMessage)
            .where(SmsMessage.id.in_(["crash-stale", "crash-sent"]))
            .values(claimed_at=utcnow() - timedelta(hours=1))
        )
    sms.notify()
    await smsc.wait_for(lambda: len(smsc.submitted) == 2)
    await until(lambda: sms.counters.submitted == 2)
    assert smsc.submitted[1].pdu.short_message == b"crash-stale"
    assert sms.counters.reclaimed == 1
    stale = await sms.get("crash-stale")
    assert stale is not None and stale.state == "sent" and stale.attempts == 2
    assert await sms.send_once() == 0
    assert await state_of(smpp_hub, "crash-fresh") == "sending"
    assert await state_of(smpp_hub, "crash-sent") == "sent"
    assert len(smsc.submitted) == 2
