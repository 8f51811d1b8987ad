"""Prometheus counts of the GB/T 28181 adapter and its media: registrations, keepalives,
INVITEs, media timeouts, SSRC mismatches and refused traffic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.metric_families import labelled_counter
from streams.ps_pull import PsCounters

if TYPE_CHECKING:
    from adapters.gb28181.adapter import Gb28181Adapter


class Gb28181Collector(Collector):
    """Reads the adapter's and the PS pulls' counters at scrape time."""

    def __init__(self, adapter: Gb28181Adapter, media: PsCounters) -> None:
        self.adapter = adapter
        self.media = media

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        a = self.adapter.counters
        t = self.adapter.transport.counters
        m = self.media
        yield GaugeMetricFamily(
            "hub_gb28181_devices", "Registered GB/T 28181 devices.", value=len(self.adapter.devices)
        )
        yield GaugeMetricFamily(
            "hub_gb28181_devices_online", "Registered devices online now.",
            value=self.adapter.devices.online,
        )  # fmt: skip
        yield labelled_counter(
            "hub_gb28181_registrations", "REGISTER requests by outcome.", "outcome",
            a.registrations,
        )  # fmt: skip
        yield CounterMetricFamily(
            "hub_gb28181_keepalives", "Keepalives received.", value=a.keepalives
        )
        yield labelled_counter("hub_gb28181_messages", "MANSCDP messages by CmdType.", "cmd_type",
                               a.messages)  # fmt: skip
        yield labelled_counter("hub_gb28181_invites", "Live-view INVITEs by outcome.", "outcome",
                               a.invites)  # fmt: skip
        yield labelled_counter("hub_gb28181_catalog_syncs", "Catalog syncs by outcome.", "outcome",
                               a.catalog_syncs)  # fmt: skip
        rejected = {**a.rejected, **{f"sip_{k}": v for k, v in t.rejected.items()}}
        rejected["media_malformed"] = m.malformed
        rejected["media_wrong_source"] = m.wrong_source
        yield labelled_counter(
            "hub_gb28181_rejected", "Refused traffic (parser rejections, unknown devices, …).",
            "reason", rejected,
        )  # fmt: skip
        counters = [
            ("hub_gb28181_sip_received", "SIP messages received.", t.received),
            ("hub_gb28181_sip_sent", "SIP messages sent.", t.sent),
            ("hub_gb28181_sip_retransmissions_answered",
             "Retransmitted requests answered from the transaction (not handled again).",
             t.retransmissions_answered),
            ("hub_gb28181_alarms", "Alarm notifications received.", a.alarms),
            ("hub_gb28181_ptz_commands", "PTZ commands sent.", a.ptz_commands),
            ("hub_gb28181_supervision_stalls",
             "Supervision sweeps that found the hub stalled (device deadlines moved by it).",
             a.supervision_stalls),
            ("hub_gb28181_media_sessions", "Live media sessions started.", m.sessions),
            ("hub_gb28181_media_packets", "RTP packets of live media accepted.", m.packets),
            ("hub_gb28181_media_access_units", "Video access units demuxed from PS.",
             m.access_units),
            ("hub_gb28181_media_timeouts", "Streams with no media after the INVITE (收流超时).",
             m.media_timeouts),
            ("hub_gb28181_ssrc_mismatches", "RTP packets dropped for a wrong SSRC.",
             m.ssrc_mismatches),
            ("hub_gb28181_media_lost", "RTP packets lost (sequence gaps).", m.lost),
        ]  # fmt: skip
        for name, text, value in counters:
            yield CounterMetricFamily(name, text, value=value)
