"""Grid phones' MQTT payloads, pure and I/O-free: topic + bytes in, typed messages out.

Formats: ``grid/<worker_id>/location`` and ``grid/<worker_id>/status`` (ours, see
:mod:`protocols.mqtt.grid`) and OwnTracks ``owntracks/<user>/<device>`` (see
:mod:`protocols.mqtt.owntracks`). Entry point: :func:`parse`.
"""

from protocols.mqtt.fields import MS_THRESHOLD, WORKER_ID, PayloadRejected, RejectReason
from protocols.mqtt.messages import (
    Ignored,
    LocationPing,
    Message,
    Source,
    StatusReport,
    WorkerState,
)
from protocols.mqtt.parser import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SKEW_S,
    Topic,
    parse,
    parse_topic,
    subscription_filters,
)

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_SKEW_S",
    "MS_THRESHOLD",
    "WORKER_ID",
    "Ignored",
    "LocationPing",
    "Message",
    "PayloadRejected",
    "RejectReason",
    "Source",
    "StatusReport",
    "Topic",
    "WorkerState",
    "parse",
    "parse_topic",
    "subscription_filters",
]
