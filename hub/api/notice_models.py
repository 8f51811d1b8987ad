"""Request and response schemas of the notices REST API (send, inbox, sent, receipts)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from hub.api.directory_models import PageQuery
from hub.events import NoticeKind, NoticeLevel
from hub.notices.models import Attachment, NoticeSummary, ReadVia, Targets, as_utc


class NoticeOut(BaseModel):
    """A notice in full. The sender also sees the targets and the read counts; a recipient
    sees their own receipt."""

    id: str
    kind: NoticeKind
    level: NoticeLevel
    title: str
    body: str
    attachments: list[Attachment]
    sender_id: str
    sender_name: str
    sender_org: str
    created_at: datetime
    sent_at: datetime | None = Field(
        description="When every recipient's pop-up was published; null while that runs."
    )
    recipient_count: int
    targets: Targets | None = Field(None, description="As given (sender only).")
    read: int | None = Field(None, description="Recipients who have read it (sender only).")
    unread: int | None = Field(None, description="Recipients who have not (sender only).")
    read_at: datetime | None = Field(None, description="When the caller read it (recipient).")
    read_via: ReadVia | None = Field(None, description="How the caller read it (recipient).")

    @field_validator("created_at", "sent_at", "read_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class InboxQuery(PageQuery):
    """Query parameters of ``GET /api/v1/notices/inbox``."""

    unread: bool | None = Field(None, description="true: only the unread notices.")


class InboxPage(BaseModel):
    """One page of the caller's notices: unread first, then read, newest first in each."""

    items: list[NoticeSummary]
    unread: int = Field(description="The caller's unread notices in all.")
    total: int = Field(description="The caller's notices in all.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class SentNotice(NoticeSummary):
    """A notice the caller sent, with its read counts."""

    recipient_count: int
    read: int
    unread: int
    sent_at: datetime | None

    @field_validator("sent_at")
    @classmethod
    def _sent_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class SentPage(BaseModel):
    """One page of the notices the caller sent, newest first."""

    items: list[SentNotice]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class ReceiptsQuery(PageQuery):
    """Query parameters of ``GET /api/v1/notices/{id}/receipts``."""

    read: bool | None = Field(
        None, description="true: only who has read it; false: only who has not."
    )


class RecipientState(BaseModel):
    """One recipient: who, and whether and how they read the notice."""

    user_id: str
    name: str
    org: str
    delivered_at: datetime | None = Field(description="When their pop-up was published.")
    read_at: datetime | None
    read_via: ReadVia | None

    @field_validator("delivered_at", "read_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class ReceiptPage(BaseModel):
    """One page of a notice's recipients (ordered by user id) and the counts in all."""

    items: list[RecipientState]
    read: int
    unread: int
    total: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
