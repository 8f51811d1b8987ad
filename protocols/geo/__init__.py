"""Geography for grid phones, pure and I/O-free: datums, org-node polygons and a spatial
index, boundary hysteresis, and track helpers.

Points are :class:`LatLon` (WGS-84 degrees) everywhere; polygons keep GeoJSON's
``(lon, lat)`` order internally.
"""

from protocols.geo.datum import (
    Datum,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    parse_datum,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from protocols.geo.index import GridIndex
from protocols.geo.shapes import Area, BBox, GeoJSONError, LatLon, Polygon, load_areas
from protocols.geo.tracker import (
    DEFAULT_HYSTERESIS,
    GridTracker,
    HysteresisConfig,
    Presence,
    Transition,
    TransitionKind,
)
from protocols.geo.tracks import (
    TrackPoint,
    TrackSummary,
    haversine_m,
    path_length_m,
    simplify,
    summarize,
    time_outside_from_flags,
    time_outside_s,
    track_feature,
)

__all__ = [
    "DEFAULT_HYSTERESIS",
    "Area",
    "BBox",
    "Datum",
    "GeoJSONError",
    "GridIndex",
    "GridTracker",
    "HysteresisConfig",
    "LatLon",
    "Polygon",
    "Presence",
    "TrackPoint",
    "TrackSummary",
    "Transition",
    "TransitionKind",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "haversine_m",
    "load_areas",
    "out_of_china",
    "parse_datum",
    "path_length_m",
    "simplify",
    "summarize",
    "time_outside_from_flags",
    "time_outside_s",
    "to_wgs84",
    "track_feature",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]
