"""Results of the fan-out benchmark: the printed table, the hub/peer ratios, the targets."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Acceptance targets (issue wording): hub vs peers in deliveries per server CPU-second,
# idle RSS per connection, and connections held.
TARGET_VS_SOCKETIO = 5.0
TARGET_VS_BARE = 1.0
TARGET_RSS_KIB = 30.0
KIB = 1024


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``nan`` when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class RunResult:
    """One server kind at one client count: connection, delivery and resource figures."""

    server: str
    clients: int
    messages: int
    subscribed: int = 0
    connect_seconds: float = 0.0
    connect_errors: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    frames: int = 0
    expected: int = 0
    min_per_client: int = 0
    open_after: int = 0
    wall_seconds: float = math.nan
    server_cpu_user: float = math.nan
    server_cpu_system: float = math.nan
    client_cpu_user: float = math.nan
    client_cpu_system: float = math.nan
    latency_samples: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    rss_before: int = 0
    rss_loaded: int = 0
    publisher_errors: list[str] = field(default_factory=list)
    hold_seconds: float = 0.0
    pongs: int = 0
    idle_machine_cpu_percent: float = math.nan
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def server_cpu_seconds(self) -> float:
        """User + system CPU seconds of the server from first publication to last delivery."""
        return self.server_cpu_user + self.server_cpu_system

    @property
    def client_cpu_seconds(self) -> float:
        """User + system CPU seconds of all client processes over the same span."""
        return self.client_cpu_user + self.client_cpu_system

    @property
    def deliveries_per_frame(self) -> float:
        """Publications per WebSocket message received (above 1 when the server batches)."""
        return self.delivered / self.frames if self.frames else math.nan

    @property
    def deliveries_per_second(self) -> float:
        """Deliveries over the wall time from first publication to last delivery."""
        return self.delivered / self.wall_seconds if self.wall_seconds > 0 else math.nan

    @property
    def deliveries_per_cpu_second(self) -> float:
        """Deliveries per CPU-second (user + system) of the server process."""
        cpu = self.server_cpu_seconds
        return self.delivered / cpu if cpu > 0 else math.nan

    @property
    def rss_kib_per_connection(self) -> float:
        """Idle RSS growth per subscribed connection, in KiB."""
        if not self.subscribed:
            return math.nan
        return (self.rss_loaded - self.rss_before) / self.subscribed / KIB

    @property
    def complete(self) -> bool:
        """Every client subscribed and received every publication."""
        return (
            self.error is None
            and self.subscribed == self.clients
            and self.delivered == self.clients * self.messages
            and self.min_per_client == self.messages
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict including the derived figures."""
        data = asdict(self)
        data.update(
            server_cpu_seconds=self.server_cpu_seconds,
            client_cpu_seconds=self.client_cpu_seconds,
            deliveries_per_frame=self.deliveries_per_frame,
            deliveries_per_second=self.deliveries_per_second,
            deliveries_per_cpu_second=self.deliveries_per_cpu_second,
            rss_kib_per_connection=self.rss_kib_per_connection,
            complete=self.complete,
        )
        return {key: _finite(value) for key, value in data.items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(value: float, digits: int = 0) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    rows = [list(row) for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        # Text at both ends left-aligned, figures in between right-aligned.
        last = len(cells) - 1
        padded = (
            cell.ljust(width) if i in (0, last) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]


def format_runs(runs: Sequence[RunResult]) -> list[str]:
    """The main table, one row per run."""
    header = (
        "server", "N", "M", "delivered", "deliveries/s", "deliveries/CPU-s",
        "p50 ms", "p99 ms", "RSS KiB/conn", "server CPU-s", "client CPU-s", "status",
    )  # fmt: skip
    rows = []
    for run in runs:
        status = "ok" if run.complete else (run.error or _shortfall(run))
        rows.append(
            (
                run.server,
                str(run.clients),
                str(run.messages),
                f"{run.delivered:,}",
                _num(run.deliveries_per_second),
                _num(run.deliveries_per_cpu_second),
                _num(run.p50_ms, 1),
                _num(run.p99_ms, 1),
                _num(run.rss_kib_per_connection, 1),
                _num(run.server_cpu_seconds, 2),
                _num(run.client_cpu_seconds, 2),
                status[:60],
            )
        )
    return _table(header, rows)


def _shortfall(run: RunResult) -> str:
    parts = []
    if run.subscribed < run.clients:
        parts.append(f"{run.clients - run.subscribed} not subscribed")
    if run.delivered < run.subscribed * run.messages:
        parts.append(f"{run.subscribed * run.messages - run.delivered:,} deliveries missing")
    if run.min_per_client < run.messages:
        parts.append(f"min/client {run.min_per_client}")
    return "; ".join(parts) or "incomplete"


def format_holds(holds: Sequence[RunResult]) -> list[str]:
    """The connection-hold table."""
    header = ("server", "connections", "subscribed", "held s", "pings answered", "open after",
              "got probe", "RSS KiB/conn", "status")  # fmt: skip
    rows = [
        (
            hold.server,
            str(hold.clients),
            str(hold.subscribed),
            _num(hold.hold_seconds),
            f"{hold.pongs:,}",
            str(hold.open_after),
            f"{hold.delivered:,}",
            _num(hold.rss_kib_per_connection, 1),
            ("ok" if hold.complete else (hold.error or _shortfall(hold)))[:60],
        )
        for hold in holds
    ]
    return _table(header, rows)


@dataclass
class Verdict:
    """One acceptance target and whether this run met it."""

    target: str
    value: float
    passed: bool

    def line(self) -> str:
        """A printable line."""
        mark = "PASS" if self.passed else "FAIL"
        return f"  [{mark}] {self.target}: {_num(self.value, 2)}"


def _median(values: Iterable[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return statistics.median(finite) if finite else math.nan


def ratios(runs: Sequence[RunResult]) -> list[dict[str, Any]]:
    """hub/peer ratios of deliveries per server CPU-second (and per second) at each N.

    With repeated runs, each side is the median of its runs.
    """
    groups: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
    for run in runs:
        groups[(run.server, run.clients)].append(run)

    def median(key: tuple[str, int], metric: str) -> float:
        return _median(getattr(run, metric) for run in groups[key])

    out = []
    for server, clients in sorted(groups):
        if server != "hub":
            continue
        for peer in ("bare", "socketio"):
            if (peer, clients) not in groups:
                continue
            hub_key, peer_key = (server, clients), (peer, clients)
            out.append(
                {
                    "peer": peer,
                    "clients": clients,
                    "runs": min(len(groups[hub_key]), len(groups[peer_key])),
                    "cpu_ratio": median(hub_key, "deliveries_per_cpu_second")
                    / median(peer_key, "deliveries_per_cpu_second"),
                    "rate_ratio": median(hub_key, "deliveries_per_second")
                    / median(peer_key, "deliveries_per_second"),
                }
            )
    return out


def verdicts(runs: Sequence[RunResult], holds: Sequence[RunResult]) -> list[Verdict]:
    """The acceptance targets that this run's results can decide."""
    out = []
    for ratio in ratios(runs):
        goal = TARGET_VS_SOCKETIO if ratio["peer"] == "socketio" else TARGET_VS_BARE
        out.append(
            Verdict(
                f"hub/{ratio['peer']} deliveries per CPU-s at N={ratio['clients']} ≥ {goal}×",
                ratio["cpu_ratio"],
                ratio["cpu_ratio"] >= goal,
            )
        )
    for run in [*runs, *holds]:
        if run.server == "hub" and run.subscribed:
            kib = run.rss_kib_per_connection
            out.append(
                Verdict(
                    f"hub RSS per idle connection at N={run.clients} ≤ {TARGET_RSS_KIB:g} KiB",
                    kib,
                    kib <= TARGET_RSS_KIB,
                )
            )
    for hold in holds:
        out.append(
            Verdict(
                f"{hold.server} holds {hold.clients:,} connections (all open after "
                f"{hold.hold_seconds:.0f}s and all got the probe)",
                float(hold.open_after),
                hold.complete and hold.open_after == hold.clients,
            )
        )
    return out


def format_summary(runs: Sequence[RunResult], holds: Sequence[RunResult]) -> str:
    """Everything printed at the end of a run."""
    lines = ["", "Fan-out (one channel, N subscribers, M publications):", *format_runs(runs)]
    if holds:
        lines += ["", "Connection hold (idle, then one probe publication):", *format_holds(holds)]
    ratio_rows = ratios(runs)
    if ratio_rows:
        lines += ["", "Ratios hub/peer:"]
        for ratio in ratio_rows:
            lines.append(
                f"  hub/{ratio['peer']:<8} N={ratio['clients']:<6} deliveries/CPU-s "
                f"{_num(ratio['cpu_ratio'], 2)}×   deliveries/s {_num(ratio['rate_ratio'], 2)}×"
                + (f"   (medians of {ratio['runs']} runs)" if ratio["runs"] > 1 else "")
            )
    checks = verdicts(runs, holds)
    if checks:
        lines += ["", "Targets:", *(check.line() for check in checks)]
    return "\n".join(lines)


def write_json(
    path: Path, meta: dict[str, Any], runs: Sequence[RunResult], holds: Sequence[RunResult]
) -> None:
    """Write the results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **meta,
        "runs": [run.to_json() for run in runs],
        "holds": [hold.to_json() for hold in holds],
        "ratios": [{k: _finite(v) for k, v in row.items()} for row in ratios(runs)],
        "targets": [
            {"target": v.target, "value": _finite(v.value), "passed": v.passed}
            for v in verdicts(runs, holds)
        ],
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
