"""The entry point: an MQTT topic and payload bytes in, a typed message or a rejection out.

Pure: the caller passes the current time in, so the same input always gives the same
answer. Checks run cheapest first: payload size, topic, JSON, then fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import orjson

from protocols.mqtt.fields import WORKER_ID, PayloadRejected, RejectReason, TimeWindow
from protocols.mqtt.grid import parse_location, parse_status
from protocols.mqtt.messages import Ignored, Message, Source
from protocols.mqtt.owntracks import OWNTRACKS_SUBTOPICS, parse_owntracks

DEFAULT_MAX_BYTES = 4 * 1024
DEFAULT_MAX_SKEW_S = 300.0
"""A fix may be this far ahead of the server clock (phones' clocks drift)."""
DEFAULT_MAX_AGE_S = 7 * 24 * 3600.0
"""A fix may be this old: long enough for pings a phone queued during a long outage, or
that the broker held for the hub while it was down."""

TOPIC_CACHE_SIZE = 4096
"""Parsed topics kept (one or two per active worker); bad topics are never cached."""

GRID_ROOT = "grid"
OWNTRACKS_ROOT = "owntracks"
LOCATION = "location"
STATUS = "status"


@dataclass(frozen=True, slots=True)
class Topic:
    """What a topic names. ``kind`` is ``location`` or ``status`` for the grid format; for
    OwnTracks it is empty for ``owntracks/<user>/<device>`` or the sub-topic name."""

    source: Source
    worker_id: str
    kind: str
    device: str | None = None


def subscription_filters(prefix: str = "") -> list[str]:
    """The MQTT topic filters a hub subscribes to (optionally under ``prefix``)."""
    base = [f"{GRID_ROOT}/+/{LOCATION}", f"{GRID_ROOT}/+/{STATUS}", f"{OWNTRACKS_ROOT}/+/+"]
    return [f"{prefix}/{f}" for f in base] if prefix else base


def _bad_topic(detail: str) -> PayloadRejected:
    return PayloadRejected(RejectReason.BAD_TOPIC, detail)


def _segment(value: str, what: str) -> str:
    if not WORKER_ID.fullmatch(value):
        raise _bad_topic(f"{what} must match {WORKER_ID.pattern}")
    return value


def parse_topic(topic: str, *, prefix: str = "") -> Topic:
    """Parse a topic (``prefix`` is stripped first, e.g. a per-test namespace).

    Raises PayloadRejected(bad_topic).
    """
    return _parse_topic(topic, prefix)


@lru_cache(maxsize=TOPIC_CACHE_SIZE)
def _parse_topic(topic: str, prefix: str) -> Topic:
    if prefix:
        if not topic.startswith(prefix + "/"):
            raise _bad_topic("topic outside the configured prefix")
        topic = topic[len(prefix) + 1 :]
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == GRID_ROOT and parts[2] in (LOCATION, STATUS):
        return Topic(Source.GRID, _segment(parts[1], "worker id"), parts[2])
    if parts[0] == OWNTRACKS_ROOT and len(parts) in (3, 4):
        user = _segment(parts[1], "OwnTracks user")
        device = _segment(parts[2], "OwnTracks device")
        kind = parts[3] if len(parts) == 4 else ""
        if kind and kind not in OWNTRACKS_SUBTOPICS:
            raise _bad_topic("unknown OwnTracks sub-topic")
        return Topic(Source.OWNTRACKS, user, kind, device)
    raise _bad_topic("not a grid-phone topic")


def parse(
    topic: str,
    payload: bytes | bytearray | memoryview,
    *,
    now: float,
    max_skew: float = DEFAULT_MAX_SKEW_S,
    max_age: float = DEFAULT_MAX_AGE_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    prefix: str = "",
) -> Message:
    """Parse one MQTT message from a grid phone.

    ``now`` is the server's time (Unix seconds); fix times must lie in
    ``[now - max_age, now + max_skew]``. Returns a :class:`LocationPing`,
    :class:`StatusReport` or :class:`Ignored`; raises :class:`PayloadRejected` (whose
    ``worker_id`` is set once the topic has named one) and nothing else.
    """
    size = memoryview(payload).nbytes
    if size > max_bytes:
        raise PayloadRejected(RejectReason.TOO_LARGE, f"payload over {max_bytes} bytes")
    where = parse_topic(topic, prefix=prefix)
    try:
        return _parse_payload(where, payload, size, TimeWindow(now, max_skew, max_age))
    except PayloadRejected as err:
        err.worker_id = where.worker_id
        raise


def _parse_payload(
    where: Topic, payload: bytes | bytearray | memoryview, size: int, window: TimeWindow
) -> Message:
    if size == 0:
        return Ignored(where.source, "empty", where.worker_id, where.device)
    if where.source is Source.OWNTRACKS and where.kind:
        return Ignored(where.source, where.kind, where.worker_id, where.device)
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise PayloadRejected(RejectReason.NOT_JSON, "payload is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise PayloadRejected(RejectReason.NOT_OBJECT, "payload must be a JSON object")
    if where.source is Source.OWNTRACKS:
        assert where.device is not None  # parse_topic always sets it for OwnTracks
        return parse_owntracks(obj, where.worker_id, where.device, window)
    if where.kind == LOCATION:
        return parse_location(obj, where.worker_id, window)
    return parse_status(obj, where.worker_id, window)
