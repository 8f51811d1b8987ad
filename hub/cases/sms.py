"""Cases by SMS: texts to a case's assignee (assignment, supervision, overdue), and cases
from citizens who text the service number (answered with the case's number).

Both act inside the transaction of the change that causes them (a case hook, an inbound
hook), so the SMS is queued exactly when the change commits, with a key derived from the
event: never twice.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from hub.cases.lifecycle import Actor
from hub.cases.models import CaseReport
from hub.cases.service import CaseService
from hub.config import SmsSettings
from hub.db.models import Case, CaseEntry, User, utcnow
from hub.errors import HubError
from hub.sms.service import InboundSms, SmsService

log = structlog.get_logger(__name__)

TO_ASSIGNEE = {
    "assign": "【案件指派】您有新案件{number}：{title}。{due}请登录综治平台处置。",
    "supervise": "【督办】案件{number}（{title}）收到上级督办：{note}",
    "overdue": "【红色督办】案件{number}（{title}）已超过办结时限，请立即处置。",
}
"""Timeline actions that text the assignee, and the text."""
ANSWER = "【综治中心】您反映的问题已受理，案件编号{number}，我们将尽快处理。"
CHINA_TIME = timezone(timedelta(hours=8), "CST")
"""Deadlines in texts are in Beijing time (China keeps no daylight saving)."""
TITLE_CHARS = 30
FALLBACK_CATEGORY = "other"


class CaseSms:
    """Glue between the case service and the SMS queue."""

    def __init__(self, cases: CaseService, sms: SmsService, settings: SmsSettings) -> None:
        self._cases = cases
        self._sms = sms
        self._settings = settings

    def install(self) -> None:
        """Register the hooks with both services."""
        if self._settings.case_sms:
            self._cases.on_change.append(self.on_change)
        if self._settings.citizen_cases:
            self._sms.inbound_hooks.append(self.on_inbound)

    async def on_change(self, session: AsyncSession, case: Case, entry: CaseEntry) -> None:
        """Case hook: text the assignee about an assignment, a supervision or overdue."""
        template = TO_ASSIGNEE.get(entry.action)
        if template is None or case.assignee is None:
            return
        assignee = await session.get(User, case.assignee)
        if assignee is None or not assignee.phone:
            return
        due = (
            f"请于{case.due_at.astimezone().strftime('%m-%d %H:%M')}前办结，" if case.due_at else ""
        )
        text = template.format(
            number=case.number, title=case.title[:TITLE_CHARS], due=due, note=entry.note[:60]
        )
        try:
            await self._sms.stage(session, assignee.phone, text, key=f"case.{entry.event_id}")
        except HubError as err:  # a bad number on file must not block the case
            log.warning("case SMS not queued", case_id=case.id, error=err.message)
            return
        event.listen(session.sync_session, "after_commit", lambda _: self._sms.notify(), once=True)

    async def on_inbound(self, session: AsyncSession, message: InboundSms) -> bool:
        """Inbound hook (last): a citizen's SMS becomes a case, answered with its number."""
        text = message.text.strip()
        if not text:
            return False
        org = self._settings.citizen_case_org
        citizen = Actor(kind="citizen", id=message.sender, org=org, name="市民")
        spec = CaseReport(
            title=text[:TITLE_CHARS],
            description=text,
            category=FALLBACK_CATEGORY,
            org=org,
            channel="sms",
            reporter_phone=message.sender,
        )
        case = await self._cases.new_case(session, citizen, spec, utcnow())
        answer = ANSWER.format(number=case.number)
        try:
            await self._sms.stage(session, message.sender, answer, key=f"case.{case.id}.ack")
        except HubError as err:
            log.warning("citizen not answered", case_id=case.id, error=err.message)
        log.info("case from a citizen's SMS", case_id=case.id, number=case.number)
        return True
