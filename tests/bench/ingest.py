"""Ingest benchmark: grid phones' pings through a real Mosquitto into the hub, against a
bare paho subscriber draining the same load.

One private Mosquitto (the real broker binary, our own process on a free port, queues
unbounded so nothing is dropped for a slow subscriber) serves every run. Per run, K
simulated phones in a few processes publish M pings each at QoS 1, after one warm-up ping
each (not timed: it makes the hub look every worker up once and brings them online). The
phones are lean raw MQTT 3.1.1 clients by default (tests/bench/ingest_raw.py); paho phones
(``--publisher paho``) need more than one of the two cores to publish 20,000 pings/s, and
the run then measures them rather than the hub:

* ``hub+sqlite`` / ``hub+postgres``: ``hub serve`` on a fresh database with K workers; the
  run ends when the hub's ``hub_positions_stored_total`` has grown by K × M. A WebSocket
  subscriber of ``org:d01`` receives the live ``worker.position`` pushes.
* ``bare paho``: a paho subscriber (MQTT 5, QoS 1, automatic acks, ``on_message`` counts)
  on the hub's topic filters; the run ends when it has counted K × M.

Printed per run: pings/s from the first publication to the last ping stored (received),
the process's CPU-seconds and pings per CPU-second, live pushes, whether every ping was
stored exactly once; then hub/bare ratios and the acceptance targets.

Usage::

    python -m tests.bench.ingest                    # K=1000 phones × M=50 pings, all three
    python -m tests.bench.ingest --publisher paho   # the same with paho phone clients
    python -m tests.bench.ingest --quick            # smoke run: K=200 × M=20
    python -m tests.bench.ingest --only sqlite,bare --phones 2000 --pings 100 --repeat 3

Results are also written to ``tests/bench/results/ingest-<timestamp>.json``; hub logs go
to ``tests/bench/results/logs/ingest-<timestamp>/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from hub.config import MqttSettings
from tests.bench.control import Message
from tests.bench.fanout import terminate_as_exit
from tests.bench.ingest_hub import (
    HOST,
    Database,
    HubFailed,
    HubProcess,
    PushWatcher,
    count_positions,
    free_hub_port,
    hub_env,
    make_phones,
    postgres_database,
    running_hub,
    seed_workers,
)
from tests.bench.ingest_options import Options, parse_args
from tests.bench.ingest_phones import BareSpec, Phone, PhoneSpec, bare_main, phones_main
from tests.bench.ingest_raw import raw_phones_main
from tests.bench.ingest_report import BARE, IngestRun, format_summary, write_json
from tests.bench.machine import busy_processes
from tests.bench.procutil import raise_nofile_limit
from tests.support.mosquitto import MosquittoServer

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LABELS = {"sqlite": "hub+sqlite", "postgres": "hub+postgres", "bare": BARE}
BROKER_CONFIG = "allow_anonymous true\nmax_queued_messages 0\nmax_queued_bytes 0\n"
"""Unbounded queues: the broker never drops what a subscriber has not taken yet."""
BROKER_NAME = "a private Mosquitto (the real broker, our own process)"
RECEIVE_MAXIMUM = MqttSettings().receive_maximum
"""The bare subscriber's receive maximum: the hub's default (``HUB_MQTT__RECEIVE_MAXIMUM``)."""
LIVE_INTERVAL = 1.0
"""The hub's default ``HUB_LOCATIONS__LIVE_INTERVAL``: trailing pushes come within it."""
WARMUP_AGE = 3600.0
"""The warm-up fix lies this long (plus M seconds) before the start of the run."""
CONNECT_TIMEOUT = 60.0
COMMAND_TIMEOUT = 30.0
JOIN_TIMEOUT = 5.0
POLL_MIN = 0.01
POLL_MAX = 0.25
IDLE_SAMPLE = 1.0
NOISY_MACHINE_PERCENT = 10.0

_STARTED = time.monotonic()


def say(text: str) -> None:
    """Progress output, stamped with the seconds since the benchmark started."""
    print(f"{time.monotonic() - _STARTED:6.1f}s {text}", flush=True)


# ---- child processes ----------------------------------------------------------------------


class ChildDied(RuntimeError):
    """A phone or bare process exited while the orchestrator waited for it."""


