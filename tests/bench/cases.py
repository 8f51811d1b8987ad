"""Case benchmarks: creation throughput over REST (PostgreSQL and SQLite) and the statistics
answer on a million cases (PostgreSQL).

    python -m tests.bench.cases [--cases 20000] [--concurrency 32] [--stats-cases 1000000]
                                [--runs 7] [--only create,stats] [--backends postgres,sqlite]
                                [--client raw|aiohttp]

(a) ``hub serve`` on a fresh database; C keep-alive connections (``http_load.py``) POST
``--cases`` reports to ``/api/v1/cases`` (127.0.0.1 only). Peer, in the same run and on the same
database: the same rows as a bare ``INSERT`` through SQLAlchemy Core from one process
with the same concurrency (one transaction per row; no HTTP, no numbering, no timeline,
no outbox).
(b) A dedicated PostgreSQL database with ``--stats-cases`` generated cases (INSERT …
SELECT generate_series; d01's 36 grids, 7 root categories, spread of states); the full
statistics answer timed in-process and through ``GET /api/v1/cases/stats``. Peer: the same
aggregates written naively, every matching row fetched and tallied in a Python loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil  # type: ignore[import-untyped]  # no stubs in the venv
from sqlalchemy import insert, text

from hub.cases.stats import case_stats
from hub.db.engine import make_engine, make_sessionmaker
from hub.db.migrate import upgrade
from hub.db.models import Case
from tests.bench.cases_data import (
    STATS_FROM,
    STATS_TO,
    generate_cases,
    naive_stats,
    report_bodies,
)
from tests.bench.http_load import post_request, send_all
from tests.bench.machine import busy_processes
from tests.support.hubs import HubProcess, hub_process, make_settings, settings_env, token

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_BASE = "postgresql+asyncpg://postgres@127.0.0.1:5432"
RESULTS = Path(__file__).resolve().parent / "results"
REPORTER = ("d01-dispatcher", "d01", ["dispatcher"])
LEADER = ("d01-leader", "d01", ["leader"])
WARM_UP = 50
NAIVE_RUNS = 3
TARGET_CREATE = 1000.0
TARGET_STATS_MS = 500.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)
COVER_INDEX = (
    "CREATE INDEX ix_cases_stats_cover ON cases (created_at) "
    "INCLUDE (org, state, category_root, tier, on_time, satisfaction, assignee)"
)


@asynccontextmanager
async def postgres_database(prefix: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES_BASE}/{name}"
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def hub_env(url: str, tmp: Path) -> dict[str, str]:
    """Environment of a quiet ``hub serve`` on ``url``."""
    env = settings_env(make_settings(url, None))
    env.update(HUB_LOG_LEVEL="WARNING", HUB_CASES__ATTACHMENTS_DIR=str(tmp / "attachments"))
    return env


async def post_all(
    hub: HubProcess, bodies: list[dict[str, Any]], concurrency: int, client: str
) -> Counter[int]:
    """POST every body with ``concurrency`` clients; the count of each status. ``client``
    ``raw`` is the lean load generator (bodies encoded before the clock starts), ``aiohttp``
    an aiohttp ClientSession."""
    if client == "raw":
        auth = {"Authorization": f"Bearer {token(*REPORTER)}"}
        requests = [
            post_request("127.0.0.1", hub.port, "/api/v1/cases", json.dumps(b).encode(), auth)
            for b in bodies
        ]
        return await send_all(
            "127.0.0.1", hub.port, requests, concurrency, REQUEST_TIMEOUT.total or 120
        )
    statuses: Counter[int] = Counter()
    queue = iter(bodies)
    headers = {"Authorization": f"Bearer {token(*REPORTER)}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    url = f"{hub.url}/api/v1/cases"

    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as http:

        async def poster() -> None:
            for body in queue:
                async with http.post(url, json=body, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] += 1

        await asyncio.gather(*(poster() for _ in range(concurrency)))
    return statuses


def bare_row(n: int, body: dict[str, Any]) -> dict[str, Any]:
    """The row the hub would store for ``body`` (community tier), for the bare peer."""
    created = datetime.now(UTC)
    return {
        "id": f"P{n:025d}", "number": f"peer-{n:08d}", "category": body["category"],
        "category_root": body["category"].split(".")[0], "priority": body["priority"],
        "title": body["title"], "description": body["description"], "org": body["org"],
        "tier_org": body["org"].rsplit(".", 1)[0], "tier": "community", "channel": "console",
        "reporter_kind": "user", "reporter_id": REPORTER[0], "reporter_name": REPORTER[0],
        "state": "reported", "attributes": {}, "created_at": created, "updated_at": created,
        "version": 1,
    }  # fmt: skip


async def bare_inserts(url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Insert the rows with ``concurrency`` tasks, one transaction each; the seconds taken."""
    engine = make_engine(url)
    rows = iter(enumerate(bodies))
    statement = insert(Case)

    async def writer() -> None:
        for n, body in rows:
            async with engine.begin() as conn:
                await conn.execute(statement, bare_row(n, body))

    try:
        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(concurrency)))
        return time.perf_counter() - started
    finally:
        await engine.dispose()


