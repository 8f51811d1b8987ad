"""Geodetic datums used by phones in China, and conversions between them.

* **WGS-84** — what GPS receivers produce and what GeoJSON (RFC 7946) requires.
* **GCJ-02** — the "Mars" datum mandated for published maps in mainland China (AMap/Gaode,
  Tencent, Google Maps China). It is WGS-84 plus a deliberate, smooth, position-dependent
  offset of a few hundred metres. The published formula only applies inside a rough
  bounding box of China; outside it GCJ-02 is WGS-84 unchanged.
* **BD-09** — Baidu's datum: a further closed-form distortion of GCJ-02. The published
  formula has no China check, so BD-09 differs from WGS-84 everywhere.

The forward transforms (WGS-84 → GCJ-02 → BD-09) are the standard published formulas. Their
inverses have no closed form; they are computed here by fixed-point iteration on the forward
transform, converging to well under 1e-6° (≈ 0.1 m) inside China.

All functions take and return ``(lat, lon)`` in degrees, in that order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# Baidu's scaling constant for BD-09.
_BD_X_PI = math.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006

# The bounding box the published GCJ-02 formula uses for "inside China".
CHINA_MIN_LAT = 0.8293
CHINA_MAX_LAT = 55.8271
CHINA_MIN_LON = 72.004
CHINA_MAX_LON = 137.8347

INVERSE_TOLERANCE_DEG = 1e-10
INVERSE_MAX_ITERATIONS = 30


class Datum(StrEnum):
    """A horizontal datum a phone may report coordinates in."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"


_DATUM_ALIASES = {"wgs84": Datum.WGS84, "gcj02": Datum.GCJ02, "bd09": Datum.BD09}


def parse_datum(name: str) -> Datum:
    """Parse a datum name leniently: ``"WGS-84"``, ``"wgs84"``, ``"GCJ_02"``, ``"bd09"`` ….

    Raises ValueError for anything else.
    """
    key = name.strip().lower().replace("-", "").replace("_", "")
    try:
        return _DATUM_ALIASES[key]
    except KeyError:
        raise ValueError(f"unknown datum {name!r}") from None


def out_of_china(lat: float, lon: float) -> bool:
    """True outside the box where the GCJ-02 offset applies (the standard, rough test)."""
    return not (CHINA_MIN_LAT <= lat <= CHINA_MAX_LAT and CHINA_MIN_LON <= lon <= CHINA_MAX_LON)


def _offset_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (identity outside China)."""
    if out_of_china(lat, lon):
        return lat, lon
    dlat = _offset_lat(lon - 105.0, lat - 35.0)
    dlon = _offset_lon(lon - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _KRASOVSKY_EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    meridian_radius = _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (magic * sqrt_magic)
    dlat = (dlat * 180.0) / (meridian_radius * math.pi)
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lat + dlat, lon + dlon


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 → BD-09 (Baidu's published formula; applies everywhere)."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.sin(theta) + _BD_DLAT, z * math.cos(theta) + _BD_DLON


def _bd09_to_gcj02_closed_form(lat: float, lon: float) -> tuple[float, float]:
    """Baidu's published approximate inverse; the starting guess for the exact inverse."""
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD_X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def _invert(
    forward: Callable[[float, float], tuple[float, float]],
    lat: float,
    lon: float,
    guess: tuple[float, float],
) -> tuple[float, float]:
    """Solve ``forward(p) == (lat, lon)`` for p by fixed-point iteration from ``guess``.

    The forward transforms are the identity plus a slowly varying offset, so
    ``p ← p + (target − forward(p))`` converges quickly (a handful of steps).
    """
    g_lat, g_lon = guess
    for _ in range(INVERSE_MAX_ITERATIONS):
        f_lat, f_lon = forward(g_lat, g_lon)
        e_lat, e_lon = lat - f_lat, lon - f_lon
        g_lat += e_lat
        g_lon += e_lon
        if abs(e_lat) < INVERSE_TOLERANCE_DEG and abs(e_lon) < INVERSE_TOLERANCE_DEG:
            break
    return g_lat, g_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 → WGS-84 by iterative inversion (identity outside China)."""
    if out_of_china(lat, lon):
        return lat, lon
    return _invert(wgs84_to_gcj02, lat, lon, (lat, lon))


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 → GCJ-02: the published closed form refined by iteration."""
    return _invert(gcj02_to_bd09, lat, lon, _bd09_to_gcj02_closed_form(lat, lon))


def wgs84_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 → BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))


def bd09_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 → WGS-84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))


def to_wgs84(lat: float, lon: float, datum: Datum) -> tuple[float, float]:
    """Convert a point from ``datum`` to WGS-84."""
    if datum is Datum.GCJ02:
        return gcj02_to_wgs84(lat, lon)
    if datum is Datum.BD09:
        return bd09_to_wgs84(lat, lon)
    return lat, lon


def from_wgs84(lat: float, lon: float, datum: Datum) -> tuple[float, float]:
    """Convert a WGS-84 point to ``datum`` (e.g. to draw it on a Gaode or Baidu base map)."""
    if datum is Datum.GCJ02:
        return wgs84_to_gcj02(lat, lon)
    if datum is Datum.BD09:
        return wgs84_to_bd09(lat, lon)
    return lat, lon