class Child:
    """A phone or bare process, its pipe and the latest message of each type it sent."""

    def __init__(self, name: str, target: Callable[[Connection, Any], None], spec: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe(duplex=True)
        self.name = name
        self.process: BaseProcess = ctx.Process(
            target=target, args=(there, spec), name=name, daemon=True
        )
        self.process.start()
        there.close()
        self.pipe = here
        self.inbox: dict[str, Message] = {}

    def send(self, command: Message) -> None:
        """Send a command unless the process is gone."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self.pipe.send(command)

    def _drain(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while self.pipe.poll():
                message = self.pipe.recv()
                self.inbox[message["type"]] = message

    async def expect(self, kind: str, timeout: float) -> Message:
        """Wait for a ``kind`` message (removing it from the inbox)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while kind not in self.inbox:
            self._drain()
            if kind in self.inbox:
                break
            if not self.process.is_alive():
                raise ChildDied(f"{self.name} exited before sending {kind!r}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind!r} from {self.name} within {timeout:g}s")
            readable = loop.create_future()
            loop.add_reader(self.pipe.fileno(), _resolve, readable)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(readable, min(remaining, 0.5))
            finally:
                loop.remove_reader(self.pipe.fileno())
        return self.inbox.pop(kind)

    def stop(self) -> None:
        """Ask the process to stop, then terminate or kill it if it lingers."""
        self.send({"cmd": "stop"})
        self.process.join(JOIN_TIMEOUT)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(JOIN_TIMEOUT)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(JOIN_TIMEOUT)
        self.pipe.close()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def start_phones(phones: Sequence[Phone], port: int, opts: Options, seed: int) -> list[Child]:
    """Start the phone processes and wait until every phone is connected."""
    share, extra = divmod(len(phones), opts.processes)
    children: list[Child] = []
    start = 0
    for index in range(opts.processes):
        count = share + (1 if index < extra else 0)
        spec = PhoneSpec(index, HOST, port, tuple(phones[start : start + count]),
                         CONNECT_TIMEOUT, seed * 100 + index)  # fmt: skip
        target = raw_phones_main if opts.publisher == "raw" else phones_main
        children.append(Child(f"phones-{index}", target, spec))
        start += count
    try:
        readies = await asyncio.gather(*(c.expect("ready", CONNECT_TIMEOUT + 30) for c in children))
    except BaseException:
        stop_all(children)
        raise
    connected = sum(int(r["connected"]) for r in readies)
    if connected < len(phones):
        stop_all(children)
        errors = [e for r in readies for e in r["errors"]][:3]
        raise ConnectionError(f"{connected}/{len(phones)} phones connected: {errors}")
    return children


def stop_all(children: Sequence[Child]) -> None:
    """Stop every child process."""
    for child in children:
        child.send({"cmd": "stop"})
    for child in children:
        child.stop()


def send_publish(children: Sequence[Child], prefix: str, count: int, ts_base: float,
                 opts: Options) -> None:  # fmt: skip
    """Tell every phone process to publish ``count`` pings per phone."""
    for child in children:
        child.send({"cmd": "publish", "prefix": prefix, "count": count, "ts_base": ts_base,
                    "window": opts.window, "timeout": opts.max_wait})  # fmt: skip


async def published(children: Sequence[Child], run: IngestRun | None, opts: Options) -> float:
    """Collect the phones' reports; fold them into ``run``; return the first send time."""
    reports = await asyncio.gather(
        *(c.expect("published", opts.max_wait + COMMAND_TIMEOUT) for c in children)
    )
    first = min(float(r["first"]) for r in reports)
    if run is not None:
        run.publish_seconds = max(float(r["last_send"]) for r in reports) - first
        run.phone_cpu_seconds = sum(float(r["cpu"]) for r in reports)
        run.publisher_errors = [e for r in reports for e in r["errors"]]
    return first


async def idle_machine(run: IngestRun) -> None:
    """Note how busy the machine is while the benchmark's own processes sit idle."""
    percent, busy = busy_processes(IDLE_SAMPLE)
    run.idle_machine_cpu_percent = percent
    if percent > NOISY_MACHINE_PERCENT:
        run.notes.append(f"machine {percent:.0f}% busy before publishing")
        say(f"machine {percent:.0f}% busy while idle: " + "; ".join(busy))


# ---- hub runs -----------------------------------------------------------------------------


async def wait_stored(
    hub: HubProcess, target: float, opts: Options, run: IngestRun | None
) -> float:
    """Poll the hub's counters until ``stored`` reaches ``target``; return when it did.

    Polls tighten as the end nears, so the end time is late by at most ~10 ms plus the
    request; far from it they are rare, so scraping costs the hub next to nothing.
    """
    loop = asyncio.get_running_loop()
    started = last_change = loop.time()
    first = (await hub.counters())["stored"]
    last = first
    while True:
        now = loop.time()
        counters = await hub.counters()
        stored = counters["stored"]
        if stored >= target:
            return time.time()
        if stored != last:
            last, last_change = stored, now
        if not hub.alive():
            raise HubFailed("the hub died while storing")
        if now - last_change > opts.stall_timeout:
            if run is not None:
                run.notes.append(f"stalled: nothing stored for {opts.stall_timeout:g}s")
            return time.time()
        if now - started > opts.max_wait:
            if run is not None:
                run.notes.append(f"gave up after {opts.max_wait:g}s")
            return time.time()
        rate = (stored - first) / (now - started) if stored > first else 0.0
        eta = (target - stored) / rate if rate > 0 else POLL_MAX
        await asyncio.sleep(min(POLL_MAX, max(POLL_MIN, eta / 4)))


async def settle_pushes(hub: HubProcess, watcher: PushWatcher, pushed_base: float) -> int:
    """Wait out the trailing coalesced pushes, then until the subscriber has them all;
    returns how many the hub counted."""
    await asyncio.sleep(LIVE_INTERVAL + 0.5)
    pushed = int((await hub.counters())["pushed"] - pushed_base)
    with contextlib.suppress(TimeoutError):
        await watcher.wait_for(pushed, COMMAND_TIMEOUT)
    return pushed


async def run_hub(backend: str, opts: Options, broker: MosquittoServer, workdir: Path,
                  log_dir: Path, number: int) -> IngestRun:  # fmt: skip
    """One hub run on ``backend`` (sqlite or postgres); never raises."""
    run = IngestRun(LABELS[backend], opts.phones, opts.pings)
    label = f"[{run.backend} #{number}]"
    tag = f"{backend}{number}_{os.getpid()}_{int(time.time())}"
    phones_and_grids = make_phones(opts.phones, seed=number)
    phones = [phone for phone, _ in phones_and_grids]
    database: Database | None = None
    children: list[Child] = []
    watcher = PushWatcher()
    try:
        if backend == "sqlite":
            database = Database(f"sqlite+aiosqlite:///{workdir / f'{tag}.db'}")
        else:
            database = await postgres_database(opts.postgres_url, f"hub_bench_ingest_{tag}")
        prefix = f"bench-ingest/{tag}"
        env = hub_env(database.url, free_hub_port(), broker.url, f"bench-ingest-{tag}", prefix)
        async with running_hub(env, log_dir / f"{tag}.log") as hub:
            await seed_workers(database.url, phones_and_grids)
            await watcher.start(hub.http, hub.port)
            children = await start_phones(phones, broker.port, opts, number)
            say(f"{label} hub pid {hub.proc.pid}, {opts.phones:,} workers, phones connected; "
                "warm-up ping per phone…")  # fmt: skip
            ts_base = time.time() - opts.pings - WARMUP_AGE
            send_publish(children, prefix, 1, ts_base, opts)
            await published(children, None, opts)
            await wait_stored(hub, opts.phones, opts, None)
            await settle_pushes(hub, watcher, 0.0)
            await idle_machine(run)
            base = await hub.counters()
            watcher.arm()
            cpu_before = hub.cpu_seconds()
            send_publish(children, prefix, opts.pings, ts_base + WARMUP_AGE, opts)
            done = await wait_stored(hub, base["stored"] + run.expected, opts, run)
            run.cpu_seconds = hub.cpu_seconds() - cpu_before
            first = await published(children, run, opts)
            run.wall_seconds = done - first
            run.pushed = await settle_pushes(hub, watcher, base["pushed"])
            after = await hub.counters()
            run.received = int(after["stored"] - base["stored"])
            run.duplicates = int(after["duplicate"] - base["duplicate"])
            run.refused = int(after["refused"] - base["refused"])
            run.pushes_received = watcher.total
            run.push_seconds = watcher.last_recv - first
            last_fix = ts_base + WARMUP_AGE + opts.pings - 1
            run.latest_pushed = sum(watcher.newest.get(p.worker_id) == last_fix for p in phones)
            await watcher.close()
            run.rows, run.distinct_rows = await count_positions(database.url)
        _report(label, run)
    except (HubFailed, ChildDied, TimeoutError, ConnectionError, OSError) as exc:
        run.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        say(f"{label} FAILED: {exc}")
    finally:
        stop_all(children)
        await watcher.close()
        if database is not None:
            with contextlib.suppress(Exception):
                await database.drop()
    return run


# ---- the bare subscriber ------------------------------------------------------------------


async def run_bare(opts: Options, broker: MosquittoServer, number: int) -> IngestRun:
    """One run of the bare paho subscriber; never raises."""
    run = IngestRun(BARE, opts.phones, opts.pings)
    label = f"[{BARE} #{number}]"
    tag = f"bare{number}_{os.getpid()}_{int(time.time())}"
    prefix = f"bench-ingest/{tag}"
    phones = [phone for phone, _ in make_phones(opts.phones, seed=number)]
    spec = BareSpec(HOST, broker.port, f"bench-ingest-{tag}", prefix, RECEIVE_MAXIMUM,
                    CONNECT_TIMEOUT)  # fmt: skip
    bare = Child("bare", bare_main, spec)
    children: list[Child] = []
    try:
        ready = await bare.expect("ready", CONNECT_TIMEOUT)
        if ready["error"]:
            raise ConnectionError(f"bare subscriber: {ready['error']}")
        process = psutil.Process(bare.process.pid)
        children = await start_phones(phones, broker.port, opts, number)
        say(f"{label} subscriber pid {bare.process.pid}, phones connected; warm-up…")
        ts_base = time.time() - opts.pings - WARMUP_AGE
        for count, base in ((1, ts_base), (opts.pings, ts_base + WARMUP_AGE)):
            expected = count * opts.phones
            bare.send({"cmd": "expect", "count": expected})
            await bare.expect("armed", COMMAND_TIMEOUT)
            if count > 1:
                await idle_machine(run)
            times = process.cpu_times()
            cpu_before = times.user + times.system
            send_publish(children, prefix, count, base, opts)
            try:
                done = await bare.expect("done", opts.max_wait)
            except TimeoutError:
                run.notes.append(f"gave up after {opts.max_wait:g}s")
                bare.send({"cmd": "report"})
                done = await bare.expect("report", COMMAND_TIMEOUT)
            times = process.cpu_times()
            first = await published(children, run if count > 1 else None, opts)
        run.cpu_seconds = times.user + times.system - cpu_before
        run.received = int(done["total"])
        run.wall_seconds = float(done["last_recv"]) - first
        _report(label, run)
    except (ChildDied, TimeoutError, ConnectionError, OSError, psutil.Error) as exc:
        run.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        say(f"{label} FAILED: {exc}")
    finally:
        stop_all([*children, bare])
    return run


def _report(label: str, run: IngestRun) -> None:
    text = (
        f"{label} {run.received:,}/{run.expected:,} in {run.wall_seconds:.2f}s: "
        f"{run.pings_per_second:,.0f} pings/s, {run.pings_per_cpu_second:,.0f}/CPU-s "
        f"(CPU {run.cpu_seconds:.2f}s); phones published at {run.publish_rate:,.0f}/s "
        f"using {run.phone_cpu_seconds:.2f} CPU-s"
    )
    if run.is_hub:
        text += (
            f"; {run.pushes_received:,}/{run.pushed:,} pushes received, "
            f"{run.pushes_per_second:,.0f}/s; rows {run.rows:,} (distinct {run.distinct_rows:,}), "
            f"duplicates {run.duplicates}, refused {run.refused}"
        )
    if run.notes or run.publisher_errors:
        text += "; " + "; ".join([*run.notes, *run.publisher_errors[:2]])
    say(text)


# ---- main ---------------------------------------------------------------------------------


async def run_all(opts: Options, workdir: Path, log_dir: Path, runs: list[IngestRun]) -> None:
    """Every run of the benchmark, through one private broker."""
    broker = MosquittoServer(global_config=BROKER_CONFIG)
    await broker.start()
    say(f"{BROKER_NAME} on {broker.url}")
    try:
        for number in range(1, opts.repeat + 1):
            for backend in opts.backends:
                if backend == "bare":
                    runs.append(await run_bare(opts, broker, number))
                else:
                    runs.append(await run_hub(backend, opts, broker, workdir, log_dir, number))
    finally:
        await broker.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit status 0 when every run completed (targets aside)."""
    opts = parse_args(argv)
    nofile = raise_nofile_limit()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = opts.output or RESULTS_DIR / f"ingest-{stamp}.json"
    log_dir = RESULTS_DIR / "logs" / f"ingest-{stamp}"
    say(
        f"ingest benchmark: runs {', '.join(LABELS[b] for b in opts.backends)}; "
        f"K {opts.phones:,} phones × M {opts.pings} pings in {opts.processes} processes "
        f"({opts.publisher} clients); "
        f"{os.cpu_count()} CPUs; open files {nofile}"
    )
    machine_percent, busy = busy_processes()
    if busy:
        say(
            f"warning: the machine is {machine_percent:.0f}% busy before starting, figures "
            "will be noisy; busy: " + "; ".join(busy)
        )
    runs: list[IngestRun] = []
    started = time.monotonic()
    interrupted = False
    try:
        with terminate_as_exit(), tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
            asyncio.run(run_all(opts, Path(tmp), log_dir, runs))
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
        say("interrupted: reporting the runs completed so far")
    say(format_summary(runs, broker=BROKER_NAME, publisher=opts.publisher))
    meta = {
        "benchmark": "ingest",
        "started": stamp,
        "duration_seconds": time.monotonic() - started,
        "interrupted": interrupted,
        "broker": BROKER_NAME,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpu_percent_at_start": machine_percent,
            "busy_processes_at_start": busy,
        },
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
    }
    write_json(output, meta, runs)
    say(f"\nresults: {output} ({math.ceil(time.monotonic() - started)}s)")
    if interrupted:
        return 130
    return 0 if all(r.error is None and r.received == r.expected for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
