"""One benchmark run: a server, its subscribers and publisher, and what they measured.

:func:`run_scenario` starts a server, warms it up, reads its baseline RSS, connects the
client swarms and the publisher, reads the idle RSS, optionally holds the connections,
publishes and waits for every delivery (or a stall, or the time limit), and always stops
every process it started.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.bench.control import Message
from tests.bench.fleet import Fleet, Worker, WorkerDied
from tests.bench.machine import MachineMeter
from tests.bench.options import Options
from tests.bench.publisher import PublisherSpec
from tests.bench.report import RunResult, percentile
from tests.bench.servers import HOST, ServerError, ServerProcess, start_server
from tests.bench.swarm import SwarmSpec

WARMUP_CONNECTIONS = 10
WARMUP_IDENT = 900_000
PUBLISHER_IDENT = 999_999
CONNECT_TIMEOUT = 30.0  # one connection, handshake to subscribed
CONNECT_BASE_DEADLINE = 60.0  # all connections: this plus N / CONNECT_MIN_RATE
CONNECT_MIN_RATE = 200.0
COMMAND_TIMEOUT = 30.0
PROGRESS_INTERVAL = 1.0
NOISY_MACHINE_PERCENT = 10.0  # machine CPU use, while the benchmark idles, worth a note

_STARTED = time.monotonic()


def say(text: str) -> None:
    """Progress output, stamped with the seconds since the benchmark started."""
    print(f"{time.monotonic() - _STARTED:6.1f}s {text}", flush=True)


def swarm_specs(
    kind: str, port: int, clients: int, first_ident: int, opts: Options
) -> list[SwarmSpec]:
    """Split ``clients`` connections over the client processes."""
    processes = min(opts.processes, clients)
    share, extra = divmod(clients, processes)
    per_process_concurrency = max(1, opts.connect_concurrency // processes)
    specs = []
    ident = first_ident
    for index in range(processes):
        count = share + (1 if index < extra else 0)
        specs.append(
            SwarmSpec(
                index=index,
                kind=kind,
                host=HOST,
                port=port,
                first_ident=ident,
                count=count,
                sample_every=opts.sample_every,
                concurrency=per_process_concurrency,
                connect_timeout=CONNECT_TIMEOUT,
                retries=opts.retries,
                loop=opts.client_loop,
            )
        )
        ident += count
    return specs


def warm_up(server: ServerProcess, opts: Options) -> None:
    """Connect and drop a few clients so lazy first-connection costs are not per-connection."""
    fleet = Fleet()
    try:
        fleet.start_swarms(
            swarm_specs(server.kind, server.port, WARMUP_CONNECTIONS, WARMUP_IDENT, opts)[:1]
        )
        fleet.wait_for(fleet.swarms, "ready", time.monotonic() + CONNECT_BASE_DEADLINE)
    finally:
        fleet.stop()


def connect(fleet: Fleet, result: RunResult, server: ServerProcess, opts: Options) -> None:
    """Start the swarms and the publisher; wait until they report ready."""
    clients = result.clients
    fleet.start_swarms(swarm_specs(server.kind, server.port, clients, 0, opts))
    fleet.start_publisher(
        PublisherSpec(
            server.kind, HOST, server.port, PUBLISHER_IDENT, CONNECT_TIMEOUT, opts.client_loop
        )
    )
    started = time.monotonic()
    deadline = started + CONNECT_BASE_DEADLINE + clients / CONNECT_MIN_RATE
    if not fleet.wait_for(fleet.workers, "ready", deadline):
        raise TimeoutError("clients did not finish connecting in time")
    readies = [worker.inbox["ready"] for worker in fleet.swarms]
    result.subscribed = sum(ready["subscribed"] for ready in readies)
    result.connect_seconds = time.monotonic() - started
    for ready in readies:
        for error, count in ready["errors"].items():
            result.connect_errors[error] = result.connect_errors.get(error, 0) + count
    assert fleet.publisher is not None
    publisher_error = fleet.publisher.inbox["ready"]["error"]
    if publisher_error:
        raise ConnectionError(f"publisher could not connect: {publisher_error}")
    if not server.alive():
        raise ServerError(f"{server.kind} died while clients connected")


def hold(fleet: Fleet, result: RunResult, server: ServerProcess, seconds: float) -> None:
    """Keep the connections idle for ``seconds``, watching that the server stays up."""
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while (remaining := deadline - time.monotonic()) > 0:
        fleet.pump(min(remaining, PROGRESS_INTERVAL))
        if not server.alive():
            raise ServerError(f"{server.kind} died during the hold")
    result.hold_seconds = time.monotonic() - started


def publish_and_wait(fleet: Fleet, result: RunResult, server: ServerProcess, opts: Options) -> None:
    """Publish M messages and wait for every delivery, a stall, or the time limit."""
    assert fleet.publisher is not None
    publisher: Worker = fleet.publisher
    swarms = fleet.swarms
    armed = fleet.request(
        swarms, {"cmd": "expect", "messages": result.messages}, "armed", COMMAND_TIMEOUT
    )
    expected = sum(message["expected"] for message in armed)
    for worker in fleet.workers:
        worker.inbox.pop("done", None)
        worker.inbox.pop("published", None)
    cpu_before = server.cpu_times()
    publisher.send({
        "cmd": "publish",
        "count": result.messages,
        "window": opts.window,
        "rate": opts.rate,
        "payload_bytes": opts.payload_bytes,
        "timeout": opts.max_wait,
    })  # fmt: skip
    started = last_progress_at = time.monotonic()
    last_total = -1
    while True:
        fleet.pump(PROGRESS_INTERVAL)
        if all("done" in w.inbox for w in swarms) and "published" in publisher.inbox:
            break
        now = time.monotonic()
        progress = fleet.request(swarms, {"cmd": "progress"}, "progress", COMMAND_TIMEOUT)
        total = sum(message["total"] for message in progress)
        if total != last_total:
            last_total, last_progress_at = total, now
        if all("done" in w.inbox for w in swarms) and total >= expected:
            # Every delivery is in; the publisher's last acks are a formality.
            fleet.wait_for([publisher], "published", now + opts.stall_timeout)
            break
        if now - last_progress_at > opts.stall_timeout:
            result.notes.append(f"stalled: no delivery for {opts.stall_timeout:g}s")
            break
        if now - started > opts.max_wait:
            result.notes.append(f"gave up after {opts.max_wait:g}s")
            break
        if not server.alive():
            raise ServerError(f"{server.kind} died during publishing")
    cpu_after = server.cpu_times()
    result.server_cpu_user = cpu_after[0] - cpu_before[0]
    result.server_cpu_system = cpu_after[1] - cpu_before[1]
    published = publisher.inbox.get("published")
    reports = fleet.request(swarms, {"cmd": "report"}, "report", COMMAND_TIMEOUT)
    collect(result, reports, published)


def collect(result: RunResult, reports: list[Message], published: Message | None) -> None:
    """Fold the swarms' reports and the publisher's into ``result``."""
    result.delivered = sum(int(r["total"]) for r in reports)
    result.frames = sum(int(r["frames"]) for r in reports)
    result.pongs = sum(int(r["pongs"]) for r in reports)
    result.expected = sum(int(r["expected"]) for r in reports)
    result.min_per_client = min(int(r["min_per_conn"]) for r in reports)
    result.open_after = sum(int(r["open"]) for r in reports)
    result.client_cpu_user = sum(float(r["cpu_user"]) for r in reports)
    result.client_cpu_system = sum(float(r["cpu_system"]) for r in reports)
    latencies = sorted(x for r in reports for x in r["latencies"])
    result.latency_samples = len(latencies)
    result.p50_ms = percentile(latencies, 0.50) * 1000
    result.p99_ms = percentile(latencies, 0.99) * 1000
    if published is None:
        result.publisher_errors.append("publisher did not finish")
        return
    result.publisher_errors.extend(published["errors"])
    last_recv = max(float(r["last_recv"]) for r in reports)
    if result.delivered and last_recv:
        result.wall_seconds = last_recv - float(published["first"])


def run_scenario(
    kind: str,
    clients: int,
    messages: int,
    opts: Options,
    workdir: Path,
    log_dir: Path,
    *,
    hold_seconds: float = 0.0,
) -> RunResult:
    """One server, ``clients`` subscribers, ``messages`` publications; never raises."""
    result = RunResult(server=kind, clients=clients, messages=messages)
    label = f"[{kind} N={clients:,} M={messages}]"
    server: ServerProcess | None = None
    fleet = Fleet()
    try:
        server = start_server(kind, workdir / f"{kind}-{clients}", log_dir, loop=opts.peer_loop)
        warm_up(server, opts)
        result.rss_before = server.settled_rss()
        say(
            f"{label} server pid {server.proc.pid} on :{server.port}, "
            f"RSS {result.rss_before / 2**20:.1f} MiB; connecting…"
        )
        connect(fleet, result, server, opts)
        meter = MachineMeter()
        meter.start()
        result.rss_loaded = server.settled_rss()
        result.idle_machine_cpu_percent = meter.percent()
        say(
            f"{label} {result.subscribed:,} subscribed in {result.connect_seconds:.1f}s, "
            f"{result.rss_kib_per_connection:.1f} KiB/conn; machine "
            f"{result.idle_machine_cpu_percent:.0f}% busy while idle"
            + (f"; errors: {result.connect_errors}" if result.connect_errors else "")
        )
        if result.idle_machine_cpu_percent > NOISY_MACHINE_PERCENT:
            result.notes.append(
                f"machine {result.idle_machine_cpu_percent:.0f}% busy before publishing"
            )
        if hold_seconds:
            say(f"{label} holding for {hold_seconds:g}s…")
            hold(fleet, result, server, hold_seconds)
        publish_and_wait(fleet, result, server, opts)
        say(
            f"{label} delivered {result.delivered:,}/{result.expected:,} in "
            f"{result.wall_seconds:.2f}s: {result.deliveries_per_second:,.0f}/s, "
            f"{result.deliveries_per_cpu_second:,.0f}/CPU-s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms; CPU-s server {result.server_cpu_user:.2f}u+"
            f"{result.server_cpu_system:.2f}s, clients {result.client_cpu_user:.2f}u+"
            f"{result.client_cpu_system:.2f}s; {result.deliveries_per_frame:.1f} deliveries/frame"
            + (f"; publisher: {result.publisher_errors}" if result.publisher_errors else "")
            + (f"; {'; '.join(result.notes)}" if result.notes else "")
        )
    except (ServerError, WorkerDied, TimeoutError, ConnectionError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        say(f"{label} FAILED: {exc}")
    finally:
        fleet.stop()
        if server is not None:
            server.stop()
    return result
