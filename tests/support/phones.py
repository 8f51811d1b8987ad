"""Grid-phone messages for tests that feed the location service directly (as the MQTT
adapter hands messages over), and points inside the demo grids."""

from __future__ import annotations

import time

import orjson

from hub.locations.ports import InboundMessage
from hub.state import Hub
from protocols.geo import LatLon


def location(worker: str, point: LatLon, fix_time: float, acc: float = 8.0) -> InboundMessage:
    """A phone's ``grid/<worker>/location`` message, received now."""
    payload = orjson.dumps({"lat": point.lat, "lon": point.lon, "acc": acc, "ts": fix_time})
    return InboundMessage(f"grid/{worker}/location", payload, time.time())


def inside(hub: Hub, grid: str, fx: float = 0.5, fy: float = 0.5) -> LatLon:
    """A point of ``grid``'s bounding box (fractions from its south-west corner), checked
    to lie inside the polygon."""
    grids = hub.locations.registry.grids
    box = grids.area(grid).bbox
    point = LatLon(
        box.min_lat + fy * (box.max_lat - box.min_lat),
        box.min_lon + fx * (box.max_lon - box.min_lon),
    )
    assert grids.contains(grid, point), f"{point} is not inside {grid}"
    return point
