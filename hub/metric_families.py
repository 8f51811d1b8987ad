"""Building blocks of the Prometheus exposition shared by the hub's collectors."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.core import CounterMetricFamily


def count(table: dict[str, int], key: str) -> None:
    """Add one to ``table[key]`` (the per-label tallies ``labelled_counter`` reports)."""
    table[key] = table.get(key, 0) + 1


def labelled_counter(
    name: str, doc: str, label: str, values: Mapping[str, int]
) -> CounterMetricFamily:
    """A counter family with one sample per key of ``values`` (sorted), labelled ``label``."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, count in sorted(values.items()):
        family.add_metric([key], count)
    return family
