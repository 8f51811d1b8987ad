"""What callers hand the case service: a new report, an action, an external reference."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from hub.cases.categories import Priority
from protocols.envelope import validate_org_path

ReportChannel = Literal["grid_phone", "sms", "citymgmt", "other_system", "console"]
"""How a case came in (``sms``: a citizen texted the service number)."""
ActionName = Literal[
    "register", "reject", "assign", "start", "feed_back", "close", "return", "evaluate",
    "escalate", "supervise",
]  # fmt: skip
MAX_ATTACHMENT_REFS = 20


class Location(BaseModel):
    """Where it happened (WGS-84) and the address as people say it."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(None, max_length=200)


class CaseReport(BaseModel):
    """A new case (上报)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=8000)
    category: str = Field(min_length=1, max_length=64, description="A code of the tree.")
    priority: Priority = "normal"
    location: Location | None = None
    org: str | None = Field(
        None,
        max_length=128,
        description="Org node it belongs to; default: the grid containing the location,"
        " else the reporter's org.",
    )
    channel: ReportChannel = "console"
    direct_to_district: bool = Field(
        False,
        description="Emergency direct report (越级直报): a grid's emergency goes straight to"
        " the district centre. Only with priority emergency, by grid workers and leaders.",
    )
    reporter_name: str | None = Field(None, max_length=64)
    reporter_phone: str | None = Field(None, max_length=32)
    attributes: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("org")
    @classmethod
    def _org_path(cls, value: str | None) -> str | None:
        return None if value is None else validate_org_path(value)

    @model_validator(mode="after")
    def _direct_only_for_emergencies(self) -> CaseReport:
        if self.direct_to_district and self.priority != "emergency":
            raise ValueError("direct_to_district is only for priority emergency")
        return self


class CaseAction(BaseModel):
    """One step of the loop on an existing case."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: ActionName
    note: str = Field("", max_length=2000, description="Why (required to reject, return,"
                      " escalate and supervise) or what was done.")  # fmt: skip
    assignee: str | None = Field(None, max_length=64, description="assign: the user id.")
    deadline: datetime | None = Field(
        None, description="assign: when it must be closed (default: the category's limit)."
    )
    satisfaction: int | None = Field(None, ge=1, le=5, description="evaluate: 1–5.")
    attachments: list[str] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENT_REFS,
        description="Ids of attachments uploaded to the case that belong to this step.",
    )
    if_version: int | None = Field(
        None, ge=1, description="Refuse (409) if the case changed since this version."
    )

    @model_validator(mode="after")
    def _fields_fit_action(self) -> CaseAction:
        if self.action == "assign" and not self.assignee:
            raise ValueError("assign needs an assignee")
        if self.action != "assign" and (self.assignee or self.deadline):
            raise ValueError("assignee and deadline belong to assign only")
        if self.action == "evaluate" and self.satisfaction is None:
            raise ValueError("evaluate needs a satisfaction from 1 to 5")
        if self.action != "evaluate" and self.satisfaction is not None:
            raise ValueError("satisfaction belongs to evaluate only")
        if self.deadline is not None and self.deadline.tzinfo is None:
            raise ValueError("deadline needs a time zone (e.g. 2026-12-01T18:00:00+08:00)")
        return self


class ExternalRef(BaseModel):
    """The case's identity in the external system that owns it."""

    system: str = Field(max_length=32)
    id: str = Field(max_length=128)
    updated_at: datetime | None = None


def details_of(action: CaseAction) -> dict[str, Any]:
    """The action-specific facts a timeline row keeps."""
    out: dict[str, Any] = {}
    if action.attachments:
        out["attachments"] = action.attachments
    if action.satisfaction is not None:
        out["satisfaction"] = action.satisfaction
    return out
