"""SMS for urgent notices left unread, and the reply code that marks them read.

A sweep finds recipients of urgent notices still unread a set time after sending, claims
each with a conditional UPDATE (``sms_id`` still empty) and queues its SMS in the same
transaction: one SMS per recipient, never twice, whatever crashes or how many processes
sweep. The SMS carries a short reply code; an inbound SMS from the recipient's phone with
that code stores the read receipt (``read_via = sms``).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from datetime import datetime, timedelta

import structlog
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.config import NoticeSettings
from hub.db.models import Notice, NoticeRecipient, User, utcnow
from hub.notices.service import NoticeService
from hub.sms.service import InboundSms, SmsService

log = structlog.get_logger(__name__)

BATCH = 200
"""Recipients claimed per transaction."""
CODE_DIGITS = 4
REPLY = re.compile(rf"\s*(\d{{{CODE_DIGITS}}})\s*")
TEXT = "【紧急通知】{title}。请及时登录综治平台查看，回复{code}确认已读。"


def phone_variants(number: str) -> list[str]:
    """The ways a Chinese mobile number may be written (+86 / 86 prefix or none)."""
    digits = re.sub(r"\D", "", number)
    local = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    return [local, "86" + local, "+86" + local]


class NoticeSmsFallback:
    """Sends the SMS fallback of urgent notices and reads reply codes."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sms: SmsService,
        notices: NoticeService,
        settings: NoticeSettings,
    ) -> None:
        self._sessions = sessions
        self._sms = sms
        self._notices = notices
        self._settings = settings
        self.sent = 0

    async def run(self) -> None:
        """Sweep forever (cancel to stop); a failed sweep is logged and retried."""
        if self._settings.sms_fallback_after <= 0:
            return
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("notice SMS fallback sweep failed; retrying")
            await asyncio.sleep(self._settings.sms_fallback_interval)

    async def sweep(self, now: datetime | None = None) -> int:
        """Queue the SMS of every recipient due one; returns how many were queued."""
        now = now or utcnow()
        cutoff = now - timedelta(seconds=self._settings.sms_fallback_after)
        total = 0
        while True:
            async with self._sessions() as session, session.begin():
                queued = await self._claim(session, cutoff)
            total += queued
            if queued:
                self._sms.notify()
            if queued < BATCH:
                return total

    async def _claim(self, session: AsyncSession, cutoff: datetime) -> int:
        rows = (
            await session.execute(
                select(NoticeRecipient.notice_id, NoticeRecipient.user_id, User.phone, Notice.title)
                .join(Notice, Notice.id == NoticeRecipient.notice_id)
                .join(User, User.id == NoticeRecipient.user_id)
                .where(
                    Notice.level == "urgent",
                    Notice.created_at <= cutoff,
                    NoticeRecipient.read_at.is_(None),
                    NoticeRecipient.sms_id.is_(None),
                    User.phone != "",
                )
                .limit(BATCH)
            )
        ).all()
        queued = 0
        for row in rows:
            key = f"notice.{row.notice_id}.{_short(row.user_id)}"
            code = await self._free_code(session, row.user_id)
            won = await session.execute(
                update(NoticeRecipient)
                .where(
                    NoticeRecipient.notice_id == row.notice_id,
                    NoticeRecipient.user_id == row.user_id,
                    NoticeRecipient.sms_id.is_(None),
                )
                .values(sms_id=key, reply_code=code)
            )
            if not getattr(won, "rowcount", 0):
                continue  # another sweep took it
            text = TEXT.format(title=row.title, code=code)
            try:
                await self._sms.stage(session, row.phone, text, key=key)
            except Exception as err:  # a malformed phone number must not stop the sweep
                log.warning("notice SMS not queued", user=row.user_id, error=str(err))
                continue
            queued += 1
        self.sent += queued
        if queued:
            log.info("urgent notices sent by SMS", recipients=queued)
        return queued

    async def _free_code(self, session: AsyncSession, user_id: str) -> str:
        """A reply code this user has no other pending notice SMS with."""
        taken = set(
            await session.scalars(
                select(NoticeRecipient.reply_code).where(
                    NoticeRecipient.user_id == user_id,
                    NoticeRecipient.read_at.is_(None),
                    NoticeRecipient.reply_code.is_not(None),
                )
            )
        )
        while True:
            code = f"{random.randrange(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            if code not in taken:
                return code

    async def on_inbound(self, session: AsyncSession, message: InboundSms) -> bool:
        """Inbound hook: a reply code from a recipient's phone marks the notice read."""
        match = REPLY.fullmatch(message.text)
        if match is None:
            return False
        users = select(User.id).where(User.phone.in_(phone_variants(message.sender)))
        row = await session.scalar(
            select(NoticeRecipient).where(
                NoticeRecipient.user_id.in_(users),
                NoticeRecipient.reply_code == match.group(1),
                NoticeRecipient.read_at.is_(None),
            )
        )
        if row is None:
            return False
        row.read_at = message.received_at
        row.read_via = "sms"
        notice_id = row.notice_id
        # The sender's counts are read back from the database: nudge them once committed.
        event.listen(
            session.sync_session, "after_commit", lambda _: self._notices.progress.touch(notice_id),
            once=True,
        )  # fmt: skip
        log.info("notice read by SMS reply", notice_id=row.notice_id, user=row.user_id)
        return True


def _short(user_id: str) -> str:
    """A user id fit for an SMS key (64 characters at most, key alphabet only)."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]
