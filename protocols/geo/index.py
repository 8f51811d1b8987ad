"""A spatial index over org-node polygons: which grid contains this point?

A uniform bucket grid over the indexed areas' extent: each bucket lists the areas whose
bounding box touches it, so a lookup tests a handful of candidate polygons instead of all of
them. Grids tile their community, so buckets are small and mostly hold one to four areas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from protocols.geo.shapes import Area, GeoJSONError, LatLon, bbox_of, load_areas

GRID_LEVEL = "grid"
BUCKETS_PER_AREA = 4  # aim for about this many buckets per indexed area


class GridIndex:
    """All org-node areas by path, and a bucket index over the areas of one level."""

    __slots__ = ("_areas", "_bbox", "_buckets", "_cols", "_dx", "_dy", "_level", "_rows")

    def __init__(self, areas: Iterable[Area], *, level: str = GRID_LEVEL) -> None:
        self._areas: dict[str, Area] = {}
        for area in areas:
            if area.path in self._areas:
                raise GeoJSONError(f"duplicate path {area.path!r}")
            self._areas[area.path] = area
        self._level = level
        indexed = [a for a in self._areas.values() if a.level == level]
        if not indexed:
            raise GeoJSONError(f"no areas at level {level!r}")
        self._bbox = bbox_of(indexed)
        side = max(1, math.ceil(math.sqrt(len(indexed) * BUCKETS_PER_AREA)))
        self._cols = self._rows = side
        # A degenerate (zero-width) extent still gets one bucket per axis.
        self._dx = (self._bbox.max_lon - self._bbox.min_lon) / side or 1.0
        self._dy = (self._bbox.max_lat - self._bbox.min_lat) / side or 1.0
        lists: list[list[Area]] = [[] for _ in range(side * side)]
        for area in indexed:
            c0, r0 = self._cell(area.bbox.min_lon, area.bbox.min_lat)
            c1, r1 = self._cell(area.bbox.max_lon, area.bbox.max_lat)
            for row in range(r0, r1 + 1):
                for col in range(c0, c1 + 1):
                    lists[row * side + col].append(area)
        self._buckets: list[tuple[Area, ...]] = [tuple(b) for b in lists]

    @classmethod
    def from_geojson(cls, geojson: Mapping[str, Any], *, level: str = GRID_LEVEL) -> GridIndex:
        """Build from a decoded GeoJSON FeatureCollection (the caller reads the file)."""
        return cls(load_areas(geojson), level=level)

    def _cell(self, lon: float, lat: float) -> tuple[int, int]:
        col = int((lon - self._bbox.min_lon) / self._dx)
        row = int((lat - self._bbox.min_lat) / self._dy)
        return min(max(col, 0), self._cols - 1), min(max(row, 0), self._rows - 1)

    @property
    def level(self) -> str:
        """The level whose areas :meth:`locate` answers with (normally ``"grid"``)."""
        return self._level

    @property
    def paths(self) -> list[str]:
        """Every loaded path, at any level."""
        return list(self._areas)

    def __contains__(self, path: object) -> bool:
        return path in self._areas

    def __len__(self) -> int:
        return len(self._areas)

    def area(self, path: str) -> Area:
        """The area of one org node; KeyError if it has no polygon."""
        return self._areas[path]

    def candidates(self, point: LatLon) -> tuple[Area, ...]:
        """The indexed areas whose bounding box may contain the point."""
        if not self._bbox.contains(point):
            return ()
        col, row = self._cell(point.lon, point.lat)
        return self._buckets[row * self._cols + col]

    def locate(self, point: LatLon) -> str | None:
        """The path of the indexed-level area containing the point, or None."""
        for area in self.candidates(point):
            if area.contains(point):
                return area.path
        return None

    def contains(self, path: str, point: LatLon) -> bool:
        """True when the area of ``path`` (any level) contains the point; KeyError if unknown."""
        return self._areas[path].contains(point)

    def signed_distance_m(self, path: str, point: LatLon) -> float:
        """Metres from the point to the boundary of ``path``: negative inside, positive out."""
        return self._areas[path].signed_distance_m(point)
