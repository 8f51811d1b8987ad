"""What the hub sends and reads by SMS, through the test SMSC on a real socket: the SMS
fallback of unread urgent notices and its reply code, texts to a case's assignee, and
cases from citizens' texts answered with their number."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from adapters.sms.http import MO_PATH
from hub.auth.tokens import Identity
from hub.db.models import Case, NoticeRecipient, utcnow
from hub.notices.models import NoticeSpec
from hub.notices.sms_fallback import NoticeSmsFallback
from tests.conftest import Backend, RunningHub, backend_settings, start_hub
from tests.integration.api.conftest import Api
from tests.integration.cases.helpers import COMMUNITY, DISTRICT, WORKER, must, report
from tests.integration.sms.conftest import FAST, console_events
from tests.support.jasmin import FakeJasmin, mo_params, post_form
from tests.support.smsc import TestSmsc

WORKER_PHONE = "13800270010"  # s01c01g01-worker in config/demo_users.json
CITIZEN = "8613912345678"


@pytest.fixture
async def hub(backend: Backend, smsc: TestSmsc, tmp_path: object) -> AsyncIterator[RunningHub]:
    """A hub texting through the test SMSC; notice SMS fallback after 60 s unread."""
    settings = backend_settings(
        backend,
        sms={**FAST, "provider": "smpp", "smpp_port": smsc.port},
        notices={"sms_fallback_after": 60.0, "sms_fallback_interval": 3600.0},
        cases={"attachments_dir": f"{tmp_path}/attachments"},
    )
    running = await start_hub(settings)
    try:
        yield running
    finally:
        await running.server.close()


def texts_to(smsc: TestSmsc, number: str) -> list[str]:
    """The texts submitted to ``number`` (single-part messages)."""
    return [
        s.pdu.short_message.decode("utf-16-be" if s.pdu.data_coding == 8 else "ascii")
        for s in smsc.submitted
        if s.pdu.destination_addr == number
    ]


def fallback(hub: RunningHub) -> NoticeSmsFallback:
    """The hub's notice SMS fallback."""
    assert hub.hub.notice_sms is not None
    return hub.hub.notice_sms


async def test_an_unread_urgent_notice_goes_by_sms_once_and_the_reply_code_reads_it(
    hub: RunningHub, smsc: TestSmsc
) -> None:
    sender = Identity("s01-leader", "d01.s01", frozenset({"leader"}), 0)
    spec = NoticeSpec.model_validate({
        "kind": "matter", "level": "urgent", "title": "防汛紧急通知", "body": "今晚暴雨，请在岗",
        "targets": {"users": [WORKER.id]},
    })  # fmt: skip
    notice = await hub.hub.notices.send(sender, spec)
    # Not yet due: nothing goes out.
    assert await fallback(hub).sweep() == 0
    later = utcnow() + timedelta(seconds=120)
    assert await fallback(hub).sweep(later) == 1
    assert await fallback(hub).sweep(later) == 0  # never twice
    await smsc.wait_for(lambda: len(texts_to(smsc, WORKER_PHONE)) == 1)
    text = texts_to(smsc, WORKER_PHONE)[0]
    assert "防汛紧急通知" in text
    code = re.search(r"回复(\d{4})确认已读", text)
    assert code is not None

    events = await console_events(hub)
    smsc.deliver_mo("86" + WORKER_PHONE, code.group(1))
    await events.next("sms.received", lambda d: d["text"] == code.group(1))
    await events.close()
    async with hub.hub.sessions() as session:
        row = await session.get(NoticeRecipient, (notice.id, WORKER.id))
        assert row is not None and row.read_via == "sms" and row.read_at is not None
        # The reply read the notice: it did not become a citizen's case.
        assert (await session.scalars(select(Case.id))).all() == []


async def test_a_citizens_text_becomes_a_case_and_is_answered_with_its_number(
    hub: RunningHub, smsc: TestSmsc
) -> None:
    events = await console_events(hub)
    smsc.deliver_mo(CITIZEN, "红钢城街道青和居小区门口路灯坏了一个星期了，晚上很黑")
    reported = await events.next("case.reported")
    await events.close()
    async with hub.hub.sessions() as session:
        case = await session.get(Case, reported["case_id"])
    assert case is not None
    assert (case.channel, case.reporter_kind, case.reporter_phone) == ("sms", "citizen", CITIZEN)
    assert case.org == "d01" and case.state == "reported"
    assert case.description.startswith("红钢城街道青和居小区门口路灯坏了")
    await smsc.wait_for(lambda: len(texts_to(smsc, CITIZEN)) == 1)
    assert case.number in texts_to(smsc, CITIZEN)[0]


async def test_the_assignee_is_texted_on_assignment_and_on_supervision(
    hub: RunningHub, smsc: TestSmsc
) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(http, hub.url, None)
        case = await report(api)
        await must(api, COMMUNITY, case["id"], "register")
        await must(api, COMMUNITY, case["id"], "assign", assignee=WORKER.id)
        await smsc.wait_for(lambda: len(texts_to(smsc, WORKER_PHONE)) == 1)
        assert case["number"] in texts_to(smsc, WORKER_PHONE)[0]
        await must(api, DISTRICT, case["id"], "supervise", note="今日办结")
        await smsc.wait_for(lambda: len(texts_to(smsc, WORKER_PHONE)) == 2)
        assert "今日办结" in texts_to(smsc, WORKER_PHONE)[1]


async def test_over_the_http_gateway_a_reply_code_reads_the_notice_and_other_texts_are_cases(
    http_hub: RunningHub, jasmin: FakeJasmin
) -> None:
    sender = Identity("s01-leader", "d01.s01", frozenset({"leader"}), 0)
    spec = NoticeSpec.model_validate({
        "kind": "meeting", "level": "urgent", "title": "紧急会议", "body": "下午三点开会",
        "targets": {"users": [WORKER.id]},
    })  # fmt: skip
    notice = await http_hub.hub.notices.send(sender, spec)
    assert await fallback(http_hub).sweep(utcnow() + timedelta(hours=2)) == 1
    await jasmin.wait_for(lambda: any(s.params["to"] == WORKER_PHONE for s in jasmin.sent))
    sms = next(s for s in jasmin.sent if s.params["to"] == WORKER_PHONE)
    code = re.search(r"回复(\d{4})", bytes.fromhex(sms.params["hex-content"]).decode("utf-16-be"))
    assert code is not None

    mo = http_hub.url + MO_PATH
    assert await post_form(mo, mo_params("mo-1", WORKER_PHONE, code.group(1))) == (
        200, "ACK/Jasmin"
    )  # fmt: skip
    assert await post_form(mo, mo_params("mo-2", CITIZEN, "小区垃圾三天没人清运")) == (
        200, "ACK/Jasmin"
    )  # fmt: skip
    async with http_hub.hub.sessions() as session:
        row = await session.get(NoticeRecipient, (notice.id, WORKER.id))
        cases = (await session.scalars(select(Case))).all()
    assert row is not None and row.read_via == "sms"
    assert [(c.channel, c.reporter_phone, c.title) for c in cases] == [
        ("sms", CITIZEN, "小区垃圾三天没人清运")
    ]
    await jasmin.wait_for(lambda: any(s.params["to"] == CITIZEN for s in jasmin.sent))
