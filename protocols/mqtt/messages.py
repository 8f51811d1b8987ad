"""What a grid phone's MQTT message means once parsed: typed, validated, unit-normalised."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.geo.datum import Datum, to_wgs84
from protocols.geo.shapes import LatLon

# Validation limits. Generous for real phones, tight enough to refuse nonsense.
MAX_ACCURACY_M = 100_000.0
"""Accuracy radius cap. Coarse cell-tower fixes (a few km) pass; the hub's boundary logic
ignores inaccurate fixes on its own terms."""
MIN_ALTITUDE_M = -1_000.0
MAX_ALTITUDE_M = 20_000.0
MAX_SPEED_MPS = 300.0
"""About 1,080 km/h: a worker on an airliner still validates."""
MAX_HEADING_DEG = 360.0
MAX_BATTERY_PCT = 100.0
MAX_TRACKER_ID_LEN = 64


class Source(StrEnum):
    """Which payload format a message arrived in."""

    GRID = "grid"
    OWNTRACKS = "owntracks"


class WorkerState(StrEnum):
    """A worker's duty status; OFFLINE is what a Last Will carries."""

    ON_DUTY = "on_duty"
    OFF_DUTY = "off_duty"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class LocationPing:
    """One position fix from a phone, in SI units, with its three clocks kept apart.

    ``fix_time`` is when the phone measured the position, ``sent_time`` when it composed
    the message (``created_at``; differs when the phone queued pings offline). The server's
    receive time is not here: the hub records it.

    ``lat``/``lon`` are in ``datum`` as the phone sent them. ``datum`` is None when the
    payload did not say; the hub then applies the worker's configured datum (see
    :meth:`wgs84`).
    """

    worker_id: str
    lat: float
    lon: float
    accuracy_m: float
    altitude_m: float | None
    speed_mps: float | None
    heading_deg: float | None
    battery_pct: float | None
    fix_time: float
    sent_time: float | None
    datum: Datum | None
    source: Source
    device: str | None = None
    """The OwnTracks ``<device>`` topic segment; None for the grid format."""
    tracker_id: str | None = None
    """OwnTracks ``tid`` (a short label shown on maps), if sent."""

    def resolved_datum(self, fallback: Datum = Datum.WGS84) -> Datum:
        """The payload's datum, or ``fallback`` (the worker's setting) when it gave none."""
        return self.datum if self.datum is not None else fallback

    def wgs84(self, fallback: Datum = Datum.WGS84) -> LatLon:
        """The position converted to WGS-84, the one datum the hub stores."""
        return LatLon(*to_wgs84(self.lat, self.lon, self.resolved_datum(fallback)))


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A worker's duty status (``grid/<id>/status``) or an OwnTracks Last Will (offline).

    ``time`` may be None for an offline report: a Last Will is composed when the phone
    connects, so its timestamp (if any) says nothing about when the phone went away; the
    hub uses its receive time.
    """

    worker_id: str
    state: WorkerState
    battery_pct: float | None
    time: float | None
    source: Source
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed message the hub deliberately does not act on (not an error).

    ``kind`` is the OwnTracks ``_type`` (``transition``, ``waypoint``, ``card`` …), the
    OwnTracks sub-topic (``event``, ``cmd`` …) or ``empty`` for a zero-length payload (what
    clears a retained message).
    """

    source: Source
    kind: str
    worker_id: str | None = None
    device: str | None = None


Message = LocationPing | StatusReport | Ignored
"""Everything :func:`protocols.mqtt.parse` returns."""
