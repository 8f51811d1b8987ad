"""OwnTracks compatibility (https://owntracks.org/booklet/tech/json/).

Topic ``owntracks/<user>/<device>``: the ``<user>`` segment is the worker id (a mapping
from OwnTracks users to workers, if ever needed, belongs to the hub). ``_type`` decides:

* ``location`` → :class:`LocationPing`. ``lat``, ``lon``, ``tst`` (fix time) and ``acc``
  are required (OwnTracks marks ``acc`` optional, but a fix of unknown accuracy cannot be
  judged against a grid boundary). Optional: ``alt`` (m), ``batt`` (%), ``vel`` (km/h,
  converted to m/s), ``cog`` (heading, degrees), ``tid``, ``created_at`` (send time), and
  our extension ``datum``.
* ``lwt`` → :class:`StatusReport` with state offline (the broker publishes it as the
  phone's Last Will).
* any other known ``_type`` (``transition``, ``waypoint``, ``card`` …) → :class:`Ignored`.
* a missing ``_type`` is ``missing_field``; an unknown one ``unknown_type``.

Sub-topics the apps publish to (``…/event``, ``…/cmd``, ``…/info`` …) are :class:`Ignored`
without parsing the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocols.mqtt.fields import (
    PayloadRejected,
    RejectReason,
    TimeWindow,
    number,
    string,
    timestamp,
)
from protocols.mqtt.grid import battery_field, datum_field
from protocols.mqtt.messages import (
    MAX_ACCURACY_M,
    MAX_ALTITUDE_M,
    MAX_HEADING_DEG,
    MAX_SPEED_MPS,
    MAX_TRACKER_ID_LEN,
    MIN_ALTITUDE_M,
    Ignored,
    LocationPing,
    Source,
    StatusReport,
    WorkerState,
)

KMH_PER_MPS = 3.6

OWNTRACKS_TYPES = frozenset(
    {
        "beacon",
        "card",
        "cmd",
        "configuration",
        "dump",
        "encrypted",
        "location",
        "lwt",
        "request",
        "status",
        "steps",
        "transition",
        "waypoint",
        "waypoints",
    }
)
"""Every ``_type`` the OwnTracks apps are documented to send."""

OWNTRACKS_SUBTOPICS = frozenset(
    {"beacon", "cmd", "dump", "event", "info", "status", "step", "waypoint", "waypoints"}
)
"""Sub-topics under ``owntracks/<user>/<device>/``: nothing there is a position fix."""


def parse_owntracks(
    obj: Mapping[str, Any], user: str, device: str, window: TimeWindow
) -> LocationPing | StatusReport | Ignored:
    """Dispatch one ``owntracks/<user>/<device>`` object on its ``_type``."""
    kind = obj.get("_type")
    if kind is None:
        raise PayloadRejected(RejectReason.MISSING_FIELD, "_type is required", field="_type")
    if not isinstance(kind, str):
        raise PayloadRejected(RejectReason.BAD_TYPE, "_type must be a string", field="_type")
    if kind == "location":
        return _location(obj, user, device, window)
    if kind == "lwt":
        return StatusReport(
            worker_id=user,
            state=WorkerState.OFFLINE,
            battery_pct=None,
            time=timestamp(obj, "tst", window, required=False, check_age=False),
            source=Source.OWNTRACKS,
            device=device,
        )
    if kind in OWNTRACKS_TYPES:
        return Ignored(Source.OWNTRACKS, kind, user, device)
    raise PayloadRejected(RejectReason.UNKNOWN_TYPE, "unknown OwnTracks _type", field="_type")


def _location(obj: Mapping[str, Any], user: str, device: str, window: TimeWindow) -> LocationPing:
    vel = number(obj, "vel", 0.0, MAX_SPEED_MPS * KMH_PER_MPS, required=False)
    return LocationPing(
        worker_id=user,
        lat=number(obj, "lat", -90.0, 90.0, required=True),
        lon=number(obj, "lon", -180.0, 180.0, required=True),
        accuracy_m=number(obj, "acc", 0.0, MAX_ACCURACY_M, required=True),
        altitude_m=number(obj, "alt", MIN_ALTITUDE_M, MAX_ALTITUDE_M, required=False),
        speed_mps=None if vel is None else vel / KMH_PER_MPS,
        heading_deg=number(obj, "cog", 0.0, MAX_HEADING_DEG, required=False),
        battery_pct=battery_field(obj, "batt"),
        fix_time=timestamp(obj, "tst", window, required=True),
        sent_time=timestamp(obj, "created_at", window, required=False),
        datum=datum_field(obj),
        source=Source.OWNTRACKS,
        device=device,
        tracker_id=string(obj, "tid", max_len=MAX_TRACKER_ID_LEN),
    )
