"""Notice fan-out benchmark: one notice to 50,000 users while a bystander watches an org
channel, on SQLite and PostgreSQL.

    python -m tests.bench.notices [--users 50000] [--only sqlite,postgres]

The hub runs as a real ``hub serve`` subprocess (memory bus). The users are bulk-inserted
into a new grid node; a dispatcher of the street above sends the notice to that grid over
REST. Meanwhile a marker alert is posted through ``POST /api/v1/events`` every 50 ms (the
signed ingest path: database, outbox, relay, bus, gateway) and a bystander SDK client on
``org:d01.s01`` records each marker's post-to-receive latency. Printed per backend: the
bystander's p50/p99/max latency before and during the send, how long the POST took, when
the last recipient (by id) got its pop-up, and when the notice's ``sent_at`` was set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from hub.db.engine import make_engine, make_sessionmaker
from hub.db.migrate import upgrade
from tests.integration.notices.helpers import add_bulk_users, connect_user
from tests.support.clients import alert, next_item, post_event, subscribe
from tests.support.hubs import hub_process, make_settings, settings_env, token

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results"
MARKER_EVERY = 0.05
BEFORE_S = 5.0
AFTER_S = 2.0
GRID_PARENT = "d01.s03.c03"
GRID_NODE = "g99"
SENDER = ("s03-dispatcher", "d01.s03", ["dispatcher"])
BYSTANDER = ("d01-dispatcher", "d01", ["dispatcher"])
MARKER_ORG = "d01.s01"
SEND_TIMEOUT = 600.0
HEADER = (
    "| backend  | POST s | last pop-up s | sent_at s | before p50/p99/max "
    "| during p50/p99/max | during n |"
)
RULE = "|" + "|".join("-" * len(col) for col in HEADER.split("|")[1:-1]) + "|"


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values`` (nearest rank); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Markers:
    """Posts a marker alert every ``MARKER_EVERY`` s; records post→receive latencies."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sent: dict[str, float] = {}
        self.accepted: set[str] = set()
        self.latencies: list[tuple[float, float]] = []  # (posted at, latency)
        self.failed = 0

    async def post_loop(self) -> None:
        """Post markers until cancelled (each post in its own task: a slow one does not
        delay the next)."""
        posts: set[asyncio.Task[None]] = set()
        try:
            while True:
                task = asyncio.get_running_loop().create_task(self._post_one())
                posts.add(task)
                task.add_done_callback(posts.discard)
                await asyncio.sleep(MARKER_EVERY)
        finally:
            for task in posts:
                task.cancel()

    async def _post_one(self) -> None:
        marker = uuid.uuid4().hex
        self.sent[marker] = time.time()
        status, _ = await post_event(self.base_url, alert(MARKER_ORG, title=marker))
        if status != 202 and status != 200:
            self.failed += 1
        else:
            self.accepted.add(marker)

    def lost(self) -> int:
        """Markers the hub accepted that never arrived (a post cut short when the bench
        stops posting was never accepted: not a loss)."""
        return len(self.accepted & set(self.sent))

    async def receive_loop(self, queue: asyncio.Queue[Any]) -> None:
        """Match received markers to their post time."""
        while True:
            ctx = await queue.get()
            title = ctx.pub.data.get("data", {}).get("title")
            posted = self.sent.pop(title, None)
            if posted is not None:
                self.latencies.append((posted, time.time() - posted))

    def window(self, start: float, end: float) -> list[float]:
        """Latencies (ms) of markers posted in [start, end)."""
        return [lat * 1000 for at, lat in self.latencies if start <= at < end]


