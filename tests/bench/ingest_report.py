"""Results of the ingest benchmark: the printed table, the hub/bare ratios, the targets."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.report import Verdict, _finite, _num, _table

# Acceptance targets (issue wording): end-to-end pings per second on each database, and
# the share of a bare paho subscriber's drain rate.
TARGET_PINGS_PER_SECOND = 20_000.0
TARGET_VS_BARE = 0.6
BARE = "bare paho"


@dataclass
class IngestRun:
    """One backend (hub on a database, or the bare subscriber) draining K × M pings."""

    backend: str
    phones: int
    pings_per_phone: int
    received: int = 0
    """Stored by the hub (or counted by the bare subscriber) in the timed round."""
    rows: int = -1
    """Rows in ``positions`` after the run, warm-up included (-1: not a hub run)."""
    distinct_rows: int = -1
    duplicates: int = 0
    refused: int = 0
    wall_seconds: float = math.nan
    """First publication to the last ping stored (or received, for the bare subscriber)."""
    publish_seconds: float = math.nan
    """First publication to the last one written by the phones."""
    phone_cpu_seconds: float = math.nan
    cpu_seconds: float = math.nan
    """User + system CPU seconds of the hub (or bare) process over ``wall_seconds``."""
    pushed: int = 0
    """Live pushes the hub counted during the timed round, trailing ones included."""
    pushes_received: int = 0
    """Of them, ``worker.position`` publications the WebSocket subscriber received."""
    push_seconds: float = math.nan
    """First publication to the last push received."""
    latest_pushed: int = 0
    """Workers whose newest pushed position is their last ping."""
    publisher_errors: list[str] = field(default_factory=list)
    idle_machine_cpu_percent: float = math.nan
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_hub(self) -> bool:
        """A hub run (as opposed to the bare subscriber)."""
        return self.backend != BARE

    @property
    def expected(self) -> int:
        """Pings in the timed round."""
        return self.phones * self.pings_per_phone

    @property
    def pings_per_second(self) -> float:
        """Pings over the wall time from first publication to last stored (received)."""
        return self.received / self.wall_seconds if self.wall_seconds > 0 else math.nan

    @property
    def pings_per_cpu_second(self) -> float:
        """Pings per CPU-second of the hub (bare) process."""
        return self.received / self.cpu_seconds if self.cpu_seconds > 0 else math.nan

    @property
    def publish_rate(self) -> float:
        """How fast the phones got their pings out (an upper bound on every drain rate)."""
        return self.expected / self.publish_seconds if self.publish_seconds > 0 else math.nan

    @property
    def pushes_per_second(self) -> float:
        """Live pushes received per second, first publication to last push."""
        if not self.push_seconds > 0:
            return math.nan
        return self.pushes_received / self.push_seconds

    @property
    def stored_once(self) -> bool:
        """Every ping of the run stored exactly once (warm-up included), none refused."""
        if not self.is_hub:
            return self.error is None and self.received == self.expected
        warm = self.phones  # one warm-up ping per phone
        return (
            self.error is None
            and self.received == self.expected
            and self.rows == self.expected + warm
            and self.distinct_rows == self.rows
            and self.duplicates == 0
            and self.refused == 0
        )

    @property
    def pushes_complete(self) -> bool:
        """The subscriber got every push the hub counted, and each worker's last position."""
        return self.pushes_received == self.pushed and self.latest_pushed == self.phones

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict including the derived figures."""
        data = asdict(self)
        data.update(
            pings_per_second=self.pings_per_second,
            pings_per_cpu_second=self.pings_per_cpu_second,
            publish_rate=self.publish_rate,
            pushes_per_second=self.pushes_per_second,
            stored_once=self.stored_once,
            pushes_complete=self.pushes_complete if self.is_hub else None,
        )
        return {key: _finite(value) for key, value in data.items()}


def _median(values: Iterable[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return statistics.median(finite) if finite else math.nan


def medians(runs: Sequence[IngestRun]) -> dict[str, dict[str, float]]:
    """Per backend: median pings/s and pings per CPU-second over its completed runs."""
    groups: dict[str, list[IngestRun]] = defaultdict(list)
    for run in runs:
        if run.error is None:
            groups[run.backend].append(run)
    return {
        backend: {
            "runs": len(group),
            "pings_per_second": _median(r.pings_per_second for r in group),
            "pings_per_cpu_second": _median(r.pings_per_cpu_second for r in group),
        }
        for backend, group in groups.items()
    }


def ratios(runs: Sequence[IngestRun]) -> list[dict[str, Any]]:
    """hub/bare ratios of pings per second (the target) and per CPU-second, per backend."""
    table = medians(runs)
    bare = table.get(BARE)
    if bare is None:
        return []
    return [
        {
            "backend": backend,
            "runs": min(int(row["runs"]), int(bare["runs"])),
            "rate_ratio": row["pings_per_second"] / bare["pings_per_second"],
            "cpu_ratio": row["pings_per_cpu_second"] / bare["pings_per_cpu_second"],
        }
        for backend, row in table.items()
        if backend != BARE
    ]


def format_runs(runs: Sequence[IngestRun]) -> list[str]:
    """The main table, one row per run."""
    bare = medians(runs).get(BARE, {}).get("pings_per_second", math.nan)
    header = (
        "backend", "pings", "seconds", "pings/s", "× bare", "CPU-s", "pings/CPU-s",
        "phones' pub/s", "pushes", "pushes/s", "stored once", "status",
    )  # fmt: skip
    rows = []
    for run in runs:
        rate = run.pings_per_second
        pushes = f"{run.pushes_received:,}/{run.pushed:,}" if run.is_hub else "-"
        rows.append(
            (
                run.backend,
                f"{run.received:,}",
                _num(run.wall_seconds, 2),
                _num(rate),
                _num(rate / bare, 2) if run.is_hub else "1.00",
                _num(run.cpu_seconds, 2),
                _num(run.pings_per_cpu_second),
                _num(run.publish_rate),
                pushes,
                _num(run.pushes_per_second) if run.is_hub else "-",
                "yes" if run.stored_once else "NO",
                _status(run)[:70],
            )
        )
    return _table(header, rows)


def _status(run: IngestRun) -> str:
    if run.error:
        return run.error
    parts = []
    if run.received < run.expected:
        parts.append(f"{run.expected - run.received:,} missing")
    if run.is_hub:
        if run.rows >= 0 and run.rows != run.expected + run.phones:
            parts.append(f"{run.rows:,} rows")
        if run.duplicates:
            parts.append(f"{run.duplicates:,} duplicates")
        if run.refused:
            parts.append(f"{run.refused:,} refused")
        if run.latest_pushed < run.phones:
            parts.append(f"last position pushed for {run.latest_pushed}/{run.phones}")
        if run.pushes_received != run.pushed:
            parts.append("pushes lost")
    parts.extend(run.notes)
    parts.extend(run.publisher_errors[:1])
    return "; ".join(parts) or "ok"


def verdicts(runs: Sequence[IngestRun]) -> list[Verdict]:
    """The acceptance targets this run's results can decide."""
    out = []
    for backend, row in medians(runs).items():
        if backend == BARE:
            continue
        rate = row["pings_per_second"]
        out.append(
            Verdict(
                f"{backend} pings/s end to end ≥ {TARGET_PINGS_PER_SECOND:,.0f}",
                rate,
                rate >= TARGET_PINGS_PER_SECOND,
            )
        )
    for ratio in ratios(runs):
        out.append(
            Verdict(
                f"{ratio['backend']}/bare paho pings/s ≥ {TARGET_VS_BARE}×",
                ratio["rate_ratio"],
                ratio["rate_ratio"] >= TARGET_VS_BARE,
            )
        )
    for run in runs:
        if run.is_hub:
            out.append(
                Verdict(
                    f"{run.backend}: every ping stored exactly once ({run.expected:,} + "
                    f"{run.phones:,} warm-up)",
                    float(run.rows),
                    run.stored_once,
                )
            )
    return out


