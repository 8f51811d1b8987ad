"""Reading notices back: a user's inbox and unread list, a sender's sent list with counts,
one notice, and its receipts. All from the database (the durable state), never from
channel history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.db.models import Notice, NoticeRecipient, User
from hub.notices.models import NoticeSummary
from hub.notices.service import excerpt


def summary(notice: Notice, recipient: NoticeRecipient | None = None) -> NoticeSummary:
    """A notice as listed (the body cut to an excerpt)."""
    return NoticeSummary(
        id=notice.id,
        kind=notice.kind,
        level=notice.level,
        title=notice.title,
        excerpt=excerpt(notice.body),
        attachment_count=len(notice.attachments),
        sender_id=notice.sender_id,
        sender_name=notice.sender_name,
        sender_org=notice.sender_org,
        created_at=notice.created_at,
        read_at=recipient.read_at if recipient is not None else None,
    )


@dataclass(frozen=True, slots=True)
class InboxCursor:
    """Where an inbox page ends: in the unread part or the read part, after a notice."""

    unread: bool
    notice_id: str

    def encode(self) -> str:
        """As the ``after`` of an API cursor."""
        return f"{'u' if self.unread else 'r'}:{self.notice_id}"

    @classmethod
    def decode(cls, raw: str) -> InboxCursor | None:
        """From the ``after`` of an API cursor; None if it is not one."""
        part, _, notice_id = raw.partition(":")
        if part not in ("u", "r") or not notice_id:
            return None
        return cls(part == "u", notice_id)


async def inbox_counts(session: AsyncSession, user: str) -> tuple[int, int]:
    """(unread, total) notices of ``user``."""
    row = (
        await session.execute(
            select(func.count(), func.count(NoticeRecipient.read_at)).where(
                NoticeRecipient.user_id == user
            )
        )
    ).one()
    total, read = int(row[0]), int(row[1])
    return total - read, total


async def inbox(
    session: AsyncSession,
    user: str,
    *,
    limit: int,
    after: InboxCursor | None = None,
    unread_only: bool = False,
) -> tuple[list[NoticeSummary], InboxCursor | None]:
    """A page of ``user``'s notices: unread first, then read; newest first within each."""
    unread_first = NoticeRecipient.read_at.is_(None).desc()
    stmt = (
        select(NoticeRecipient, Notice)
        .join(Notice, Notice.id == NoticeRecipient.notice_id)
        .where(NoticeRecipient.user_id == user)
    )
    if unread_only:
        stmt = stmt.where(NoticeRecipient.read_at.is_(None))
    if after is not None:
        older = NoticeRecipient.notice_id < after.notice_id
        if after.unread:
            stmt = stmt.where(
                or_(
                    and_(NoticeRecipient.read_at.is_(None), older),
                    NoticeRecipient.read_at.is_not(None),
                )
            )
        else:
            stmt = stmt.where(NoticeRecipient.read_at.is_not(None), older)
    stmt = stmt.order_by(unread_first, NoticeRecipient.notice_id.desc()).limit(limit + 1)
    rows = (await session.execute(stmt)).all()
    page = rows[:limit]
    items = [summary(notice, recipient) for recipient, notice in page]
    cursor = None
    if len(rows) > limit:
        last, _ = page[-1]
        cursor = InboxCursor(last.read_at is None, last.notice_id)
    return items, cursor


async def sent(
    session: AsyncSession, sender: str, *, limit: int, after: str | None = None
) -> tuple[list[Notice], str | None]:
    """A page of the notices ``sender`` sent, newest first."""
    stmt = select(Notice).where(Notice.sender_id == sender)
    if after is not None:
        stmt = stmt.where(Notice.id < after)
    rows = list(await session.scalars(stmt.order_by(Notice.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return page, page[-1].id if len(rows) > limit else None


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    """One recipient and their state, with their directory name."""

    user_id: str
    name: str
    org: str
    recipient: NoticeRecipient


async def receipts(
    session: AsyncSession,
    notice_id: str,
    *,
    limit: int,
    after: str | None = None,
    read: bool | None = None,
) -> tuple[list[ReceiptRow], str | None]:
    """A page of a notice's recipients ordered by user id, optionally only those who have
    (``read=True``) or have not (``read=False``) read it."""
    stmt = (
        select(NoticeRecipient, User.name, User.org)
        .join(User, User.id == NoticeRecipient.user_id)
        .where(NoticeRecipient.notice_id == notice_id)
    )
    if read is not None:
        column = NoticeRecipient.read_at
        stmt = stmt.where(column.is_not(None) if read else column.is_(None))
    if after is not None:
        stmt = stmt.where(NoticeRecipient.user_id > after)
    stmt = stmt.order_by(NoticeRecipient.user_id).limit(limit + 1)
    rows = (await session.execute(stmt)).all()
    page = [ReceiptRow(r.user_id, name, org, r) for r, name, org in rows[:limit]]
    return page, page[-1].user_id if len(rows) > limit else None
