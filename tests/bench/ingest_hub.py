"""The hub side of the ingest benchmark: databases, the ``hub serve`` process, its workers,
its counters and a WebSocket subscriber that receives the live pushes.

Every run gets a fresh database: a SQLite file in the run's directory, or a PostgreSQL
database created for the run and dropped after it. The hub runs as ``hub serve`` in its own
process group with the parent-death signal set, so nothing outlives the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil  # type: ignore[import-untyped]  # no stubs in the venv
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from hub.auth.tokens import mint_token
from hub.db.models import Position, Worker
from protocols.geo import GridIndex, LatLon
from tests.bench.ingest_phones import Phone
from tests.bench.procutil import die_with_parent, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
GRIDS_FILE = PROJECT_ROOT / "config" / "grids.geojson"
JWT_SECRET = "ingest-benchmark-secret-0123456789abcdef"
WATCH_CHANNEL = "org:d01"
"""Every demo grid lies under d01, so this one channel sees every worker's pushes."""
READY_TIMEOUT = 60.0
MIGRATE_TIMEOUT = 180.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
HOME_MIN_INSIDE_M = 100.0
"""Home points lie at least this far inside their grid (the jitter never crosses out)."""
HOME_TRIES = 10_000
SEED_CHUNK = 500
LOG_TAIL_BYTES = 3000


class HubFailed(RuntimeError):
    """The hub (or its database) could not be set up, or died."""


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError), path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return log.read().decode("utf-8", "replace")
    return ""


# ---- phones and workers -----------------------------------------------------------------


def demo_grids() -> GridIndex:
    """The demo grid polygons the hub loads by default."""
    return GridIndex.from_geojson(json.loads(GRIDS_FILE.read_text(encoding="utf-8")))


def make_phones(count: int, seed: int) -> list[tuple[Phone, str]]:
    """``count`` phones spread round-robin over the demo grids, each with a home point well
    inside its grid; returns (phone, grid path) pairs."""
    grids = demo_grids()
    paths = sorted(p for p in grids.paths if grids.area(p).level == grids.level)
    rng = random.Random(seed)
    phones = []
    for index in range(count):
        path = paths[index % len(paths)]
        area = grids.area(path)
        for _ in range(HOME_TRIES):
            point = LatLon(
                rng.uniform(area.bbox.min_lat, area.bbox.max_lat),
                rng.uniform(area.bbox.min_lon, area.bbox.max_lon),
            )
            if area.signed_distance_m(point) < -HOME_MIN_INSIDE_M:
                break
        else:
            raise HubFailed(f"no point {HOME_MIN_INSIDE_M} m inside grid {path}")
        phones.append((Phone(f"bench-w{index:05d}", point.lat, point.lon), path))
    return phones


# ---- databases ----------------------------------------------------------------------------


@dataclass
class Database:
    """A fresh database for one run: its URL, and how to drop it."""

    url: str
    admin_url: str | None = None
    name: str | None = None

    async def drop(self) -> None:
        """Drop the database (PostgreSQL); the SQLite file goes with the run's directory."""
        if self.admin_url is None or self.name is None:
            return
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            await engine.dispose()


async def postgres_database(admin_url: str, name: str) -> Database:
    """Create database ``name`` through ``admin_url``; raises HubFailed when unreachable."""
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with asyncio.timeout(HTTP_TIMEOUT), engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, Exception) as exc:
        raise HubFailed(f"PostgreSQL at {_safe(admin_url)}: {type(exc).__name__}: {exc}") from exc
    finally:
        await engine.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return Database(url, admin_url, name)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def seed_workers(database_url: str, phones: list[tuple[Phone, str]]) -> None:
    """Insert one active worker per phone, as the directory would have created them."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": phone.worker_id,
            "name": f"Bench worker {index}",
            "phone": "",
            "grid": grid,
            "datum": "wgs84",
            "active": True,
            "duty": "unknown",
            "online": False,
            "created_at": now,
        }
        for index, (phone, grid) in enumerate(phones)
    ]
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            for start in range(0, len(rows), SEED_CHUNK):
                await conn.execute(insert(Worker), rows[start : start + SEED_CHUNK])
    finally:
        await engine.dispose()


async def count_positions(database_url: str) -> tuple[int, int]:
    """Rows in ``positions`` and distinct (worker, fix time) pairs among them."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.scalar(select(func.count()).select_from(Position))
            pairs = select(Position.worker_id, Position.fix_time).distinct().subquery()
            distinct = await conn.scalar(select(func.count()).select_from(pairs))
    finally:
        await engine.dispose()
    return int(rows or 0), int(distinct or 0)


# ---- the hub process ----------------------------------------------------------------------


