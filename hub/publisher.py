"""Routing events to channels and publishing them on the bus."""

from __future__ import annotations

from collections.abc import Iterable

from hub.auth.channels import org_channel
from hub.bus import Bus, StreamPosition
from protocols.envelope import Envelope, org_ancestors


def channels_for_org(path: str) -> list[str]:
    """The org node's channel and each ancestor's, so each tier's centre needs one
    subscription."""
    return [org_channel(node) for node in org_ancestors(path)]


def channels_for(envelope: Envelope, extra: Iterable[str] = ()) -> list[str]:
    """The envelope's org channels, then any extra per-object or personal channels."""
    channels = channels_for_org(envelope.org)
    channels.extend(c for c in extra if c not in channels)
    return channels


class Publisher:
    """Publishes envelopes to the bus: encoded once, the same bytes on every channel."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.published = 0

    async def publish_now(
        self, envelope: Envelope, extra: Iterable[str] = ()
    ) -> dict[str, StreamPosition]:
        """Publish directly (no state change to persist). Raises BusUnavailable."""
        return await self.publish_encoded(envelope.encode(), channels_for(envelope, extra))

    async def publish_encoded(
        self, data: bytes, channels: Iterable[str]
    ) -> dict[str, StreamPosition]:
        """Publish already-encoded envelope bytes to each channel in order."""
        positions: dict[str, StreamPosition] = {}
        for channel in channels:
            positions[channel] = await self.bus.publish(channel, data)
            self.published += 1
        return positions
