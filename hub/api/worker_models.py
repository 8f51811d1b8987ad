"""Request and response schemas of the grid-worker REST API (registry, positions, tracks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.api.directory_models import PageQuery, partial_model
from protocols.envelope import validate_org_path

DatumName = Literal["wgs84", "gcj02", "bd09"]
WORKER_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
"""A worker id is an MQTT topic segment (``grid/<worker_id>/location``)."""
MAX_TRACK_RANGE_S = 31 * 24 * 3600.0
"""Longest time range of one track request (a month of patrols)."""
DEFAULT_TRACK_RANGE_S = 24 * 3600.0
MAX_SIMPLIFY_M = 1000.0


class WorkerSpec(BaseModel):
    """A grid worker's registry entry as an admin writes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=WORKER_ID_PATTERN, description="Worker id, as in the phone's topic.")
    name: str = Field(min_length=1, max_length=64)
    phone: str = Field("", max_length=32)
    grid: str = Field(description="Org path of the worker's grid (a node of level grid).")
    datum: DatumName = Field(
        "wgs84",
        description="Datum the phone reports in when a payload does not say "
        "(phones in China often send GCJ-02 or BD-09); converted to WGS-84 on the way in.",
    )
    active: bool = True

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: str) -> str:
        return validate_org_path(value)


WorkerUpdate: Any = partial_model(
    "WorkerUpdate",
    WorkerSpec,
    ("name", "phone", "grid", "datum", "active"),
    "Fields of a worker to change (only those given).",
)


class WorkerOut(BaseModel):
    """A grid worker with their duty and liveness."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    phone: str
    grid: str
    datum: DatumName
    active: bool
    duty: Literal["on_duty", "off_duty", "unknown"] = Field(
        description="What the phone last said (grid/<id>/status); unknown if it never did."
    )
    online: bool = Field(description="Heard recently; false after silence or a Last Will.")
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class WorkerPage(BaseModel):
    """One page of workers."""

    items: list[WorkerOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class WorkerQuery(PageQuery):
    """Query parameters of ``GET /api/v1/workers``."""

    org: str | None = Field(
        None, description="Only workers of grids in this org subtree (default: the caller's)."
    )
    online: bool | None = Field(None, description="Only online (true) or offline (false).")
    active: bool | None = Field(None, description="Only active (true) or inactive (false).")

    @field_validator("org")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        return None if value is None else validate_org_path(value)


class SubtreeQuery(BaseModel):
    """Query parameters of ``GET /api/v1/workers/positions`` and ``GET /api/v1/grids``."""

    model_config = ConfigDict(extra="forbid")

    org: str | None = Field(
        None, description="Only workers of grids in this org subtree (default: the caller's)."
    )

    @field_validator("org")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        return None if value is None else validate_org_path(value)


class WorkerPositionOut(BaseModel):
    """A worker's latest stored position."""

    worker_id: str
    name: str
    grid: str
    lat: float
    lon: float
    accuracy_m: float
    fix_time: float = Field(description="When the phone measured it (Unix seconds).")
    received_at: float = Field(description="When the hub received it (Unix seconds).")
    battery_pct: float | None
    in_grid: Literal["inside", "outside", "unknown"] = Field(
        description="Whether the worker is in their grid, after boundary hysteresis."
    )
    online: bool
    duty: str


class PositionList(BaseModel):
    """Latest positions, one per worker that ever reported."""

    datum: Literal["wgs84"] = Field(
        "wgs84", description="Every coordinate the API returns is WGS-84."
    )
    items: list[WorkerPositionOut]


def parse_time(value: str) -> float:
    """Unix seconds from ``1700000000(.5)`` or an ISO 8601 time (UTC if no offset)."""
    try:
        return float(value)
    except ValueError:
        pass
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class TrackQuery(BaseModel):
    """Query parameters of ``GET /api/v1/workers/{id}/track``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: float | None = Field(
        None,
        alias="from",
        description="Start (Unix seconds or ISO 8601); default: 24 h before `to`.",
    )
    end: float | None = Field(
        None, alias="to", description="End (Unix seconds or ISO 8601); default: now."
    )
    simplify: float | None = Field(
        None,
        ge=0,
        le=MAX_SIMPLIFY_M,
        description="Douglas–Peucker tolerance in metres for the line (0: every fix); "
        "the summary figures always use every fix. Default: the hub's setting.",
    )
    times: Literal["unix", "iso"] = Field(
        "unix", description="Per-point times as Unix seconds or ISO 8601 strings."
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_time(value)
            except ValueError as err:
                raise ValueError("not Unix seconds or an ISO 8601 time") from err
        return value

    def window(self, now: float) -> tuple[float, float]:
        """The requested [start, end] with defaults applied."""
        end = self.end if self.end is not None else now
        start = self.start if self.start is not None else end - DEFAULT_TRACK_RANGE_S
        return start, end


class TrackProperties(BaseModel):
    """The Feature's properties."""

    model_config = ConfigDict(extra="allow")

    worker_id: str
    grid: str
    datum: Literal["wgs84"] = "wgs84"
    start: float
    end: float
    times: list[float] | list[str] = Field(description="One time per coordinate, in order.")
    point_count: int = Field(description="Fixes in the range (before simplification).")
    simplified_count: int = Field(description="Coordinates in the geometry.")
    distance_m: float = Field(description="Distance walked (every fix, GPS jitter filtered).")
    duration_s: float = Field(description="From the first to the last fix.")
    time_outside_s: float | None = Field(
        description="Time spent outside the own grid (null: the grid has no polygon); "
        "silences longer than the configured gap count neither way."
    )


class TrackFeature(BaseModel):
    """A GeoJSON Feature: a LineString (a Point for one fix, null for none)."""

    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any] | None
    properties: TrackProperties


class GridFeatures(BaseModel):
    """A GeoJSON FeatureCollection of grid polygons (properties: path, name)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
