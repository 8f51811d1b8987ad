"""Rejections and field validators shared by the grid-phone payload parsers.

Every check raises :class:`PayloadRejected` with a reason from :class:`RejectReason`, the
fixed label set the hub counts rejections by.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, overload

WORKER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""Worker ids (and OwnTracks user/device segments): 1–64 of letters, digits, ``_ . -``."""

MS_THRESHOLD = 1e11
"""Timestamp rule: a value above 1e11 is milliseconds, otherwise seconds, since the Unix
epoch. 1e11 s lies in the year 5138 and 1e11 ms in 1973, so no real fix time is ambiguous."""


MAX_TIMESTAMP = 1e15
"""Largest raw timestamp accepted before the window check (1e15 ms is the year 33658)."""


class RejectReason(StrEnum):
    """Why a payload was refused: a metrics label, so the set is fixed."""

    TOO_LARGE = "too_large"
    BAD_TOPIC = "bad_topic"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    BAD_VALUE = "bad_value"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    FUTURE = "future"
    TOO_OLD = "too_old"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_WORKER = "unknown_worker"
    """Never raised by the parser: for the hub's registry check, so one label set covers all."""


class PayloadRejected(ValueError):
    """A grid-phone message that fails validation; ``reason`` is machine-readable."""

    def __init__(
        self,
        reason: RejectReason,
        detail: str,
        *,
        field: str | None = None,
        worker_id: str | None = None,
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.field = field
        self.worker_id = worker_id
        """Set when the topic named a valid worker, for rate-limited per-worker logging."""


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Acceptable timestamps: not after ``now + max_skew``, not before ``now - max_age``."""

    now: float
    max_skew: float
    max_age: float


@overload
def number(
    obj: Mapping[str, Any], key: str, lo: float, hi: float, *, required: Literal[True]
) -> float: ...
@overload
def number(
    obj: Mapping[str, Any], key: str, lo: float, hi: float, *, required: bool
) -> float | None: ...
def number(
    obj: Mapping[str, Any], key: str, lo: float, hi: float, *, required: bool
) -> float | None:
    """A finite JSON number in ``[lo, hi]`` (finite bounds); None when optional and absent
    or null. Booleans are not numbers (``true`` is not 1).
    """
    value: Any = obj.get(key)
    # Fast path for the common case; exact type checks also exclude bool. NaN fails the
    # comparison and lands in the slow path with everything else.
    kind = type(value)
    if (kind is float or kind is int) and lo <= value <= hi:
        return float(value)
    return _number_slow(value, key, lo, hi, required=required)


def _number_slow(value: Any, key: str, lo: float, hi: float, *, required: bool) -> float | None:
    """Classify a value the fast path did not accept: the reason is the first that applies."""
    if value is None:
        if required:
            raise PayloadRejected(RejectReason.MISSING_FIELD, f"{key} is required", field=key)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadRejected(RejectReason.BAD_TYPE, f"{key} must be a number", field=key)
    if isinstance(value, float) and not math.isfinite(value):
        raise PayloadRejected(RejectReason.NOT_FINITE, f"{key} must be finite", field=key)
    if lo <= value <= hi:  # an int or float subclass, from a caller that built the dict
        return float(value)
    raise PayloadRejected(RejectReason.OUT_OF_RANGE, f"{key} must lie in [{lo}, {hi}]", field=key)


@overload
def timestamp(
    obj: Mapping[str, Any],
    key: str,
    window: TimeWindow,
    *,
    required: Literal[True],
    check_age: bool = True,
) -> float: ...
@overload
def timestamp(
    obj: Mapping[str, Any],
    key: str,
    window: TimeWindow,
    *,
    required: bool,
    check_age: bool = True,
) -> float | None: ...
def timestamp(
    obj: Mapping[str, Any],
    key: str,
    window: TimeWindow,
    *,
    required: bool,
    check_age: bool = True,
) -> float | None:
    """A Unix time in seconds (see :data:`MS_THRESHOLD` for the ms rule) inside ``window``."""
    raw = number(obj, key, 0.0, MAX_TIMESTAMP, required=required)
    if raw is None:
        return None
    seconds = raw / 1000.0 if raw > MS_THRESHOLD else raw
    if seconds > window.now + window.max_skew:
        raise PayloadRejected(RejectReason.FUTURE, f"{key} is in the future", field=key)
    if check_age and seconds < window.now - window.max_age:
        raise PayloadRejected(RejectReason.TOO_OLD, f"{key} is too old", field=key)
    return seconds


def string(obj: Mapping[str, Any], key: str, *, max_len: int) -> str | None:
    """An optional non-empty string of at most ``max_len`` characters."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadRejected(RejectReason.BAD_TYPE, f"{key} must be a string", field=key)
    if not 0 < len(value) <= max_len:
        raise PayloadRejected(
            RejectReason.OUT_OF_RANGE, f"{key} must have 1–{max_len} characters", field=key
        )
    return value
