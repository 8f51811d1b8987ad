"""Prometheus counts of the video network cascade: registration state, keepalives, catalog
messages, INVITEs by outcome, cascaded streams and what they sent, alarms, refused traffic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.metric_families import labelled_counter

if TYPE_CHECKING:
    from adapters.videonet.cascade import CascadeAdapter


class CascadeCollector(Collector):
    """Reads the cascade's counters at scrape time."""

    def __init__(self, adapter: CascadeAdapter) -> None:
        self.adapter = adapter

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        adapter = self.adapter
        c = adapter.counters
        p = adapter.push_counters
        yield GaugeMetricFamily(
            "hub_videonet_cascade_registered", "1 while registered to the upper platform.",
            value=1 if adapter.registered else 0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "hub_videonet_cascade_streams", "Cascaded live streams now.", value=p.streams_open
        )
        yield labelled_counter("hub_videonet_cascade_invites", "INVITEs from above by outcome.",
                               "outcome", c.invites)  # fmt: skip
        rejected = {
            **c.rejected,
            **{f"sip_{k}": v for k, v in adapter.transport.counters.rejected.items()},
        }
        yield labelled_counter("hub_videonet_cascade_rejected", "Refused requests by reason.",
                               "reason", rejected)  # fmt: skip
        counters = [
            ("hub_videonet_cascade_registrations", "Successful registrations.", c.registrations),
            ("hub_videonet_cascade_registration_failures", "Failed registrations.",
             c.registration_failures),
            ("hub_videonet_cascade_keepalives", "Keepalives answered.", c.keepalives),
            ("hub_videonet_cascade_keepalive_failures", "Keepalives unanswered.",
             c.keepalive_failures),
            ("hub_videonet_cascade_catalog_queries", "Catalog queries answered.",
             c.catalog_queries),
            ("hub_videonet_cascade_catalog_messages", "Catalog Response messages sent.",
             c.catalog_messages),
            ("hub_videonet_cascade_ptz_commands", "PTZ commands forwarded.", c.ptz_commands),
            ("hub_videonet_cascade_alarms", "Alarm notifications sent upward.", c.alarms_sent),
            ("hub_videonet_cascade_ps_frames", "Access units remuxed to PS.", p.frames_sent),
            ("hub_videonet_cascade_rtp_packets", "RTP packets of cascaded streams.",
             p.packets_sent),
            ("hub_videonet_cascade_bytes", "Bytes of cascaded streams.", p.bytes_sent),
        ]  # fmt: skip
        for name, text, value in counters:
            yield CounterMetricFamily(name, text, value=value)
