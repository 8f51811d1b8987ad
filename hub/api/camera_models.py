"""Request and response schemas of the camera REST API. The create schema is the seed
file's ``CameraSpec`` (hub/cameras/models.py), so a camera created over REST is validated
exactly like one loaded from config; ONVIF credentials go in and never come out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from hub.api.directory_models import PageQuery, partial_model
from hub.cameras.models import MAX_TAG, AlarmReport, CameraSpec, redact_url
from hub.db.models import Camera
from protocols.envelope import validate_org_path

CameraStatus = Literal["unknown", "online", "offline"]


class CameraCreate(CameraSpec):
    """A new camera in the caller's org subtree."""


CameraUpdate: Any = partial_model(
    "CameraUpdate",
    CameraSpec,
    (
        "name", "org", "lat", "lon", "source_url", "substream_url", "tags", "ptz",
        "onvif_username", "onvif_password", "onvif_url",
    ),
    "Fields of a camera to change (only those given; null clears an optional one).",
)  # fmt: skip


def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


class CameraOut(BaseModel):
    """A camera as the API shows it: without its ONVIF credentials."""

    id: str
    name: str
    org: str = Field(description="Path of the camera's org node.")
    lat: float | None
    lon: float | None
    source_url: str = Field(description="Main stream; a password in the URL is masked.")
    substream_url: str | None = Field(description="Sub stream; a password is masked.")
    tags: list[str]
    ptz: bool
    has_credentials: bool = Field(description="ONVIF credentials are stored (write-only).")
    onvif_url: str | None = Field(
        None, description="ONVIF device service (PTZ); null: the stream's host on port 80."
    )
    status: CameraStatus = Field(description="What the media plane last found.")
    status_changed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Camera) -> CameraOut:
        """The public view of a row."""
        return cls(
            id=row.id, name=row.name, org=row.org, lat=row.lat, lon=row.lon,
            source_url=redact_url(row.source_url),
            substream_url=None if row.substream_url is None else redact_url(row.substream_url),
            tags=list(row.tags or []), ptz=row.ptz,
            has_credentials=row.onvif_username is not None or row.onvif_password is not None,
            onvif_url=row.onvif_url,
            status=row.status,
            status_changed_at=_utc(row.status_changed_at),
            created_at=_utc(row.created_at), updated_at=_utc(row.updated_at),
        )  # fmt: skip


class CameraPage(BaseModel):
    """One page of cameras, ordered by id."""

    items: list[CameraOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class CameraQuery(PageQuery):
    """Query parameters of ``GET /api/v1/cameras``."""

    org: str | None = Field(
        None, description="Only cameras in this org subtree (default: the caller's own)."
    )
    tag: str | None = Field(None, min_length=1, max_length=MAX_TAG, description="Has this tag.")
    status: CameraStatus | None = Field(None, description="Only cameras in this status.")

    @field_validator("org")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        return None if value is None else validate_org_path(value)


class AlarmIn(AlarmReport):
    """A camera alarm pushed by a camera platform."""


class AlarmAccepted(BaseModel):
    """The 202 answer to an alarm."""

    id: str = Field(description="Event id of the camera.alarm (ULID).")
    status: str = "accepted"
    channels: list[str]
    case_id: str | None = Field(
        None, description="The case the alarm reported under `cameras.alarm_case_rules`."
    )
