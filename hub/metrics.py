"""Prometheus metrics. Hot-path counts are plain integers on the services, read at scrape
time by a collector, so a delivery costs no lock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.metric_families import labelled_counter
from hub.sms.metrics import sms_metrics

if TYPE_CHECKING:
    from hub.state import Hub

log = structlog.get_logger(__name__)


class LocationCounters:
    """Counts of the position pipeline (grid phones)."""

    def __init__(self) -> None:
        self.stored = 0
        self.duplicates = 0
        self.pushed = 0
        self.events = 0
        self.rejected_by_reason: dict[str, int] = {}

    def rejected(self, reason: str) -> None:
        """Count a refused phone message by reason."""
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1


class HubMetrics:
    """A registry per hub (tests run several hubs in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._hub: Hub | None = None
        self._outbox_pending = 0
        self._refreshers: list[Callable[[], Awaitable[None]]] = []
        self.ingest_accepted = 0
        self.ingest_rejected: dict[str, int] = {}
        self.locations = LocationCounters()

    def bind(self, hub: Hub) -> None:
        """Start exporting the hub's counters."""
        self._hub = hub
        self.registry.register(_HubCollector(self))

    def add_refresher(self, refresher: Callable[[], Awaitable[None]]) -> None:
        """Have ``refresher`` read its I/O-bound values (e.g. a queue's backlog) before
        each scrape; it exports them through a collector of its own."""
        self._refreshers.append(refresher)

    async def refresh(self) -> None:
        """Read values that need I/O (outbox backlog, adapters' queues) before a scrape."""
        if self._hub is not None:
            try:
                self._outbox_pending = await self._hub.relay.pending()
            except Exception:
                self._outbox_pending = -1
        for refresher in self._refreshers:
            try:
                await refresher()
            except Exception:
                log.warning("metrics refresher failed", exc_info=True)

    def reject(self, code: str) -> None:
        """Count a rejected ingest request by error code."""
        self.ingest_rejected[code] = self.ingest_rejected.get(code, 0) + 1


class _HubCollector(Collector):
    def __init__(self, metrics: HubMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        hub = self._m._hub
        if hub is None:
            return
        node = hub.gateway.node
        yield GaugeMetricFamily(
            "hub_ws_connections", "Open WebSocket connections.", value=len(node.connections)
        )
        yield GaugeMetricFamily(
            "hub_ws_subscriptions",
            "Channel subscriptions of open connections.",
            value=sum(len(c.subs) for c in node.connections),
        )
        yield GaugeMetricFamily(
            "hub_channels_local", "Channels with local subscribers.", value=len(node.channels)
        )
        yield CounterMetricFamily(
            "hub_publications", "Publications sent to the bus.", value=hub.publisher.published
        )
        yield CounterMetricFamily(
            "hub_publications_delivered",
            "Publications received from the bus and fanned out locally.",
            value=node.publications_delivered,
        )
        yield CounterMetricFamily(
            "hub_deliveries", "Messages written to client sockets.", value=node.deliveries
        )
        yield CounterMetricFamily(
            "hub_slow_disconnects",
            "Clients disconnected for not reading fast enough.",
            value=node.slow_disconnects,
        )
        yield CounterMetricFamily(
            "hub_channel_resyncs",
            "Times a channel lost continuity and its subscribers were told to resync.",
            value=node.resyncs,
        )
        yield CounterMetricFamily(
            "hub_protocol_errors",
            "Connections closed for malformed protocol frames.",
            value=hub.gateway.protocol_errors,
        )
        yield GaugeMetricFamily(
            "hub_ws_queue_bytes",
            "Bytes queued in client connections' outbound buffers.",
            value=node.queued_bytes(),
        )
        yield GaugeMetricFamily(
            "hub_outbox_pending",
            "Outbox events committed but not yet published.",
            value=self._m._outbox_pending,
        )
        yield CounterMetricFamily(
            "hub_outbox_published", "Outbox events published.", value=hub.relay.published
        )
        yield GaugeMetricFamily(
            "hub_bus_ready", "1 while the bus is connected and listening.", value=int(hub.bus.ready)
        )
        yield CounterMetricFamily(
            "hub_bus_malformed_messages",
            "Live-feed messages from the bus that could not be parsed.",
            value=getattr(hub.bus, "malformed_messages", 0),
        )
        yield CounterMetricFamily(
            "hub_ingest_accepted",
            "External events accepted.",
            value=self._m.ingest_accepted,
        )
        yield labelled_counter(
            "hub_ingest_rejected", "External requests rejected, by code.", "code",
            self._m.ingest_rejected,
        )  # fmt: skip
        yield from _location_metrics(self._m.locations)
        if hub.sms is not None:
            yield from sms_metrics(hub.sms.counters)
        yield from _media_metrics(hub)
        adapters = GaugeMetricFamily(
            "hub_adapter_ready", "1 while an adapter is connected.", labels=["adapter"]
        )
        for adapter in hub.adapters:
            adapters.add_metric([adapter.name], int(adapter.ready))
        yield adapters


def _location_metrics(c: LocationCounters) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    yield CounterMetricFamily(
        "hub_positions_stored", "Grid workers' positions stored.", value=c.stored
    )
    yield CounterMetricFamily(
        "hub_positions_duplicate",
        "Positions not stored again (same worker and fix time).",
        value=c.duplicates,
    )
    yield CounterMetricFamily(
        "hub_positions_pushed", "Live worker.position pushes (coalesced).", value=c.pushed
    )
    yield CounterMetricFamily(
        "hub_worker_events",
        "Boundary and online/offline events raised for grid workers.",
        value=c.events,
    )
    yield labelled_counter(
        "hub_phone_messages_refused", "Grid-phone messages refused, by reason.", "reason",
        c.rejected_by_reason,
    )  # fmt: skip


def _media_metrics(hub: Hub) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Camera live view and consultation rooms: what was relayed, decoded and encoded."""
    from hub.consultations.media import ConsultationMedia

    gauges: list[tuple[str, str, float]] = []
    counters: list[tuple[str, str, float]] = []
    if hub.streams is not None:
        c = hub.streams.counters
        gauges += [
            ("hub_camera_pulls", "Cameras being pulled now.", hub.streams.pulls_running),
            ("hub_camera_viewers_open", "Open WHEP live-view connections.",
             c.peer_connections_open),
        ]  # fmt: skip
        counters += [
            ("hub_camera_frames_decoded", "Camera frames decoded (transcoding, snapshots).",
             c.frames_decoded),
            ("hub_camera_frames_encoded", "Camera frames encoded (transcoding).",
             c.frames_encoded),
        ]  # fmt: skip
    media = hub.consultation_media
    if isinstance(media, ConsultationMedia):
        r = media.counters
        gauges += [
            ("hub_rooms_media", "Rooms with media now.", len(media.rooms)),
            ("hub_room_peer_connections", "Open participant connections.",
             r.peer_connections_open),
        ]  # fmt: skip
        counters += [
            ("hub_room_frames_received", "Encoded frames received from participants and cameras.",
             r.frames_received),
            ("hub_room_frames_forwarded", "Encoded frames forwarded to participants.",
             r.frames_forwarded),
            ("hub_room_frames_decoded", "Frames decoded on the room relay (transcoding fallback).",
             r.frames_decoded),
            ("hub_room_frames_encoded", "Frames encoded on the room relay (transcoding fallback).",
             r.frames_encoded),
            ("hub_room_transcoded_sources", "Room sources that had to be transcoded.",
             r.transcoded_sources),
            ("hub_room_keyframe_requests", "Keyframe requests (PLI) sent to participants.",
             r.keyframe_requests),
        ]  # fmt: skip
    for name, text, value in gauges:
        yield GaugeMetricFamily(name, text, value=value)
    for name, text, value in counters:
        yield CounterMetricFamily(name, text, value=value)
