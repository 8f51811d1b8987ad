"""What a notice is made of on the way in (the send request) and on the way out (receipts,
summaries); shared by the service, the REST API and the WebSocket rpc methods."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.events import NoticeKind, NoticeLevel
from protocols.envelope import validate_org_path

MAX_TITLE = 200
MAX_BODY = 20000
MAX_ATTACHMENTS = 20
MAX_TARGET_USERS = 1000
MAX_TARGET_ORGS = 100
RoleName = Literal["grid_worker", "grid_leader", "dispatcher", "department", "leader", "admin"]
ReadVia = Literal["ws", "rest", "sms"]


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Attachment(BaseModel):
    """A reference to a file kept elsewhere (uploads come later)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000, pattern=r"^(https?://|/)")


class Targets(BaseModel):
    """Who gets the notice: the union of users, holders of roles inside the sender's
    subtree, and everyone in org subtrees. All must lie inside the sender's subtree."""

    model_config = ConfigDict(extra="forbid")

    users: list[str] = Field(
        default_factory=list, max_length=MAX_TARGET_USERS, description="User ids."
    )
    roles: list[RoleName] = Field(
        default_factory=list, description="Roles, resolved inside the sender's org subtree."
    )
    orgs: list[str] = Field(
        default_factory=list,
        max_length=MAX_TARGET_ORGS,
        description="Org paths: everyone in each subtree.",
    )

    @field_validator("orgs")
    @classmethod
    def _orgs(cls, value: list[str]) -> list[str]:
        return [validate_org_path(v) for v in value]

    @field_validator("users")
    @classmethod
    def _users(cls, value: list[str]) -> list[str]:
        if any(not v or len(v) > 64 for v in value):
            raise ValueError("user ids are 1-64 characters")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Targets:
        if not (self.users or self.roles or self.orgs):
            raise ValueError("give at least one of users, roles, orgs")
        return self


class NoticeSpec(BaseModel):
    """A notice as a sender writes it."""

    model_config = ConfigDict(extra="forbid")

    kind: NoticeKind = Field(
        description="meeting 会议通知, matter 事项通知, work_arrangement 工作安排, "
        "red_header 红头文件 (leaders and admins only)."
    )
    level: NoticeLevel = "normal"
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    body: str = Field(min_length=1, max_length=MAX_BODY)
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    targets: Targets


class Receipt(BaseModel):
    """A recipient's read receipt (the first read; reading again returns the same one)."""

    notice_id: str
    user_id: str
    read_at: datetime
    read_via: ReadVia

    @field_validator("read_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class NoticeSummary(BaseModel):
    """A notice as listed: everything but the body (an excerpt of it)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: NoticeKind
    level: NoticeLevel
    title: str
    excerpt: str
    attachment_count: int
    sender_id: str
    sender_name: str
    sender_org: str
    created_at: datetime
    read_at: datetime | None = Field(None, description="When the caller read it (inbox only).")

    @field_validator("created_at", "read_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)
