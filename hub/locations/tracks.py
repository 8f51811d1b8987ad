"""Track playback (轨迹回放): a worker's stored fixes over a time range as a GeoJSON Feature.

The fixes are read as plain tuples in one ordered range scan of the (worker, fix time)
index; building the Feature (simplification, distance, time outside the grid) is
CPU-bound and runs on a worker thread, so a month of 5-second pings does not stall the
event loop. Time outside the grid comes from the per-fix flag stored at ingest, so no
geometry is evaluated here.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.db.models import Position
from protocols.geo import TrackPoint, track_feature

JITTER_M = 3.0
"""Steps shorter than this (m) are GPS noise of a phone lying still, not distance walked."""


class TrackTooLong(Exception):
    """The range holds more fixes than may be returned unsimplified."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} fixes in range; at most {limit} without simplify")
        self.count = count
        self.limit = limit


async def load_fixes(
    sessions: async_sessionmaker[AsyncSession], worker_id: str, start: float, end: float
) -> tuple[list[TrackPoint], list[bool | None]]:
    """The worker's fixes with ``start <= fix_time <= end``, in time order, and their
    outside-the-grid flags."""
    stmt = (
        select(Position.lat, Position.lon, Position.fix_time, Position.outside)
        .where(Position.worker_id == worker_id, Position.fix_time.between(start, end))
        .order_by(Position.fix_time)
    )
    async with sessions() as session:
        # Core on the session's connection: no ORM layer per row (half a million rows).
        connection = await session.connection()
        rows = (await connection.execute(stmt)).all()
    points = [TrackPoint(lat, lon, t) for lat, lon, t, _ in rows]
    flags = [outside for _, _, _, outside in rows]
    return points, flags


async def track(
    sessions: async_sessionmaker[AsyncSession],
    worker_id: str,
    grid: str,
    start: float,
    end: float,
    *,
    tolerance_m: float,
    max_points: int,
    max_gap_s: float,
    times: Literal["unix", "iso"],
) -> dict[str, Any]:
    """The GeoJSON Feature of a worker's track (see hub/api/worker_models.py)."""
    points, flags = await load_fixes(sessions, worker_id, start, end)
    if tolerance_m <= 0 and len(points) > max_points:
        raise TrackTooLong(len(points), max_points)
    has_polygon = any(flag is not None for flag in flags)
    return await asyncio.to_thread(
        track_feature,
        points,
        tolerance_m=tolerance_m or None,
        outside=flags if has_polygon else None,
        jitter_m=JITTER_M,
        max_gap_s=max_gap_s,
        times=times,
        properties={"worker_id": worker_id, "grid": grid, "datum": "wgs84",
                    "start": start, "end": end},
    )  # fmt: skip
