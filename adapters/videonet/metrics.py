"""Prometheus counts of the video network cascade: registration state, keepalives, catalog
messages, INVITEs by outcome, cascaded streams and what they sent, alarms, refused traffic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.metric_families import labelled_counter
from streams.sip_transport import SipTransport

if TYPE_CHECKING:
    from adapters.videonet.calls import CallAdapter
    from adapters.videonet.cascade import CascadeAdapter


def _with_sip(rejected: dict[str, int], transport: SipTransport) -> dict[str, int]:
    """An adapter's refusals with its SIP socket's (``sip_`` prefixed)."""
    return {**rejected, **{f"sip_{k}": v for k, v in transport.counters.rejected.items()}}


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
        rejected = _with_sip(c.rejected, adapter.transport)
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


class CallCollector(Collector):
    """Reads the calls' and their media legs' counters at scrape time."""

    def __init__(self, adapter: CallAdapter) -> None:
        self.adapter = adapter

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        adapter = self.adapter
        c = adapter.counters
        legs = adapter.leg_counters
        yield GaugeMetricFamily(
            "hub_videonet_calls", "Terminal calls up now.", value=len(adapter.calls)
        )
        yield labelled_counter("hub_videonet_call_attempts", "Calls by direction and outcome.",
                               "outcome", c.calls)  # fmt: skip
        yield labelled_counter("hub_videonet_calls_ended", "Calls ended, by reason.", "reason",
                               c.ended)  # fmt: skip
        rejected = _with_sip(c.rejected, adapter.transport)
        yield labelled_counter("hub_videonet_call_rejected", "Refused requests by reason.",
                               "reason", rejected)  # fmt: skip
        counters = [
            ("hub_videonet_gateway_lost", "Times the SIP gateway stopped answering.",
             c.gateway_lost),
            ("hub_videonet_video_frames_in", "Terminal video frames into rooms.",
             legs.video_frames_in),
            ("hub_videonet_video_frames_out", "Room video frames sent to terminals.",
             legs.video_frames_out),
            ("hub_videonet_video_frames_decoded", "Video frames decoded for terminals (0: none"
             " is re-encoded).", legs.video_frames_decoded),
            ("hub_videonet_video_frames_encoded", "Video frames encoded for terminals.",
             legs.video_frames_encoded),
            ("hub_videonet_audio_frames_decoded", "Audio frames decoded (mix, G.711 in).",
             legs.audio_frames_decoded),
            ("hub_videonet_audio_frames_encoded", "Audio frames encoded (mix, Opus for rooms).",
             legs.audio_frames_encoded),
            ("hub_videonet_keyframe_requests_sent", "Keyframe requests sent to terminals.",
             legs.keyframe_requests_sent),
            ("hub_videonet_keyframe_requests_received", "Keyframe requests from terminals.",
             legs.keyframe_requests_received),
            ("hub_videonet_rtp_timeouts", "Calls dropped for lack of RTP.", legs.rtp_timeouts),
        ]  # fmt: skip
        for name, text, value in counters:
            yield CounterMetricFamily(name, text, value=value)
