"""GB/T 28181 benchmark: SIP keepalive throughput of the hub against sipp as the server, and
the hub's CPU for one live GB/T 28181 stream against the same clip over RTSP.

    python -m tests.bench.gb28181 [--quick] [--only keepalive|stream] [--devices 200]
                                  [--rates 1000,2000,3000,4000] [--seconds 5] [--window 20]

1. Keepalives: a ``hub serve`` subprocess with GB/T 28181 on (SQLite in a temporary
   directory, memory bus, ``keepalive_interval`` an hour, log level WARNING). K devices
   register with digest (GbDevice stand-ins over UDP; the hub syncs each one's catalog),
   then sipp's ``keepalive.xml`` sends ``rate × seconds`` keepalive MESSAGEs at each target
   rate (``-l 500`` outstanding), cycling through the K ids. Per rate: successful
   keepalives/s over sipp's elapsed time, failed calls, the server's CPU (user + system, %
   of one core) and CPU µs per keepalive. The peer is sipp itself as the UAS
   (``tests/support/sipp/keepalive_uas.xml``: 200 OK to every MESSAGE), driven by the same
   client scenario in the same run. Target: ≥ 2,000 keepalives/s sustained by the hub
   without a failure.
2. Live view: one hub with camera A (the 720p 25 fps H.264 clip of ``cameras.py`` served
   over RTSP by GStreamer) and camera B (the same clip sent as MPEG-PS over RTP, TCP
   passive, by a GbDevice stand-in in this process, keepalives every 5 s). One WHEP viewer
   (``camera_viewers.py``) on A, the hub's CPU over a window; then the same on B. Target:
   B/A ≤ 1.5×.

Prints the tables and verdicts; writes results/gb28181-<timestamp>.json, hub logs to
results/logs/. Needs sipp (``apt-get install sip-tester``) and GStreamer's RTSP server
(``bash .ci/ensure-media``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from tests.bench.cameras import FPS, HEIGHT, RESULTS, WIDTH, camera_clip
from tests.bench.gb28181_media import StreamRun, stream_runs
from tests.bench.gb28181_sip import (
    CONCURRENT_CALLS,
    SUSTAINED_FRACTION,
    RateRun,
    hub_rates,
    peer_rates,
)
from tests.bench.machine import busy_processes
from tests.bench.report import _num, _table
from tests.support.rtsp_server import require_gst_rtsp
from tests.support.sipp import SIPP, sipp_available

TARGET_RATE = 2000
TARGET_STREAM_RATIO = 1.5
LOG_PROBLEMS_SHOWN = 8


def cpu_us_per_message(run: RateRun) -> float:
    """Server CPU microseconds per successful keepalive."""
    if not run.successful or not math.isfinite(run.server_cpu_percent):
        return math.nan
    return run.server_cpu_percent / 100 * run.wall_seconds / run.successful * 1e6


def keepalive_table(hub: list[RateRun], peer: list[RateRun]) -> list[str]:
    """One row per target rate, hub and peer side by side, with the hub/peer ratios."""
    by_peer = {r.target_rate: r for r in peer}
    rows = []
    for h in hub:
        p = by_peer.get(h.target_rate)
        cells = [f"{h.target_rate:,}"]
        for run in (h, p):
            if run is None:
                cells += ["-", "-", "-", "-"]
                continue
            failed = str(run.failed) if run.error is None else f"{run.failed} (error)"
            cells += [_num(run.achieved), failed, _num(run.server_cpu_percent, 1),
                      _num(cpu_us_per_message(run), 1)]  # fmt: skip
        rate_ratio = h.achieved / p.achieved if p and p.achieved > 0 else math.nan
        cpu_ratio = cpu_us_per_message(h) / cpu_us_per_message(p) if p else math.nan
        cells += [_num(rate_ratio, 2) + "x", _num(cpu_ratio, 1) + "x"]
        rows.append(cells)
    header = ["target/s", "hub ok/s", "hub failed", "hub CPU %", "hub µs/msg",
              "sipp-uas ok/s", "uas failed", "uas CPU %", "uas µs/msg", "hub/uas rate",
              "hub/uas µs/msg"]  # fmt: skip
    return _table(header, rows)


def sustained(runs: list[RateRun]) -> int:
    """The highest target rate sustained (every lower one sustained too); 0 when none."""
    best = 0
    for run in sorted(runs, key=lambda r: r.target_rate):
        if not run.sustained:
            break
        best = run.target_rate
    return best


def keepalive_verdict(hub: list[RateRun], peer: list[RateRun]) -> list[str]:
    """The sustained rates, their ratio and the verdict on the target."""
    top = max((r.target_rate for r in hub), default=0)
    h, p = sustained(hub), sustained(peer)

    def shown(rate: int) -> str:
        return f"≥ {rate:,}/s (highest rate tried)" if rate == top else f"{rate:,}/s"

    ratio = f"{h / p:.2f}x" if p else "-"
    if h == p == top:
        ratio += " (both at the highest rate tried: a floor, not a ceiling)"
    lines = [
        f"sustained (no failure, ≥ {SUSTAINED_FRACTION:.0%} of the target through): "
        f"hub {shown(h) if h else 'none'}, sipp-uas {shown(p) if p else 'none'}; "
        f"hub/uas {ratio}"
    ]
    resent = [r for r in hub if r.sipp_retransmissions]
    if resent:
        lines.append(
            "hub runs where sipp had to retransmit (datagrams dropped or answered > 500 ms"
            " late): "
            + ", ".join(f"{r.target_rate:,}/s: {r.sipp_retransmissions} retrans, "
                        f"{r.udp_rcvbuf_errors} UDP rcvbuf drops" for r in resent)
        )  # fmt: skip
    at_target = next((r for r in hub if r.target_rate == TARGET_RATE), None)
    if at_target is None:
        lines.append(f"verdict: not measured ({TARGET_RATE:,}/s not in --rates)")
    else:
        met = at_target.sustained
        lines.append(
            f"verdict: hub sustains ≥ {TARGET_RATE:,} keepalives/s without failures: "
            f"{'MET' if met else 'NOT MET'} ({at_target.achieved:,.0f}/s ok, "
            f"{at_target.failed} failed at {TARGET_RATE:,}/s)"
        )
    return lines


def stream_table(runs: list[StreamRun]) -> list[str]:
    """One row per camera, then the ratio and the verdict."""
    rows = [
        [run.source, run.camera, _num(run.cpu_percent, 1), _num(run.rss_mib), _num(run.fps, 1),
         _num(run.bench_cpu_percent, 1), _num(run.machine_percent),
         ",".join(run.reported_paths) or "-", run.error or "ok"]
        for run in runs
    ]  # fmt: skip
    header = ["source", "camera", "hub CPU %", "hub RSS MiB", "viewer fps",
              "bench proc CPU %", "machine %", "media path", "status"]  # fmt: skip
    lines = _table(header, rows)
    by = {r.source: r for r in runs}
    a, b = by.get("rtsp"), by.get("gb")
    if a is None or b is None or a.error or b.error or not a.cpu_percent > 0:
        lines.append("verdict: not measured (a phase failed)")
        return lines
    ratio = b.cpu_percent / a.cpu_percent
    lines.append(f"hub CPU per live stream, GB/T 28181 / RTSP: {ratio:.2f}x")
    lines.append(
        f"verdict: GB/T 28181 stream ≤ {TARGET_STREAM_RATIO}x the RTSP stream's hub CPU: "
        f"{'MET' if ratio <= TARGET_STREAM_RATIO else 'NOT MET'} ({ratio:.2f}x)"
    )
    return lines


def log_problems(path: Path) -> list[str]:
    """Warnings and errors the hub logged (JSON lines), most frequent first."""
    if not path.exists():
        return []
    counts: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line or "Error" in line:
                counts[line.strip()[:160]] = counts.get(line.strip()[:160], 0) + 1
            continue
        if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
            text = f"{entry.get('level')}: {entry.get('event')}"
            counts[text] = counts.get(text, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return [f"{n}x {text}" for text, n in ranked[:LOG_PROBLEMS_SHOWN]]


def to_json(run: RateRun | StreamRun) -> dict[str, Any]:
    """A JSON-ready dict (NaN → null), with the derived keepalive figures."""
    data = asdict(run)
    if isinstance(run, RateRun):
        data.update(achieved=run.achieved, sustained=run.sustained,
                    cpu_us_per_message=cpu_us_per_message(run))  # fmt: skip
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in data.items()}  # fmt: skip


def preflight(only: str) -> str | None:
    """What is missing to run, or None."""
    if only in ("all", "keepalive") and not sipp_available():
        return f"sipp not found at {SIPP}: apt-get install sip-tester"
    if only in ("all", "stream"):
        try:
            require_gst_rtsp()
        except RuntimeError as err:
            return str(err)
    return None


async def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when every measured target is met."""
    problem = preflight(args.only)
    if problem:
        print(f"ERROR: {problem}")
        return 2
    rates = [int(r) for r in args.rates.split(",")]
    machine, busy = busy_processes()
    print(f"machine: {psutil.cpu_count()} CPUs, {machine:.0f}% busy before the run", flush=True)
    for line in busy:
        print(f"  busy: {line}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    started = time.monotonic()
    hub_runs: list[RateRun] = []
    peer_runs: list[RateRun] = []
    streams: list[StreamRun] = []
    report: list[str] = []
    failures: list[str] = []
    logs: dict[str, list[str]] = {}
    stand_in_keepalives = 0
    with tempfile.TemporaryDirectory(prefix="bench-gb28181-") as tmp:
        if args.only in ("all", "keepalive"):
            print(f"keepalives ({args.devices} devices, {args.seconds:g} s per rate, "
                  f"-l {CONCURRENT_CALLS}):", flush=True)  # fmt: skip
            try:
                hub_runs, hub_log = await hub_rates(
                    rates, args.seconds, args.devices, Path(tmp), log_dir
                )
                logs["keepalive hub"] = log_problems(hub_log)
                peer_runs = await peer_rates(rates, args.seconds, args.devices, Path(tmp))
            except Exception as err:  # report what ran, then the cause
                failures.append(f"keepalive measurement failed: {type(err).__name__}: {err}")
                print(f"  ERROR {failures[-1]}", flush=True)
            if hub_runs:
                report += ["", "SIP keepalive throughput (sipp keepalive.xml → server):",
                           *keepalive_table(hub_runs, peer_runs),
                           *keepalive_verdict(hub_runs, peer_runs)]  # fmt: skip
        if args.only in ("all", "stream"):
            clip = camera_clip()
            print(f"live view (one WHEP viewer, {args.window:g} s window):", flush=True)
            try:
                streams, live_log, stand_in_keepalives = await stream_runs(
                    clip, args.window, Path(tmp), log_dir
                )
                logs["live hub"] = log_problems(live_log)
            except Exception as err:
                failures.append(f"live-view measurement failed: {type(err).__name__}: {err}")
                print(f"  ERROR {failures[-1]}", flush=True)
            if streams:
                report += ["", f"Hub CPU per live stream ({WIDTH}x{HEIGHT} {FPS} fps H.264, "
                           "one viewer; the GB stand-in runs in the bench process):",
                           *stream_table(streams),
                           f"keepalives the hub counted from the stand-in during the phases: "
                           f"{stand_in_keepalives}"]  # fmt: skip
    print("\n".join(report))
    for name, problems in logs.items():
        if problems:
            print(f"\n{name} log warnings/errors:")
            print("\n".join(f"  {p}" for p in problems))
    for failure in failures:
        print(f"\nERROR: {failure}")
    elapsed = time.monotonic() - started
    print(f"\nrun time: {elapsed:.0f} s")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"gb28181-{stamp}.json"
    data: dict[str, Any] = {
        "machine_busy_percent": machine, "busy_processes": busy, "quick": args.quick,
        "devices": args.devices, "seconds_per_rate": args.seconds,
        "concurrent_calls": CONCURRENT_CALLS, "window_seconds": args.window,
        "keepalive": {"hub": [to_json(r) for r in hub_runs],
                      "sipp_uas": [to_json(r) for r in peer_runs],
                      "hub_sustained": sustained(hub_runs),
                      "peer_sustained": sustained(peer_runs)},
        "streams": [to_json(r) for r in streams],
        "stand_in_keepalives": stand_in_keepalives,
        "log_problems": logs, "failures": failures, "run_seconds": elapsed,
    }  # fmt: skip
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"results: {out}")
    met = not failures and all("NOT MET" not in line for line in report)
    return 0 if met else 1


def parse_args() -> argparse.Namespace:
    """Command line, with --quick shrinking every count and duration."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (~1 min)")
    parser.add_argument("--only", choices=("all", "keepalive", "stream"), default="all")
    parser.add_argument("--devices", type=int, help="registered devices (200; quick 50)")
    parser.add_argument("--rates", help="target keepalives/s (1000,2000,3000,4000; quick "
                        "1000,2000,3000)")  # fmt: skip
    parser.add_argument("--seconds", type=float, help="seconds of calls per rate (5; quick 2)")
    parser.add_argument("--window", type=float, help="CPU window per stream (20; quick 8)")
    args = parser.parse_args()
    defaults = (50, "1000,2000,3000", 2.0, 8.0) if args.quick else (
        200, "1000,2000,3000,4000", 5.0, 20.0)  # fmt: skip
    for name, value in zip(("devices", "rates", "seconds", "window"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


if __name__ == "__main__":
    arguments = parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(asyncio.run(main(arguments)))