async def run_create(
    name: str, url: str, count: int, concurrency: int, client: str, tmp: Path
) -> dict[str, Any]:
    """Cases/s through the hub and through the bare peer on one database."""
    bodies = report_bodies(WARM_UP + count)
    with hub_process(hub_env(url, tmp), tmp) as hub:
        hub.start()
        await hub.wait_ready()
        await post_all(hub, bodies[:WARM_UP], concurrency, client)
        assert hub.proc is not None
        process, me = psutil.Process(hub.proc.pid), psutil.Process()
        cpu_before, my_before = sum(process.cpu_times()[:2]), sum(me.cpu_times()[:2])
        started = time.perf_counter()
        statuses = await post_all(hub, bodies[WARM_UP:], concurrency, client)
        hub_s = time.perf_counter() - started
        hub_cpu = sum(process.cpu_times()[:2]) - cpu_before
        load_cpu = sum(me.cpu_times()[:2]) - my_before
    peer_s = await bare_inserts(url, bodies[WARM_UP:], concurrency)
    result: dict[str, Any] = {
        "backend": name, "cases": count, "concurrency": concurrency, "client": client,
        "load_cpu_percent": 100 * load_cpu / hub_s,
        "statuses": {str(k): v for k, v in statuses.items()},
        "hub_per_s": statuses[201] / hub_s, "peer_per_s": count / peer_s,
        "hub_cpu_s": hub_cpu, "hub_per_cpu_s": statuses[201] / hub_cpu if hub_cpu else None,
    }  # fmt: skip
    result["ratio"] = result["hub_per_s"] / result["peer_per_s"]
    print(f"  [create {name}] {json.dumps(result)}", flush=True)
    return result


def summary(values: list[float]) -> dict[str, float]:
    """p50 and max in ms of seconds."""
    return {"p50": statistics.median(values) * 1000, "max": max(values) * 1000, "n": len(values)}


