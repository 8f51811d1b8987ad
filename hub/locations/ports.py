"""The contract between transport adapters (MQTT) and the location service.

An adapter hands over raw messages in batches and acknowledges them to the broker only
after ``ingest`` returned: by then they are persisted (or counted as rejected), so a hub
crash before the acknowledgement makes the broker redeliver them, never lose them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message as it arrived: topic, raw payload and the hub's receive time."""

    topic: str
    payload: bytes
    received_at: float


class LocationSink(Protocol):
    """What the location service offers a transport adapter."""

    async def ingest(self, batch: Sequence[InboundMessage]) -> None:
        """Validate, persist and publish a batch. Returns once everything valid is
        committed; bad messages are counted and dropped, never raised. Raises
        ``hub.errors.NotReadyError`` when it could not persist (the adapter keeps the
        batch unacknowledged and retries)."""
        ...
