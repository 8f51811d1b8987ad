"""Track helpers for playback (轨迹回放): simplification, distance, duration, time outside.

Tracks are sequences of :class:`TrackPoint` (WGS-84, fix time in Unix seconds) sorted by
time. Everything here is pure and CPU-bound; the hub runs it off the event loop for long
tracks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np

from protocols.geo.shapes import EARTH_RADIUS_M, METRES_PER_DEGREE, Area, LatLon

VECTOR_SPAN = 256
"""Spans longer than this are scanned with NumPy, shorter ones in plain Python."""
COORDINATE_DECIMALS = 6  # 1e-6° ≈ 0.1 m: finer than any phone fix


class TrackPoint(NamedTuple):
    """One fix of a track."""

    lat: float
    lon: float
    time: float


class Located(Protocol):
    """Anything with ``lat`` and ``lon`` in degrees."""

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


@dataclass(frozen=True, slots=True)
class TrackSummary:
    """Figures shown next to a played-back track."""

    point_count: int
    distance_m: float
    duration_s: float
    time_outside_s: float | None


def haversine_m(a: Located, b: Located) -> float:
    """Great-circle distance in metres."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi = phi2 - phi1
    dlam = math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def check_sorted(points: Sequence[TrackPoint]) -> None:
    """Raise ValueError unless the fix times never decrease."""
    for prev, cur in itertools.pairwise(points):
        if cur.time < prev.time:
            raise ValueError("track points must be sorted by time")


def path_length_m(points: Sequence[Located], *, jitter_m: float = 0.0) -> float:
    """Length of the polyline in metres.

    With ``jitter_m`` > 0, a fix closer than that to the last counted fix is skipped, so a
    phone lying still does not accumulate phantom distance from GPS noise.
    """
    if len(points) < 2:
        return 0.0
    total = 0.0
    anchor = points[0]
    for point in points[1:]:
        step = haversine_m(anchor, point)
        if step >= jitter_m:
            total += step
            anchor = point
    return total


def duration_s(points: Sequence[TrackPoint]) -> float:
    """Seconds from the first to the last fix."""
    return points[-1].time - points[0].time if points else 0.0


