"""Prometheus counts of the city-management adapter: requests in, updates out, the queue."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from adapters.citymgmt.models import DELIVERY_STATES
from hub.metric_families import count, labelled_counter


class CitymgmtCounters:
    """Plain integers bumped on the hot path, read at scrape time."""

    def __init__(self) -> None:
        self.requests_by_outcome: dict[str, int] = {}
        self.updates_by_outcome: dict[str, int] = {}
        self.rejected_by_code: dict[str, int] = {}
        self.attempts_failed_by_reason: dict[str, int] = {}
        self.polls_by_result: dict[str, int] = {}
        self.races = 0
        self.delivered = 0
        self.dead = 0
        self.reclaimed = 0
        self.queue: dict[str, int] = dict.fromkeys(DELIVERY_STATES, 0)

    _bump = staticmethod(count)

    def request(self, outcome: str) -> None:
        """Count an applied request by outcome (created, updated, unchanged, stale …)."""
        self._bump(self.requests_by_outcome, outcome)

    def update(self, outcome: str) -> None:
        """Count one of their polled request updates by outcome."""
        self._bump(self.updates_by_outcome, outcome)

    def rejected(self, code: str) -> None:
        """Count a refused webhook or feed request by error code."""
        self._bump(self.rejected_by_code, code)

    def attempt_failed(self, reason: str) -> None:
        """Count a failed delivery attempt by reason (http_503, timeout, connect …)."""
        self._bump(self.attempts_failed_by_reason, reason)

    def poll(self, result: str) -> None:
        """Count a poll of one of their feeds by result (ok, failed)."""
        self._bump(self.polls_by_result, result)


class CitymgmtCollector(Collector):
    """Exports :class:`CitymgmtCounters`."""

    def __init__(self, counters: CitymgmtCounters) -> None:
        self._c = counters

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The families, sampled now."""
        c = self._c
        yield labelled_counter(
            "hub_citymgmt_requests", "City-management requests applied, by outcome.", "outcome",
            c.requests_by_outcome,
        )  # fmt: skip
        yield labelled_counter(
            "hub_citymgmt_updates_in", "Their polled request updates, by outcome.", "outcome",
            c.updates_by_outcome,
        )  # fmt: skip
        yield labelled_counter(
            "hub_citymgmt_rejected", "City-management requests refused, by code.", "code",
            c.rejected_by_code,
        )  # fmt: skip
        yield labelled_counter(
            "hub_citymgmt_attempts_failed", "Failed delivery attempts, by reason.", "reason",
            c.attempts_failed_by_reason,
        )  # fmt: skip
        yield labelled_counter(
            "hub_citymgmt_polls", "Polls of their feeds, by result.", "result", c.polls_by_result
        )
        yield CounterMetricFamily(
            "hub_citymgmt_delivered", "Status updates acknowledged by them.", value=c.delivered
        )
        yield CounterMetricFamily(
            "hub_citymgmt_dead_lettered", "Status updates given up on.", value=c.dead
        )
        yield CounterMetricFamily(
            "hub_citymgmt_reclaimed",
            "Deliveries sent again after an unfinished attempt (lease expired).",
            value=c.reclaimed,
        )
        yield CounterMetricFamily(
            "hub_citymgmt_create_races",
            "Concurrent pushes of one new request resolved to the existing case.",
            value=c.races,
        )
        queue = GaugeMetricFamily(
            "hub_citymgmt_deliveries", "Delivery rows by state.", labels=["state"]
        )
        for state, rows in sorted(c.queue.items()):
            queue.add_metric([state], rows)
        yield queue