def format_summary(runs: Sequence[IngestRun], *, broker: str, publisher: str) -> str:
    """Everything printed at the end of a run."""
    first = runs[0] if runs else None
    shape = f"K={first.phones:,} phones × M={first.pings_per_phone} pings" if first else ""
    lines = [
        "",
        f"Ingest ({shape}, QoS 1, {publisher} phone clients, through {broker}):",
        *format_runs(runs),
        "",
        "seconds: first publication to the last ping stored (bare: received); pings/s over "
        "that span; CPU-s: the hub's (bare: the subscriber's) process over it; phones' pub/s: "
        "how fast the phones got their pings to the broker; pushes: worker.position "
        "publications received by a WebSocket subscriber of org:d01 / counted by the hub "
        "(coalesced to one per worker per second, trailing ones included).",
    ]
    ratio_rows = ratios(runs)
    if ratio_rows:
        lines += ["", "Ratios hub/bare paho:"]
        for ratio in ratio_rows:
            lines.append(
                f"  {ratio['backend']:<13} pings/s {_num(ratio['rate_ratio'], 2)}×   "
                f"pings/CPU-s {_num(ratio['cpu_ratio'], 2)}×"
                + (f"   (medians of {ratio['runs']} runs)" if ratio["runs"] > 1 else "")
            )
    checks = verdicts(runs)
    if checks:
        lines += ["", "Targets:", *(check.line() for check in checks)]
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], runs: Sequence[IngestRun]) -> None:
    """Write the results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **meta,
        "runs": [run.to_json() for run in runs],
        "ratios": [{k: _finite(v) for k, v in row.items()} for row in ratios(runs)],
        "targets": [
            {"target": v.target, "value": _finite(v.value), "passed": v.passed}
            for v in verdicts(runs)
        ],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
