"""Counters of the SMS service and its providers, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from hub.metric_families import labelled_counter


class SmsCounters:
    """Plain integers bumped on the hot path; exported by :func:`sms_metrics`."""

    def __init__(self) -> None:
        self.enqueued = 0
        self.submitted = 0
        self.reclaimed = 0
        self.inbound = 0
        self.inbound_duplicates = 0
        self.submit_failures: dict[str, int] = {}
        self.final_states: dict[str, int] = {}
        self.receipts: dict[str, int] = {}
        self.rejected_by_reason: dict[str, int] = {}

    def submit_failed(self, kind: str) -> None:
        """Count a failed submission (temporary or permanent)."""
        self.submit_failures[kind] = self.submit_failures.get(kind, 0) + 1

    def final(self, state: str) -> None:
        """Count a message reaching a final state."""
        self.final_states[state] = self.final_states.get(state, 0) + 1

    def receipt(self, outcome: str) -> None:
        """Count a receipt by what became of it."""
        self.receipts[outcome] = self.receipts.get(outcome, 0) + 1

    def rejected(self, reason: str) -> None:
        """Count refused input from a gateway (garbage callback, malformed PDU) by reason."""
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1


def sms_metrics(c: SmsCounters) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The SMS metric families."""
    yield CounterMetricFamily("hub_sms_enqueued", "Outbound SMS queued.", value=c.enqueued)
    yield CounterMetricFamily(
        "hub_sms_submitted", "Outbound SMS accepted by the provider.", value=c.submitted
    )
    yield CounterMetricFamily(
        "hub_sms_reclaimed",
        "Outbound SMS sent again after an attempt that never recorded its outcome.",
        value=c.reclaimed,
    )
    yield labelled_counter(
        "hub_sms_submit_failures", "Failed submissions, by kind.", "kind", c.submit_failures
    )
    yield labelled_counter(
        "hub_sms_final", "Outbound SMS in a final state, by state.", "state", c.final_states
    )
    yield labelled_counter(
        "hub_sms_receipts", "Delivery receipts, by outcome.", "outcome", c.receipts
    )
    yield CounterMetricFamily("hub_sms_inbound", "Inbound SMS stored.", value=c.inbound)
    yield CounterMetricFamily(
        "hub_sms_inbound_duplicates", "Inbound SMS repeated by the gateway.",
        value=c.inbound_duplicates,
    )  # fmt: skip
    yield labelled_counter(
        "hub_sms_rejected",
        "Gateway input refused (garbage callbacks, malformed PDUs), by reason.",
        "reason",
        c.rejected_by_reason,
    )