def simplify(points: Sequence[TrackPoint], tolerance_m: float) -> list[TrackPoint]:
    """Douglas–Peucker: keep the fewest points so that every dropped fix lies within
    ``tolerance_m`` of the kept polyline. Kept points keep their times; the first and last
    are always kept. Distances are to segments (not infinite lines), so a patrol loop that
    ends where it started is not collapsed. Iterative, so long tracks do not recurse deeply;
    each span's farthest point is found with one vectorised pass (a month of 5-second
    fixes is half a million points).
    """
    n = len(points)
    if n <= 2 or tolerance_m <= 0:
        return list(points)
    ref_lat = points[0].lat
    coords = np.array([(p.lon, p.lat) for p in points], dtype=np.float64)
    xs = (coords[:, 0] - points[0].lon) * (METRES_PER_DEGREE * math.cos(math.radians(ref_lat)))
    ys = (coords[:, 1] - ref_lat) * METRES_PER_DEGREE
    xl, yl = xs.tolist(), ys.tolist()
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[n - 1] = True
    tol2 = tolerance_m * tolerance_m
    stack = [(0, n - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        if last - first > VECTOR_SPAN:
            worst_i, worst = _farthest(xs, ys, first, last)
        else:
            worst_i, worst = _farthest_small(xl, yl, first, last)
        if worst > tol2:
            keep[worst_i] = True
            stack.append((first, worst_i))
            stack.append((worst_i, last))
    return [points[int(i)] for i in np.flatnonzero(keep)]


def _farthest_small(xs: list[float], ys: list[float], first: int, last: int) -> tuple[int, float]:
    """:func:`_farthest` in plain Python: faster than NumPy's call overhead on short spans."""
    ax, ay = xs[first], ys[first]
    dx, dy = xs[last] - ax, ys[last] - ay
    length2 = dx * dx + dy * dy
    worst, worst_i = -1.0, first + 1
    for i in range(first + 1, last):
        px, py = xs[i] - ax, ys[i] - ay
        if length2 > 0.0:
            t = (px * dx + py * dy) / length2
            t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
            px -= t * dx
            py -= t * dy
        d2 = px * px + py * py
        if d2 > worst:
            worst, worst_i = d2, i
    return worst_i, worst


def _farthest(xs: Any, ys: Any, first: int, last: int) -> tuple[int, float]:
    """Index and squared distance of the point of ``(first, last)`` farthest from the
    segment between them."""
    ax, ay = xs[first], ys[first]
    dx, dy = xs[last] - ax, ys[last] - ay
    px = xs[first + 1 : last] - ax
    py = ys[first + 1 : last] - ay
    length2 = dx * dx + dy * dy
    if length2 > 0.0:
        t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
        px = px - t * dx
        py = py - t * dy
    d2 = px * px + py * py
    i = int(np.argmax(d2))
    return first + 1 + i, float(d2[i])


def time_outside_s(
    points: Sequence[TrackPoint], area: Area, *, max_gap_s: float | None = None
) -> float:
    """Seconds spent outside ``area``, sample-and-hold: the interval after each fix counts as
    outside when that fix is outside. Intervals longer than ``max_gap_s`` (the phone was
    silent) are not attributed to either side.
    """
    total = 0.0
    for cur, nxt in itertools.pairwise(points):
        gap = nxt.time - cur.time
        if max_gap_s is not None and gap > max_gap_s:
            continue
        if not area.contains(LatLon(cur.lat, cur.lon)):
            total += gap
    return total


def time_outside_from_flags(
    points: Sequence[TrackPoint],
    outside: Sequence[bool | None],
    *,
    max_gap_s: float | None = None,
) -> float:
    """Like :func:`time_outside_s`, from a per-fix outside flag worked out when the fix
    arrived (so a long track needs no geometry). A None flag counts as inside."""
    total = 0.0
    for i in range(len(points) - 1):
        if not outside[i]:
            continue
        gap = points[i + 1].time - points[i].time
        if max_gap_s is None or gap <= max_gap_s:
            total += gap
    return total


def summarize(
    points: Sequence[TrackPoint],
    *,
    area: Area | None = None,
    outside: Sequence[bool | None] | None = None,
    jitter_m: float = 0.0,
    max_gap_s: float | None = None,
) -> TrackSummary:
    """Distance, duration and time outside the worker's grid: from per-fix ``outside``
    flags when given, else from the ``area`` when given, else None."""
    check_sorted(points)
    outside_s: float | None = None
    if outside is not None:
        outside_s = time_outside_from_flags(points, outside, max_gap_s=max_gap_s)
    elif area is not None:
        outside_s = time_outside_s(points, area, max_gap_s=max_gap_s)
    return TrackSummary(
        point_count=len(points),
        distance_m=path_length_m(points, jitter_m=jitter_m),
        duration_s=duration_s(points),
        time_outside_s=outside_s,
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def track_feature(
    points: Sequence[TrackPoint],
    *,
    tolerance_m: float | None = None,
    area: Area | None = None,
    outside: Sequence[bool | None] | None = None,
    jitter_m: float = 0.0,
    max_gap_s: float | None = None,
    times: Literal["unix", "iso"] = "unix",
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A GeoJSON Feature for playback: a LineString of the (optionally simplified) track,
    ``properties.times`` aligned with its coordinates (Unix seconds, or ISO 8601 UTC
    strings), and the summary of the *unsimplified* track (``point_count``,
    ``distance_m``, ``duration_s``, ``time_outside_s``) plus ``simplified_count``.

    With fewer than two points the geometry is a Point (one fix) or null (none), since a
    GeoJSON LineString needs two positions. Extra ``properties`` are merged in.
    """
    summary = summarize(points, area=area, outside=outside, jitter_m=jitter_m, max_gap_s=max_gap_s)
    shown = simplify(points, tolerance_m) if tolerance_m else list(points)
    coords = [[round(p.lon, COORDINATE_DECIMALS), round(p.lat, COORDINATE_DECIMALS)] for p in shown]
    geometry: dict[str, Any] | None
    if len(coords) >= 2:
        geometry = {"type": "LineString", "coordinates": coords}
    elif coords:
        geometry = {"type": "Point", "coordinates": coords[0]}
    else:
        geometry = None
    props: dict[str, Any] = dict(properties or {})
    props.update(
        times=[p.time for p in shown] if times == "unix" else [_iso(p.time) for p in shown],
        point_count=summary.point_count,
        simplified_count=len(shown),
        distance_m=round(summary.distance_m, 1),
        duration_s=summary.duration_s,
        time_outside_s=summary.time_outside_s,
    )
    return {"type": "Feature", "geometry": geometry, "properties": props}
