"""Track playback benchmark: a month of 5-second pings for one worker, on SQLite and
PostgreSQL, through the hub's track query, against the straightforward way measured in the
same run (ORM rows, point-in-polygon per fix, Douglas–Peucker in plain Python).

    python -m tests.bench.track [--days 31] [--only sqlite,postgres]

The walk is a seeded random walk around the worker's grid, so the line simplifies poorly
(a worst case for the simplifier) and part of it lies outside the grid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert, select

import protocols.geo.tracks as geo_tracks
from hub.config import PROJECT_ROOT
from hub.db.engine import make_engine, make_sessionmaker
from hub.db.migrate import upgrade
from hub.db.models import Position
from hub.locations.tracks import track
from protocols.geo import GridIndex, LatLon, TrackPoint, track_feature

PING_S = 5.0
GRID = "d01.s01.c01.g01"
WORKER = "bench-walker"
INSERT_BATCH = 20_000
TOLERANCE_M = 5.0
MAX_GAP_S = 600.0
STEP_DEG = 3e-5
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results"


def walk(days: float, grids: GridIndex) -> list[dict[str, Any]]:
    """Position rows of a seeded random walk starting in the middle of the grid."""
    area = grids.area(GRID)
    box = area.bbox
    lat, lon = (box.min_lat + box.max_lat) / 2, (box.min_lon + box.max_lon) / 2
    rnd = random.Random(20261123)
    start = time.time() - days * 86400 - 60
    rows = []
    for i in range(int(days * 86400 / PING_S)):
        lat += rnd.gauss(0, STEP_DEG)
        lon += rnd.gauss(0, STEP_DEG)
        t = start + i * PING_S
        rows.append(
            {"worker_id": WORKER, "fix_time": t, "sent_time": None, "received_at": t,
             "lat": lat, "lon": lon, "accuracy_m": 8.0, "altitude_m": None, "speed_mps": None,
             "heading_deg": None, "battery_pct": None, "source_datum": "wgs84",
             "outside": not area.contains(LatLon(lat, lon))}
        )  # fmt: skip
    return rows


async def naive_track(sessions: Any, grids: GridIndex, start: float, end: float) -> dict[str, Any]:
    """The straightforward way: ORM entities, geometry per fix, plain-Python simplification."""
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(Position)
                .where(Position.worker_id == WORKER, Position.fix_time.between(start, end))
                .order_by(Position.fix_time)
            )
        ).all()
    points = [TrackPoint(r.lat, r.lon, r.fix_time) for r in rows]
    saved = geo_tracks.VECTOR_SPAN
    geo_tracks.VECTOR_SPAN = len(points) + 1  # every span in plain Python
    try:
        return await asyncio.to_thread(
            track_feature, points, tolerance_m=TOLERANCE_M, area=grids.area(GRID),
            jitter_m=3.0, max_gap_s=MAX_GAP_S,
        )  # fmt: skip
    finally:
        geo_tracks.VECTOR_SPAN = saved


async def timed(fn: Callable[[], Awaitable[dict[str, Any]]]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one call, and its result."""
    begin = time.perf_counter()
    result = await fn()
    return time.perf_counter() - begin, result


async def run_backend(
    name: str, url: str, rows: list[dict[str, Any]], grids: GridIndex
) -> list[dict[str, Any]]:
    """Insert the walk, then time the hub's track and the naive one."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        print(f"  [{name}] inserting {len(rows):,} fixes…", flush=True)
        async with sessions() as session, session.begin():
            for i in range(0, len(rows), INSERT_BATCH):
                await session.execute(insert(Position), rows[i : i + INSERT_BATCH])
        start, end = rows[0]["fix_time"] - 1, rows[-1]["fix_time"] + 1
        day_end = rows[0]["fix_time"] + 86400

        def hub(
            first: float, last: float, tolerance: float
        ) -> Callable[[], Awaitable[dict[str, Any]]]:
            return lambda: track(
                sessions, WORKER, GRID, first, last, tolerance_m=tolerance,
                max_points=10**7, max_gap_s=MAX_GAP_S, times="unix",
            )  # fmt: skip

        out = []
        for label, call in (
            ("hub: month, simplify 5 m", hub(start, end, TOLERANCE_M)),
            ("hub: one day, every fix", hub(start, day_end, 0.0)),
            ("naive: month, simplify 5 m", lambda: naive_track(sessions, grids, start, end)),
        ):
            seconds, feature = await timed(call)
            props = feature["properties"]
            out.append(
                {"backend": name, "case": label, "seconds": seconds,
                 "fixes": props["point_count"], "shown": props["simplified_count"],
                 "outside_s": props["time_outside_s"], "distance_m": props["distance_m"]}
            )  # fmt: skip
            print(f"  [{name}] {label}: {seconds:.2f} s", flush=True)
        return out
    finally:
        await engine.dispose()


async def main(days: float, only: set[str]) -> None:
    """Run the chosen backends and print the table."""
    grids = GridIndex.from_geojson(json.loads((PROJECT_ROOT / "config/grids.geojson").read_text()))
    rows = walk(days, grids)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-track-bench-") as tmp:
        if "sqlite" in only:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'track.db'}"
            await asyncio.to_thread(upgrade, url)
            results += await run_backend("sqlite", url, rows, grids)
        if "postgres" in only:
            name = f"hub_track_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(POSTGRES_ADMIN)
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
                await asyncio.to_thread(upgrade, url)
                results += await run_backend("postgres", url, rows, grids)
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
    print(f"\nTrack playback, one worker, {days:g} days of {PING_S:g}-second pings:")
    print("| backend  | case                        | seconds | fixes   | shown   | × naive |")
    print("|----------|-----------------------------|---------|---------|---------|---------|")
    for r in results:
        naive = next(
            x for x in results if x["backend"] == r["backend"] and x["case"].startswith("naive")
        )
        ratio = naive["seconds"] / r["seconds"] if "month" in r["case"] else float("nan")
        shown = "-" if ratio != ratio else f"{ratio:.2f}"
        print(f"| {r['backend']:<8} | {r['case']:<27} | {r['seconds']:7.2f} | {r['fixes']:7,} "
              f"| {r['shown']:7,} | {shown:>7} |")  # fmt: skip
    agree = all(
        abs(r["outside_s"] - results[0]["outside_s"]) < 1e-6
        for r in results
        if "month" in r["case"]
    )
    print(
        f"\nmonth summaries agree (time outside the grid, hub vs naive): {'yes' if agree else 'NO'}"
    )
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"track-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=31.0, help="days of pings (default 31)")
    parser.add_argument("--only", default="sqlite,postgres", help="backends, comma-separated")
    args = parser.parse_args()
    asyncio.run(main(args.days, set(args.only.split(","))))
