"""What callers hand the camera registry: a camera as configured, and a pushed alarm."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hub.events import AlarmLevel
from protocols.envelope import validate_org_path

CAMERA_ID_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$"
"""URL-safe, at most 64 characters, not starting with a dot (no ``.``/``..`` path games)."""
SOURCE_SCHEMES = frozenset(
    {"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "file", "gb28181"}
)
MAX_URL = 1024
ONVIF_SCHEMES = frozenset({"http", "https"})
ONVIF_DEVICE_PATH = "/onvif/device_service"
MAX_TAGS = 32
MAX_TAG = 32
ALARM_KIND_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"


def check_source_url(value: str) -> str:
    """A stream URL the media plane can open: a known scheme and, but for file, a host."""
    parts = urlsplit(value)
    if parts.scheme not in SOURCE_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(sorted(SOURCE_SCHEMES))}")
    if parts.scheme == "file":
        if not parts.path:
            raise ValueError("a file URL needs a path")
    elif not parts.hostname:
        raise ValueError("the URL needs a host")
    return value


def check_onvif_url(value: str) -> str:
    """An ONVIF device service address: http(s), a host, no path but the standard one."""
    parts = urlsplit(value)
    if parts.scheme not in ONVIF_SCHEMES or not parts.hostname:
        raise ValueError("give http(s)://host[:port]")
    if parts.path.rstrip("/") not in ("", ONVIF_DEVICE_PATH) or parts.query or parts.username:
        raise ValueError(f"the device service is at {ONVIF_DEVICE_PATH}; no query or user info")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as err:
        raise ValueError(f"bad port: {err}") from err
    return value


def redact_url(value: str) -> str:
    """``value`` with the password of its user info masked (RTSP URLs often carry one)."""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


class CameraSpec(BaseModel):
    """A camera as written in ``config/cameras.json`` or created over REST."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=CAMERA_ID_PATTERN, description="URL-safe id, at most 64 chars.")
    name: str = Field(min_length=1, max_length=100)
    org: str = Field(max_length=128, description="Org node the camera belongs to.")
    lat: float | None = Field(None, ge=-90, le=90, description="WGS-84 latitude.")
    lon: float | None = Field(None, ge=-180, le=180, description="WGS-84 longitude.")
    source_url: str = Field(
        min_length=1, max_length=MAX_URL, description="Main stream (rtsp://, rtmp://, file://…)."
    )
    substream_url: str | None = Field(
        None, max_length=MAX_URL, description="Lower-resolution stream for grids of views."
    )
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    ptz: bool = Field(False, description="The camera can pan, tilt and zoom.")
    onvif_username: str | None = Field(None, max_length=64, description="Write-only.")
    onvif_password: SecretStr | None = Field(None, max_length=128, description="Write-only.")
    onvif_url: str | None = Field(
        None,
        max_length=MAX_URL,
        description="ONVIF device service for PTZ (http://host:port/onvif/device_service);"
        " empty: the main stream's host on port 80.",
    )

    @field_validator("org")
    @classmethod
    def _org(cls, value: str) -> str:
        return validate_org_path(value)

    @field_validator("source_url")
    @classmethod
    def _source(cls, value: str) -> str:
        return check_source_url(value)

    @field_validator("substream_url")
    @classmethod
    def _substream(cls, value: str | None) -> str | None:
        return None if value is None else check_source_url(value)

    @field_validator("onvif_url")
    @classmethod
    def _onvif(cls, value: str | None) -> str | None:
        return None if value is None else check_onvif_url(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        tags = [t.strip() for t in value]
        if any(not 0 < len(t) <= MAX_TAG for t in tags):
            raise ValueError(f"each tag is 1–{MAX_TAG} characters")
        return list(dict.fromkeys(tags))

    @model_validator(mode="after")
    def _both_coordinates(self) -> CameraSpec:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self

    def columns(self) -> dict[str, Any]:
        """The values to store (the password unwrapped)."""
        values = self.model_dump(exclude={"onvif_password"})
        secret = self.onvif_password
        values["onvif_password"] = None if secret is None else secret.get_secret_value()
        return values


class AlarmReport(BaseModel):
    """The body of ``POST /api/v1/cameras/{id}/alarms``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(
        pattern=ALARM_KIND_PATTERN, description="What was detected: fire, intrusion, crowd…"
    )
    level: AlarmLevel
    description: str | None = Field(None, max_length=2000)
    occurred_at: datetime | None = Field(
        None, description="When it happened, with an offset (default: when it arrived)."
    )
    external_ref: str | None = Field(None, max_length=128, description="The platform's id.")

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (e.g. 2026-12-01T18:00:00+08:00)")
        return value