async def run_backend(name: str, url: str, users: int, tmp: Path) -> dict[str, Any]:
    """Start a hub on ``url``, add the users, measure one notice to all of them."""
    settings = make_settings(url, None)
    env = settings_env(settings)
    env["HUB_LOG_LEVEL"] = "WARNING"
    with hub_process(env, tmp) as hub:
        hub.start()
        await hub.wait_ready()
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            ids = await add_bulk_users(make_sessionmaker(engine), GRID_PARENT, GRID_NODE, users)
            print(f"  [{name}] {users:,} users inserted in {time.perf_counter() - started:.1f} s")
        finally:
            await engine.dispose()
        bystander = await subscribe(hub.ws_url, token(*BYSTANDER), f"org:{MARKER_ORG}")
        grid = f"{GRID_PARENT}.{GRID_NODE}"
        last = await connect_user(hub.ws_url, ids[-1], grid, ["grid_worker"])
        markers = Markers(hub.url)
        receiver = asyncio.create_task(markers.receive_loop(bystander.recorder.publications))
        poster = asyncio.create_task(markers.post_loop())
        try:
            await asyncio.sleep(BEFORE_S)
            send_start = time.time()
            headers = {"Authorization": f"Bearer {token(*SENDER)}"}
            body = {
                "kind": "work_arrangement",
                "level": "urgent",
                "title": "关于开展防汛安全隐患排查的紧急通知",
                "body": "各网格员即日起对辖区内易涝点开展排查，发现隐患立即上报。" * 4,
                "targets": {"orgs": [f"{GRID_PARENT}.{GRID_NODE}"]},
            }
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{hub.url}/api/v1/notices", json=body, headers=headers) as resp,
            ):
                reply = await resp.json()
                assert resp.status == 201, reply
            post_done = time.time()
            notice_id = reply["id"]
            event = await next_item(last.recorder.server_publications, SEND_TIMEOUT)
            last_pushed = time.time()
            assert event.pub.data["data"]["notice_id"] == notice_id
            sent_at = await wait_sent(hub.url, headers, notice_id)
            await asyncio.sleep(AFTER_S)
        finally:
            poster.cancel()
            await asyncio.sleep(1.0)  # let markers in flight arrive
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poster
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
            await bystander.client.disconnect()
            await last.client.disconnect()
    before = markers.window(send_start - BEFORE_S, send_start)
    during = markers.window(send_start, sent_at)
    result = {
        "backend": name,
        "users": users,
        "recipients": reply["recipient_count"],
        "post_s": post_done - send_start,
        "last_recipient_s": last_pushed - send_start,
        "sent_at_s": sent_at - send_start,
        "before_ms": summary(before),
        "during_ms": summary(during),
        "markers_lost": markers.lost(),
        "marker_post_failures": markers.failed,
    }
    print(f"  [{name}] {json.dumps(result)}", flush=True)
    return result


def summary(values: list[float]) -> dict[str, float]:
    """Count, p50, p99 and max of latencies in ms."""
    return {
        "n": len(values),
        "p50": statistics.median(values) if values else float("nan"),
        "p99": percentile(values, 0.99),
        "max": max(values) if values else float("nan"),
    }


async def wait_sent(base: str, headers: dict[str, str], notice_id: str) -> float:
    """Poll the sender's view until ``sent_at`` is set (a cross-process condition);
    returns the time it was seen."""
    deadline = time.monotonic() + SEND_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(f"{base}/api/v1/notices/{notice_id}", headers=headers) as resp:
                if (await resp.json()).get("sent_at"):
                    return time.time()
            await asyncio.sleep(0.1)
    raise TimeoutError("the fan-out did not finish")


async def main(users: int, only: set[str]) -> None:
    """Run the chosen backends and print the table."""
    results = []
    with tempfile.TemporaryDirectory(prefix="hub-notice-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        if "sqlite" in only:
            url = f"sqlite+aiosqlite:///{tmp / 'notices.db'}"
            await asyncio.to_thread(upgrade, url)
            results.append(await run_backend("sqlite", url, users, tmp))
        if "postgres" in only:
            name = f"hub_notice_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(POSTGRES_ADMIN)
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
                await asyncio.to_thread(upgrade, url)
                results.append(await run_backend("postgres", url, users, tmp))
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
    print(f"\nOne notice to {users:,} users; bystander marker latency (ms), every "
          f"{MARKER_EVERY * 1000:.0f} ms through POST /api/v1/events:")  # fmt: skip
    print(HEADER)
    print(RULE)
    for r in results:
        b, d = r["before_ms"], r["during_ms"]
        print(f"| {r['backend']:<8} | {r['post_s']:6.2f} | {r['last_recipient_s']:13.2f} "
              f"| {r['sent_at_s']:9.2f} | {b['p50']:5.1f}/{b['p99']:5.1f}/{b['max']:6.1f} "
              f"| {d['p50']:5.1f}/{d['p99']:5.1f}/{d['max']:6.1f} | {d['n']:8} |")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"notices-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000, help="recipients (default 50,000)")
    parser.add_argument("--only", default="sqlite,postgres", help="backends, comma-separated")
    args = parser.parse_args()
    asyncio.run(main(args.users, set(args.only.split(","))))
