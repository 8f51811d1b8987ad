"""Fan-out benchmark: Grid Hub against python-socketio and a bare aiohttp loop.

For each server kind and each N: start the server alone in a subprocess on loopback,
connect N WebSocket subscribers to one channel from K lightweight client processes, check
every one is subscribed, read the idle RSS, then publish M messages at full speed from a
separate publisher process and wait until every subscriber has all M (or report the
shortfall). Printed per run: deliveries/s, deliveries per server CPU-second, p50/p99
publish-to-receive latency and RSS per idle connection; then hub/peer ratios and the
acceptance targets. A separate step holds 10,000 idle hub connections and probes them.

Usage::

    python -m tests.bench.fanout                   # full run (N=1000,5000; hold 10,000)
    python -m tests.bench.fanout --quick           # smoke run: N=200, M=50, no hold
    python -m tests.bench.fanout --only bare,socketio --clients 5000 --messages 200

Results are also written to ``tests/bench/results/fanout-<timestamp>.json``; server logs
go to ``tests/bench/results/logs/fanout-<timestamp>/``.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from tests.bench.machine import busy_processes
from tests.bench.options import parse_args
from tests.bench.procutil import raise_nofile_limit
from tests.bench.report import RunResult, format_summary, write_json
from tests.bench.scenario import run_scenario, say
from tests.bench.servers import hub_available

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so every ``finally`` runs and no child is orphaned."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 0 when every run completed (targets aside)."""
    opts = parse_args(argv)
    nofile = raise_nofile_limit()
    kinds = list(opts.kinds)
    hold_kinds = [k for k in opts.hold_kinds if opts.hold_clients]
    if "hub" in kinds or "hub" in hold_kinds:
        reason = hub_available()
        if reason:
            say(f"skipping hub: {reason}")
            kinds = [k for k in kinds if k != "hub"]
            hold_kinds = [k for k in hold_kinds if k != "hub"]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = opts.output or RESULTS_DIR / f"fanout-{stamp}.json"
    log_dir = RESULTS_DIR / "logs" / f"fanout-{stamp}"
    say(
        f"fan-out benchmark: servers {', '.join(kinds) or '-'}; N {list(opts.clients)}; "
        f"M {opts.messages}; {opts.processes} client processes; peers on {opts.peer_loop}, "
        f"clients on {opts.client_loop}; "
        f"{os.cpu_count()} CPUs; open files {nofile}"
    )
    machine_percent, busy = busy_processes()
    if busy:
        say(
            f"warning: the machine is {machine_percent:.0f}% busy before starting, figures "
            "will be noisy; busy: " + "; ".join(busy)
        )
    runs: list[RunResult] = []
    holds: list[RunResult] = []
    started = time.monotonic()
    interrupted = False
    try:
        with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
            workdir = Path(tmp)
            for clients in opts.clients:
                for kind in [k for _ in range(opts.repeat) for k in kinds]:
                    runs.append(
                        run_scenario(kind, clients, opts.messages[clients], opts, workdir, log_dir)
                    )
            for kind in hold_kinds:
                holds.append(
                    run_scenario(
                        kind,
                        opts.hold_clients,
                        1,
                        opts,
                        workdir,
                        log_dir,
                        hold_seconds=opts.hold_seconds,
                    )
                )
    except (KeyboardInterrupt, SystemExit):
        # Every process is stopped by now (finally blocks); keep what was measured.
        interrupted = True
        say("interrupted: reporting the runs completed so far")
    say(format_summary(runs, holds))
    meta = {
        "benchmark": "fanout",
        "started": stamp,
        "duration_seconds": time.monotonic() - started,
        "interrupted": interrupted,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpu_percent_at_start": machine_percent,
            "busy_processes_at_start": busy,
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
    }
    write_json(output, meta, runs, holds)
    say(f"\nresults: {output} ({math.ceil(time.monotonic() - started)}s)")
    if interrupted:
        return 130
    return 0 if all(r.complete for r in [*runs, *holds]) else 1


if __name__ == "__main__":
    sys.exit(main())
