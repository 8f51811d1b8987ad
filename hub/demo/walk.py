"""Where a simulated grid phone is: a patrol between random points inside its grid, now
and then an excursion out of it and back, a draining battery. Pure geometry and state; the
fleet (fleet.py) decides when each phone speaks."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum

from protocols.geo import Area, LatLon, haversine_m

METRES_PER_DEGREE = 111_320.0
INSIDE_TRIES = 200
"""Random points drawn in a grid's bounding box before giving up on finding one inside."""
OUTSIDE_STEP_M = 20.0
OUTSIDE_MAX_M = 2000.0
BEARINGS = 12
"""Directions tried when looking for the nearest way out of the grid."""
EXCURSION_SPEEDUP = 3.0
"""A worker called out of the grid hurries (e-bike)."""
BATTERY_RECHARGED = 100.0
BATTERY_LOW = 15.0
"""Below this the phone is recharged (the worker plugs it in at the grid station)."""


class Mode(StrEnum):
    """What the phone's owner is doing."""

    PATROL = "patrol"
    LEAVING = "leaving"  # heading for a point outside the grid
    OUTSIDE = "outside"  # staying there a few fixes


def offset(point: LatLon, east_m: float, north_m: float) -> LatLon:
    """The point ``east_m`` east and ``north_m`` north of ``point`` (local flat earth)."""
    lat = point.lat + north_m / METRES_PER_DEGREE
    lon = point.lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(point.lat)))
    return LatLon(lat, lon)


def random_inside(area: Area, rng: random.Random) -> LatLon | None:
    """A uniformly random point inside ``area`` (None if none was found)."""
    box = area.bbox
    for _ in range(INSIDE_TRIES):
        point = LatLon(rng.uniform(box.min_lat, box.max_lat), rng.uniform(box.min_lon, box.max_lon))
        if area.contains(point):
            return point
    return None


def nearest_outside(area: Area, start: LatLon, beyond_m: float) -> LatLon:
    """A point at least ``beyond_m`` outside ``area``, along the shortest of a few straight
    ways out from ``start``."""
    best: tuple[float, LatLon] | None = None
    for k in range(BEARINGS):
        angle = 2 * math.pi * k / BEARINGS
        travelled = OUTSIDE_STEP_M
        while travelled <= OUTSIDE_MAX_M:
            point = offset(start, travelled * math.sin(angle), travelled * math.cos(angle))
            if area.signed_distance_m(point) >= beyond_m:
                if best is None or travelled < best[0]:
                    best = (travelled, point)
                break
            travelled += OUTSIDE_STEP_M
    if best is None:  # a grid larger than the search: go far east
        return offset(start, OUTSIDE_MAX_M, 0.0)
    return best[1]


def toward(here: LatLon, there: LatLon, metres: float) -> LatLon:
    """The point ``metres`` from ``here`` on the way to ``there`` (``there`` if closer)."""
    distance = haversine_m(here, there)
    if distance <= metres or distance == 0:
        return there
    f = metres / distance
    return LatLon(here.lat + f * (there.lat - here.lat), here.lon + f * (there.lon - here.lon))


@dataclass
class Walker:
    """One grid worker's phone: position, target, battery and mode."""

    worker_id: str
    area: Area
    position: LatLon
    speed_mps: float
    battery: float
    rng: random.Random
    target: LatLon = field(init=False)
    mode: Mode = Mode.PATROL
    outside_fixes: int = 0
    silent_until: float = 0.0
    """Monotonic time until which the phone says nothing (0: not silent)."""

    def __post_init__(self) -> None:
        self.target = self._next_target()

    @classmethod
    def in_grid(cls, worker_id: str, area: Area, rng: random.Random) -> Walker | None:
        """A phone at a random point of its grid (None if the polygon is unusable)."""
        start = random_inside(area, rng)
        if start is None:
            return None
        # Some walk, many ride e-bikes: 1.2 to 4 m/s.
        return cls(worker_id, area, start, rng.uniform(1.2, 4.0), rng.uniform(60.0, 100.0), rng)

    def _next_target(self) -> LatLon:
        return random_inside(self.area, self.rng) or self.position

    def leave(self, beyond_m: float) -> None:
        """Head out of the grid to a point ``beyond_m`` past its boundary."""
        self.mode = Mode.LEAVING
        self.outside_fixes = 0
        self.target = nearest_outside(self.area, self.position, beyond_m)

    def step(self, dt: float, stay_outside_fixes: int) -> LatLon:
        """Move for ``dt`` seconds and drain the battery; returns the new position."""
        speed = self.speed_mps * (EXCURSION_SPEEDUP if self.mode is Mode.LEAVING else 1.0)
        if self.mode is Mode.OUTSIDE:
            self.outside_fixes += 1
            if self.outside_fixes >= stay_outside_fixes:
                self.mode = Mode.PATROL
                self.target = self._next_target()
        else:
            moved = toward(self.position, self.target, speed * dt)
            inside_now = self.area.contains(self.position)
            if self.mode is Mode.PATROL and inside_now and not self.area.contains(moved):
                # A concave grid: the straight way leaves it. Pick another target (on the
                # way back from an excursion the worker walks straight in).
                self.target = self._next_target()
            else:
                self.position = moved
            if self.position == self.target:
                if self.mode is Mode.LEAVING:
                    self.mode = Mode.OUTSIDE
                else:
                    self.target = self._next_target()
        self.battery -= self.rng.uniform(0.02, 0.12)
        if self.battery < BATTERY_LOW:
            self.battery = BATTERY_RECHARGED
        return self.position

    @property
    def accuracy_m(self) -> float:
        """A plausible GPS accuracy for the next fix (metres)."""
        return round(self.rng.uniform(4.0, 18.0), 1)