async def time_stats_in_process(url: str, runs: int) -> list[float]:
    """Seconds per full statistics answer, called in-process (after one warm-up)."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    times = []
    try:
        for n in range(runs + 1):
            async with sessions() as session:
                started = time.perf_counter()
                answer = await case_stats(session, "d01", STATS_FROM, STATS_TO, "street")
                if n:
                    times.append(time.perf_counter() - started)
        print(f"  [stats] overall {answer.overall.model_dump_json()}", flush=True)
    finally:
        await engine.dispose()
    return times


async def time_stats_rest(hub: HubProcess, runs: int) -> list[float]:
    """Seconds per ``GET /api/v1/cases/stats`` (after one warm-up)."""
    headers = {"Authorization": f"Bearer {token(*LEADER)}"}
    params = {"from": STATS_FROM.isoformat(), "to": STATS_TO.isoformat(), "level": "street"}
    times = []
    async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as http:
        for n in range(runs + 1):
            started = time.perf_counter()
            async with http.get(f"{hub.url}/api/v1/cases/stats", params=params,
                                headers=headers) as resp:  # fmt: skip
                body = await resp.json()
                assert resp.status == 200, body
            if n:
                times.append(time.perf_counter() - started)
    return times


async def time_naive(url: str, runs: int) -> list[float]:
    """Seconds per naive answer (rows fetched and tallied in Python)."""
    engine = make_engine(url)
    times = []
    try:
        for _ in range(runs):
            async with engine.connect() as conn:
                started = time.perf_counter()
                await naive_stats(conn, "d01", 2)
                times.append(time.perf_counter() - started)
    finally:
        await engine.dispose()
    return times


async def run_stats(count: int, runs: int, tmp: Path) -> dict[str, Any]:
    """The statistics answer on ``count`` generated cases, with and without the extra index."""
    async with postgres_database("hub_case_stats") as url:
        engine = make_engine(url)
        started = time.perf_counter()
        async with engine.begin() as conn:
            await generate_cases(conn, count)
        generated_s = time.perf_counter() - started
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE cases"))
            # Flush the bulk load now: a checkpoint writing it out during the timed runs
            # slows every scan several-fold.
            await conn.execute(text("CHECKPOINT"))
        print(f"  [stats] {count:,} cases generated in {generated_s:.1f} s", flush=True)
        result: dict[str, Any] = {"cases": count, "generated_s": generated_s}
        result["in_process"] = summary(await time_stats_in_process(url, runs))
        with hub_process(hub_env(url, tmp), tmp) as hub:
            hub.start()
            await hub.wait_ready()
            result["rest"] = summary(await time_stats_rest(hub, runs))
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(COVER_INDEX))
                await conn.execute(text("VACUUM ANALYZE cases"))
                await conn.execute(text("CHECKPOINT"))
            result["rest_cover_index"] = summary(await time_stats_rest(hub, runs))
        result["in_process_cover_index"] = summary(await time_stats_in_process(url, runs))
        result["naive"] = summary(await time_naive(url, NAIVE_RUNS))
        await engine.dispose()
    result["ratio"] = result["naive"]["p50"] / result["rest"]["p50"]
    print(f"  [stats] {json.dumps(result)}", flush=True)
    return result


def print_tables(creates: list[dict[str, Any]], stats: dict[str, Any] | None) -> None:
    """The printed results, ratios and targets."""
    if creates:
        print("\nCase creation (POST /api/v1/cases) vs bare SQLAlchemy Core INSERT:")
        print(
            "| backend  | cases  | conc | hub cases/s | peer cases/s | hub/peer | hub CPU % "
            "| load gen CPU % | non-201 |"
        )
        print("|----------|--------|------|-------------|--------------|----------|-----------"
              "|----------------|---------|")  # fmt: skip
        for r in creates:
            bad = sum(v for k, v in r["statuses"].items() if k != "201")
            cpu = 100 * r["hub_cpu_s"] * r["hub_per_s"] / max(1, r["statuses"].get("201", 0))
            print(f"| {r['backend']:<8} | {r['cases']:6} | {r['concurrency']:4} "
                  f"| {r['hub_per_s']:11,.0f} | {r['peer_per_s']:12,.0f} "
                  f"| {r['ratio']:7.2f}× | {cpu:9.0f} "
                  f"| {r['load_cpu_percent']:9.0f} ({r['client'][:3]}) | {bad:7} |")  # fmt: skip
    if stats:
        print(f"\nStatistics answer on {stats['cases']:,} cases (PostgreSQL, d01, level street):")
        print("| how                                   | p50 ms | max ms | runs |")
        print("|---------------------------------------|--------|--------|------|")
        for key, label in (
            ("in_process", "hub case_stats(), in-process"),
            ("rest", "hub GET /api/v1/cases/stats"),
            ("in_process_cover_index", "in-process, + ix_cases_stats_cover"),
            ("rest_cover_index", "REST, + ix_cases_stats_cover"),
            ("naive", "peer: fetch rows + Python loop"),
        ):
            s = stats[key]
            print(f"| {label:<37} | {s['p50']:6.0f} | {s['max']:6.0f} | {s['n']:4} |")
        print(f"naive/hub (REST p50): {stats['ratio']:.1f}×")
    print("\nTargets:")
    for r in creates:
        if r["backend"] == "postgres":
            rate = r["hub_per_s"]
            verdict(
                rate >= TARGET_CREATE, f"postgres creation ≥ {TARGET_CREATE:,.0f}/s: {rate:,.0f}"
            )
    if stats:
        p50 = stats["rest"]["p50"]
        verdict(p50 <= TARGET_STATS_MS, f"statistics p50 ≤ {TARGET_STATS_MS:.0f} ms: {p50:.0f}")


def verdict(passed: bool, text: str) -> None:
    """Print one target line."""
    print(f"  [{'PASS' if passed else 'FAIL'}] {text}")


async def main(args: argparse.Namespace) -> None:
    """Run the chosen parts and print the tables."""
    load, busy = busy_processes()
    print(f"machine CPU {load:.0f}% before start" + "".join(f"\n  busy: {b}" for b in busy))
    only, backends = set(args.only.split(",")), args.backends.split(",")
    creates: list[dict[str, Any]] = []
    stats = None
    with tempfile.TemporaryDirectory(prefix="hub-case-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        if "create" in only:
            for backend in backends:
                if backend == "sqlite":
                    url = f"sqlite+aiosqlite:///{tmp / 'cases.db'}"
                    await asyncio.to_thread(upgrade, url)
                    creates.append(
                        await run_create(
                            "sqlite", url, args.cases, args.concurrency, args.client, tmp
                        )
                    )
                else:
                    async with postgres_database("hub_case_create") as url:
                        creates.append(
                            await run_create(
                                "postgres", url, args.cases, args.concurrency, args.client, tmp
                            )
                        )
        if "stats" in only:
            stats = await run_stats(args.stats_cases, args.runs, tmp)
    print_tables(creates, stats)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"cases-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine_cpu_percent": load, "busy": busy,
                                "create": creates, "stats": stats}, indent=1))  # fmt: skip
    print(f"results: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000, help="cases POSTed per backend")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument(
        "--client", choices=("raw", "aiohttp"), default="raw",
        help="load generator: the lean raw HTTP/1.1 client or an aiohttp ClientSession",
    )  # fmt: skip
    parser.add_argument("--stats-cases", type=int, default=1_000_000, help="generated cases")
    parser.add_argument("--runs", type=int, default=7, help="timed statistics answers")
    parser.add_argument("--only", default="create,stats", help="parts, comma-separated")
    parser.add_argument("--backends", default="postgres,sqlite", help="for the creation part")
    asyncio.run(main(parser.parse_args()))
