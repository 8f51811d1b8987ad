"""Grid Hub's own phone payloads.

``grid/<worker_id>/location``::

    {"lat": 30.63, "lon": 114.39, "acc": 8, "alt": 21.5, "speed": 1.2, "heading": 270,
     "batt": 87, "ts": 1732350000, "created_at": 1732350002, "datum": "gcj02"}

``lat``, ``lon``, ``acc`` (metres) and ``ts`` (fix time) are required; ``alt`` (metres),
``speed`` (m/s), ``heading`` (degrees clockwise from north, 0–360), ``batt`` (percent),
``created_at`` (send time) and ``datum`` (``wgs84`` | ``gcj02`` | ``bd09``, also spelled
``WGS-84`` …) are optional; ``null`` counts as absent. Times are Unix seconds or
milliseconds (values above 1e11 are milliseconds), int or float. Unknown keys are ignored.

``grid/<worker_id>/status``::

    {"state": "on_duty" | "off_duty" | "offline", "batt": 80, "ts": 1732350000}

``ts`` is required except for ``offline``, whose Last Will was written at connect time: an
offline ``ts`` is optional and only checked for not being in the future.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.geo.datum import Datum, parse_datum
from protocols.mqtt.fields import PayloadRejected, RejectReason, TimeWindow, number, timestamp
from protocols.mqtt.messages import (
    MAX_ACCURACY_M,
    MAX_ALTITUDE_M,
    MAX_BATTERY_PCT,
    MAX_HEADING_DEG,
    MAX_SPEED_MPS,
    MIN_ALTITUDE_M,
    LocationPing,
    Source,
    StatusReport,
    WorkerState,
)


def datum_field(obj: Mapping[str, Any]) -> Datum | None:
    """The optional ``datum`` key."""
    value = obj.get("datum")
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadRejected(RejectReason.BAD_TYPE, "datum must be a string", field="datum")
    try:
        return parse_datum(value)
    except ValueError:
        raise PayloadRejected(
            RejectReason.BAD_VALUE, "datum must be wgs84, gcj02 or bd09", field="datum"
        ) from None


def battery_field(obj: Mapping[str, Any], key: str) -> float | None:
    """An optional battery percentage."""
    return number(obj, key, 0.0, MAX_BATTERY_PCT, required=False)


def parse_location(obj: Mapping[str, Any], worker_id: str, window: TimeWindow) -> LocationPing:
    """Validate a ``grid/<id>/location`` object."""
    return LocationPing(
        worker_id=worker_id,
        lat=number(obj, "lat", -90.0, 90.0, required=True),
        lon=number(obj, "lon", -180.0, 180.0, required=True),
        accuracy_m=number(obj, "acc", 0.0, MAX_ACCURACY_M, required=True),
        altitude_m=number(obj, "alt", MIN_ALTITUDE_M, MAX_ALTITUDE_M, required=False),
        speed_mps=number(obj, "speed", 0.0, MAX_SPEED_MPS, required=False),
        heading_deg=number(obj, "heading", 0.0, MAX_HEADING_DEG, required=False),
        battery_pct=battery_field(obj, "batt"),
        fix_time=timestamp(obj, "ts", window, required=True),
        sent_time=timestamp(obj, "created_at", window, required=False),
        datum=datum_field(obj),
        source=Source.GRID,
    )


def parse_status(obj: Mapping[str, Any], worker_id: str, window: TimeWindow) -> StatusReport:
    """Validate a ``grid/<id>/status`` object."""
    raw_state = obj.get("state")
    if raw_state is None:
        raise PayloadRejected(RejectReason.MISSING_FIELD, "state is required", field="state")
    if not isinstance(raw_state, str):
        raise PayloadRejected(RejectReason.BAD_TYPE, "state must be a string", field="state")
    try:
        state = WorkerState(raw_state)
    except ValueError:
        raise PayloadRejected(
            RejectReason.BAD_VALUE, "state must be on_duty, off_duty or offline", field="state"
        ) from None
    offline = state is WorkerState.OFFLINE
    return StatusReport(
        worker_id=worker_id,
        state=state,
        battery_pct=battery_field(obj, "batt"),
        time=timestamp(obj, "ts", window, required=not offline, check_age=not offline),
        source=Source.GRID,
    )
