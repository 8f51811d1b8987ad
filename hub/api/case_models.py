"""Response and query schemas of the cases REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from hub.api.directory_models import PageQuery
from hub.cases.categories import Category, Limits
from hub.cases.lifecycle import State
from hub.db.models import Case, CaseAttachment, CaseEntry
from protocols.envelope import validate_org_path

StateName = Literal[
    "reported", "registered", "rejected", "assigned", "handling", "fed_back", "closed",
    "evaluated",
]  # fmt: skip
"""The lifecycle's states as a flat enum (query parameters cannot refer to schemas)."""


class AttachmentOut(BaseModel):
    """An attachment's metadata; its bytes are at ``url``."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    url: str

    @classmethod
    def of(cls, row: CaseAttachment) -> AttachmentOut:
        """From the stored row."""
        return cls(
            id=row.id,
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            uploaded_by=row.uploaded_by,
            uploaded_at=row.uploaded_at,
            url=f"/api/v1/cases/{row.case_id}/attachments/{row.id}",
        )


class TimelineEntry(BaseModel):
    """One row of the case's timeline."""

    action: str
    actor_kind: str
    actor_id: str
    actor_name: str
    actor_org: str | None
    from_state: str | None
    to_state: str
    note: str
    details: dict[str, Any]
    event_id: str
    at: datetime

    @classmethod
    def of(cls, row: CaseEntry) -> TimelineEntry:
        """From the stored row."""
        return cls.model_validate(row, from_attributes=True)


class LocationOut(BaseModel):
    """Where the case is."""

    lat: float | None
    lon: float | None
    address: str | None


class ExternalOut(BaseModel):
    """The case's identity in the external system that owns it."""

    system: str
    id: str
    updated_at: datetime | None


class CaseOut(BaseModel):
    """A case as the API shows it."""

    id: str
    number: str
    title: str
    description: str
    category: str
    category_root: str
    priority: str
    state: State
    org: str
    tier_org: str
    tier: str
    channel: str
    reporter_kind: str
    reporter_id: str
    reporter_name: str
    location: LocationOut | None
    assignee: str | None
    assignee_name: str | None
    external: ExternalOut | None
    attributes: dict[str, JsonValue]
    created_at: datetime
    updated_at: datetime
    registered_at: datetime | None
    due_at: datetime | None
    warn_at: datetime | None
    due_soon: bool = Field(description="The yellow alert was raised for the current deadline.")
    overdue: bool = Field(description="The red alert was raised for the current deadline.")
    closed_at: datetime | None
    on_time: bool | None
    satisfaction: int | None
    version: int

    @classmethod
    def of(cls, case: Case) -> CaseOut:
        """From the stored row."""
        located = case.lat is not None or case.address is not None
        return cls(
            id=case.id,
            number=case.number,
            title=case.title,
            description=case.description,
            category=case.category,
            category_root=case.category_root,
            priority=case.priority,
            state=State(case.state),
            org=case.org,
            tier_org=case.tier_org,
            tier=case.tier,
            channel=case.channel,
            reporter_kind=case.reporter_kind,
            reporter_id=case.reporter_id,
            reporter_name=case.reporter_name,
            location=LocationOut(lat=case.lat, lon=case.lon, address=case.address)
            if located
            else None,
            assignee=case.assignee,
            assignee_name=case.assignee_name,
            external=ExternalOut(
                system=case.external_system,
                id=case.external_id or "",
                updated_at=case.external_updated_at,
            )
            if case.external_system
            else None,
            attributes=case.attributes,
            created_at=case.created_at,
            updated_at=case.updated_at,
            registered_at=case.registered_at,
            due_at=case.due_at,
            warn_at=case.warn_at,
            due_soon=case.due_soon_raised_at is not None,
            overdue=case.overdue_raised_at is not None,
            closed_at=case.closed_at,
            on_time=case.on_time,
            satisfaction=case.satisfaction,
            version=case.version,
        )


class CaseDetail(CaseOut):
    """A case with its timeline and attachments."""

    timeline: list[TimelineEntry]
    attachments: list[AttachmentOut]


class CasePage(BaseModel):
    """A page of cases, newest first."""

    items: list[CaseOut]
    next_cursor: str | None


class CategoryTree(BaseModel):
    """The category tree and time limits in force."""

    categories: list[Category]
    time_limits_hours: dict[str, Limits]
    due_soon_fraction: float


class CaseQuery(PageQuery):
    """Query parameters of ``GET /api/v1/cases`` (cases the caller may see, newest first)."""

    model_config = ConfigDict(extra="forbid")

    state: StateName | None = Field(None, description="Only cases in this state.")
    open: bool | None = Field(None, description="Only cases not yet closed (true) or closed.")
    category: str | None = Field(None, max_length=64, description="A code or root code.")
    priority: Literal["normal", "urgent", "emergency"] | None = None
    org: str | None = Field(None, description="Only cases located in this org subtree.")
    tier_org: str | None = Field(None, description="Only cases this centre is handling.")
    assignee: str | None = Field(None, max_length=64, description="A user id, or `me`.")
    alert: Literal["due_soon", "overdue"] | None = Field(
        None, description="Only cases whose yellow (due_soon) or red (overdue) alert is raised."
    )
    created_from: datetime | None = None
    created_to: datetime | None = None
    external_id: str | None = Field(None, max_length=128)

    @field_validator("org", "tier_org")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        return None if value is None else validate_org_path(value)
