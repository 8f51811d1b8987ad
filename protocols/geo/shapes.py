"""Points, polygons and the GeoJSON grid file: containment and distances in metres.

Coordinates follow GeoJSON inside polygons (``(lon, lat)`` pairs, WGS-84) but every public
function takes points as :class:`LatLon` so the order is never guessed. Distances use a
local equirectangular projection around the query point, accurate to well under a metre at
grid scale (a few kilometres).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180.0

Ring = tuple[tuple[float, float], ...]
"""A closed ring of ``(lon, lat)`` vertices; the last vertex repeats the first."""


class GeoJSONError(ValueError):
    """A GeoJSON document that is not a usable set of org-node polygons."""


class LatLon(NamedTuple):
    """A WGS-84 point in degrees."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class BBox:
    """An axis-aligned box in degrees."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, point: LatLon) -> bool:
        """True when the point lies in the box (edges included)."""
        return (
            self.min_lat <= point.lat <= self.max_lat and self.min_lon <= point.lon <= self.max_lon
        )


@dataclass(frozen=True, slots=True)
class Polygon:
    """One polygon: an exterior ring and zero or more holes."""

    exterior: Ring
    holes: tuple[Ring, ...] = ()

    @property
    def rings(self) -> tuple[Ring, ...]:
        """The exterior followed by the holes."""
        return (self.exterior, *self.holes)

    def contains(self, point: LatLon) -> bool:
        """Even–odd point-in-polygon over all rings (a point in a hole is outside)."""
        inside = False
        for ring in self.rings:
            if _ring_crossings_odd(ring, point.lon, point.lat):
                inside = not inside
        return inside


@dataclass(frozen=True, slots=True)
class Area:
    """The geometry of one org node: one or more polygons (GeoJSON Polygon/MultiPolygon)."""

    path: str
    name: str
    level: str
    polygons: tuple[Polygon, ...]
    bbox: BBox = field(init=False)

    def __post_init__(self) -> None:
        lons = [x for poly in self.polygons for x, _ in poly.exterior]
        lats = [y for poly in self.polygons for _, y in poly.exterior]
        object.__setattr__(self, "bbox", BBox(min(lons), min(lats), max(lons), max(lats)))

    def contains(self, point: LatLon) -> bool:
        """True when the point lies inside any of the polygons."""
        return self.bbox.contains(point) and any(p.contains(point) for p in self.polygons)

    def boundary_distance_m(self, point: LatLon) -> float:
        """Distance in metres from the point to the nearest edge of any ring."""
        return min(_ring_distance_m(ring, point) for poly in self.polygons for ring in poly.rings)

    def signed_distance_m(self, point: LatLon) -> float:
        """Distance to the boundary in metres: negative inside, positive outside."""
        distance = self.boundary_distance_m(point)
        return -distance if self.contains(point) else distance

    def to_feature(self) -> dict[str, Any]:
        """The area as a GeoJSON Feature (properties: path, name, level)."""
        rings = [[[list(pt) for pt in ring] for ring in poly.rings] for poly in self.polygons]
        geometry = (
            {"type": "Polygon", "coordinates": rings[0]}
            if len(rings) == 1
            else {"type": "MultiPolygon", "coordinates": rings}
        )
        return {
            "type": "Feature",
            "properties": {"path": self.path, "name": self.name, "level": self.level},
            "geometry": geometry,
        }

    def area_m2(self) -> float:
        """Approximate area in square metres (shoelace in a local projection)."""
        ref = LatLon((self.bbox.min_lat + self.bbox.max_lat) / 2, self.bbox.min_lon)
        total = 0.0
        for poly in self.polygons:
            total += abs(_ring_area_m2(poly.exterior, ref))
            total -= sum(abs(_ring_area_m2(hole, ref)) for hole in poly.holes)
        return total


def _ring_crossings_odd(ring: Ring, x: float, y: float) -> bool:
    """Crossing-number test: does a ray from (x, y) towards +x cross the ring an odd number
    of times? Half-open edges make a point on an edge shared by two polygons belong to
    exactly one of them."""
    odd = False
    x1, y1 = ring[-1]
    for x2, y2 in ring:
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            odd = not odd
        x1, y1 = x2, y2
    return odd


def project_m(point: LatLon, ref: LatLon) -> tuple[float, float]:
    """Equirectangular projection of ``point`` to metres east/north of ``ref``."""
    scale = math.cos(math.radians(ref.lat))
    return (
        (point.lon - ref.lon) * METRES_PER_DEGREE * scale,
        (point.lat - ref.lat) * METRES_PER_DEGREE,
    )


def segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    """Euclidean distance from P to the segment AB (all in the same planar units)."""
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return math.hypot(px - ax, py - ay)
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _ring_distance_m(ring: Ring, point: LatLon) -> float:
    kx = METRES_PER_DEGREE * math.cos(math.radians(point.lat))
    ky = METRES_PER_DEGREE
    best = math.inf
    ax, ay = (ring[0][0] - point.lon) * kx, (ring[0][1] - point.lat) * ky
    for lon, lat in ring[1:]:
        bx, by = (lon - point.lon) * kx, (lat - point.lat) * ky
        best = min(best, segment_distance(0.0, 0.0, ax, ay, bx, by))
        ax, ay = bx, by
    return best


def _ring_area_m2(ring: Ring, ref: LatLon) -> float:
    pts = [project_m(LatLon(lat, lon), ref) for lon, lat in ring]
    return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(pts))


def _ring(raw: Any, where: str) -> Ring:
    if not isinstance(raw, list) or len(raw) < 4:
        raise GeoJSONError(f"{where}: a ring needs at least 4 positions")
    out: list[tuple[float, float]] = []
    for pos in raw:
        if not isinstance(pos, list | tuple) or len(pos) < 2:
            raise GeoJSONError(f"{where}: a position is [lon, lat]")
        lon, lat = pos[0], pos[1]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
            raise GeoJSONError(f"{where}: coordinates must be numbers")
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise GeoJSONError(f"{where}: coordinates must be finite")
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise GeoJSONError(f"{where}: coordinates out of range")
        out.append((float(lon), float(lat)))
    if out[0] != out[-1]:
        raise GeoJSONError(f"{where}: a ring must be closed (last position = first)")
    return tuple(out)


def _polygon(raw: Any, where: str) -> Polygon:
    if not isinstance(raw, list) or not raw:
        raise GeoJSONError(f"{where}: a polygon is a non-empty list of rings")
    rings = [_ring(r, where) for r in raw]
    return Polygon(exterior=rings[0], holes=tuple(rings[1:]))


def area_from_feature(feature: Mapping[str, Any]) -> Area:
    """Build an :class:`Area` from one GeoJSON Feature with ``properties.path`` (required),
    ``name`` and ``level`` and a Polygon or MultiPolygon geometry."""
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise GeoJSONError("each member must be a GeoJSON Feature")
    props = feature.get("properties")
    if not isinstance(props, Mapping) or not isinstance(props.get("path"), str):
        raise GeoJSONError("a feature needs properties.path")
    path: str = props["path"]
    geometry = feature.get("geometry")
    if not isinstance(geometry, Mapping):
        raise GeoJSONError(f"{path}: missing geometry")
    coords = geometry.get("coordinates")
    if geometry.get("type") == "Polygon":
        polygons: tuple[Polygon, ...] = (_polygon(coords, path),)
    elif geometry.get("type") == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise GeoJSONError(f"{path}: a MultiPolygon needs polygons")
        polygons = tuple(_polygon(c, path) for c in coords)
    else:
        raise GeoJSONError(f"{path}: geometry must be a Polygon or MultiPolygon")
    return Area(
        path=path,
        name=str(props.get("name", path)),
        level=str(props.get("level", "")),
        polygons=polygons,
    )


def load_areas(geojson: Mapping[str, Any]) -> list[Area]:
    """Parse a GeoJSON FeatureCollection (already decoded) into areas, one per org node.

    No file I/O here: the caller reads and decodes the file. Raises GeoJSONError.
    """
    if not isinstance(geojson, Mapping) or geojson.get("type") != "FeatureCollection":
        raise GeoJSONError("expected a GeoJSON FeatureCollection")
    features = geojson.get("features")
    if not isinstance(features, list):
        raise GeoJSONError("features must be a list")
    areas = [area_from_feature(f) for f in features]
    seen: set[str] = set()
    for area in areas:
        if area.path in seen:
            raise GeoJSONError(f"duplicate path {area.path!r}")
        seen.add(area.path)
    return areas


def bbox_of(areas: Iterable[Area]) -> BBox:
    """The box around all the given areas."""
    boxes: Sequence[BBox] = [a.bbox for a in areas]
    if not boxes:
        raise GeoJSONError("no areas")
    return BBox(
        min(b.min_lon for b in boxes),
        min(b.min_lat for b in boxes),
        max(b.max_lon for b in boxes),
        max(b.max_lat for b in boxes),
    )