@dataclass
class HubProcess:
    """A running ``hub serve``: its port and process; reads its CPU time and counters."""

    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    http: aiohttp.ClientSession = field(repr=False)

    def alive(self) -> bool:
        """Whether the hub is still running."""
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the hub process so far."""
        try:
            times = psutil.Process(self.proc.pid).cpu_times()
        except psutil.NoSuchProcess:
            return float("nan")
        return float(times.user + times.system)

    async def counters(self) -> dict[str, float]:
        """The position pipeline's counters from ``/metrics`` (refused: all reasons)."""
        url = f"http://{HOST}:{self.port}/metrics"
        async with self.http.get(url) as response:
            body = await response.text()
        values = {"stored": 0.0, "duplicate": 0.0, "pushed": 0.0, "refused": 0.0}
        for line in body.splitlines():
            name, _, value = line.rpartition(" ")
            if name == "hub_positions_stored_total":
                values["stored"] = float(value)
            elif name == "hub_positions_duplicate_total":
                values["duplicate"] = float(value)
            elif name == "hub_positions_pushed_total":
                values["pushed"] = float(value)
            elif name.startswith("hub_phone_messages_refused_total{"):
                values["refused"] += float(value)
        return values

    def stop(self) -> None:
        """SIGTERM the hub's process group, SIGKILL it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def hub_env(
    database_url: str, port: int, mqtt_url: str, client_id: str, prefix: str
) -> dict[str, str]:
    """The hub's environment: inherited settings dropped, everything the run needs set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_HOST=HOST,
        HUB_PORT=str(port),
        HUB_DATABASE_URL=database_url,
        HUB_JWT_SECRET=JWT_SECRET,
        HUB_DEMO_DATA="true",
        HUB_LOG_LEVEL="WARNING",
        HUB_MQTT_URL=mqtt_url,
        HUB_MQTT__CLIENT_ID=client_id,
        HUB_MQTT__TOPIC_PREFIX=prefix,
    )
    return env


def _hub_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub", *args]


async def _run(argv: list[str], env: dict[str, str], log_path: Path, timeout: float) -> int:
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
        )  # fmt: skip
        try:
            return await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise


@contextlib.asynccontextmanager
async def running_hub(env: dict[str, str], log_path: Path) -> AsyncIterator[HubProcess]:
    """Migrate the database, start ``hub serve`` and wait for ``/readyz``; stop it on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    code = await _run(_hub_command("db", "upgrade"), env, log_path, MIGRATE_TIMEOUT)
    if code != 0:
        raise HubFailed(f"hub db upgrade exited {code}:\n{_log_tail(log_path)}")
    port = int(env["HUB_PORT"])
    with log_path.open("ab") as log:
        # Popen rather than asyncio's subprocess: stop() signals the process group itself.
        proc = subprocess.Popen(  # noqa: ASYNC220
            _hub_command("serve"),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, no Ctrl-C from the terminal
            preexec_fn=die_with_parent,  # safe: the orchestrator forks before any thread
        )
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        hub = HubProcess(port, proc, log_path, http)
        try:
            await _wait_ready(hub)
            yield hub
        finally:
            hub.stop()


async def _wait_ready(hub: HubProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    url = f"http://{HOST}:{hub.port}/readyz"
    while True:
        if not hub.alive():
            raise HubFailed(f"hub exited with {hub.proc.returncode}:\n{_log_tail(hub.log_path)}")
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with hub.http.get(url) as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise HubFailed(f"hub not ready after {READY_TIMEOUT}s:\n{_log_tail(hub.log_path)}")
        await asyncio.sleep(0.1)


def free_hub_port() -> int:
    """A free port for the hub's HTTP server."""
    return free_port(HOST)


# ---- live pushes --------------------------------------------------------------------------


class PushWatcher:
    """A Centrifugo-protocol WebSocket subscriber of ``org:d01`` that notes each worker's
    ``worker.position`` pushes: how many, when the last came, the newest fix time seen."""

    def __init__(self) -> None:
        self.total = 0
        self.last_recv = 0.0
        self.newest: dict[str, float] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def wait_for(self, total: int, timeout: float) -> None:
        """Return once ``total`` pushes arrived since :meth:`arm`; TimeoutError if not."""
        async with asyncio.timeout(timeout):
            while self.total < total:
                self._changed.clear()
                await self._changed.wait()

    def arm(self) -> None:
        """Count from zero."""
        self.total = 0
        self.last_recv = 0.0

    async def start(self, http: aiohttp.ClientSession, port: int) -> None:
        """Connect, authenticate and subscribe; return once subscribed."""
        token = mint_token(JWT_SECRET, user="bench-watch", org="d01", roles=["admin"], ttl=3600)
        ws = await http.ws_connect(f"ws://{HOST}:{port}/connection/websocket")
        self._ws = ws
        await ws.send_str(orjson.dumps({"id": 1, "connect": {"token": token}}).decode())
        await ws.send_str(orjson.dumps({"id": 2, "subscribe": {"channel": WATCH_CHANNEL}}).decode())
        async with asyncio.timeout(HTTP_TIMEOUT):
            while True:
                reply = await ws.receive()
                if reply.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raise HubFailed(f"WebSocket closed while subscribing: {reply.type}")
                lines = [orjson.loads(x) for x in _lines(reply.data) if x != b"{}"]
                if any("error" in line for line in lines):
                    raise HubFailed(f"hub refused the WebSocket subscriber: {lines}")
                if any(line.get("id") == 2 for line in lines):
                    break
        self._reader = asyncio.create_task(self._read(ws), name="push watcher")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                break
            for line in _lines(message.data):
                if line == b"{}":
                    await ws.send_str("{}")  # the server's ping
                elif b'"worker.position"' in line:
                    self._position(orjson.loads(line))

    def _position(self, push: dict[str, Any]) -> None:
        data = push["push"]["pub"]["data"]["data"]
        self.total += 1
        self.last_recv = time.time()
        worker = data["worker_id"]
        self.newest[worker] = max(self.newest.get(worker, 0.0), float(data["fix_time"]))
        self._changed.set()

    async def close(self) -> None:
        """Close the WebSocket and stop reading."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def _lines(data: str | bytes) -> list[bytes]:
    raw = data.encode() if isinstance(data, str) else data
    return [line for line in raw.split(b"\n") if line]
