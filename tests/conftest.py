"""Shared fixtures: backend-parametrised hubs on real SQLite/PostgreSQL and memory/Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from hub.app import create_app
from hub.config import Settings
from hub.db.engine import make_engine
from hub.db.migrate import upgrade
from hub.state import HUB, Hub
from tests.support.hubs import copy_file, make_settings
from tests.support.services import POSTGRES_ADMIN_URL, REDIS_URL, require_postgres, require_redis

BACKENDS = ["sqlite-memory", "postgres-redis"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated; dropped at the end."""
    require_postgres()
    name = f"hub_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    # This session fixture may first be requested from inside a running event loop (an
    # async fixture): do the blocking set-up on a thread of its own.
    in_thread(lambda: asyncio.run(admin(f'CREATE DATABASE "{name}"')))
    in_thread(lambda: upgrade(url))
    yield url
    in_thread(lambda: asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


def in_thread(fn: Callable[[], object]) -> None:
    """Run blocking ``fn`` on a separate thread and wait for it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn).result()


@dataclass
class Backend:
    """Which database and bus a test runs on."""

    name: str
    database_url: str
    redis_url: str | None
    redis_prefix: str


@pytest.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Backend]:
    """Parametrised backend: SQLite + memory bus, PostgreSQL + Redis."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite-memory":
        db = tmp_path / "hub.db"
        copy_file(sqlite_template, db)
        yield Backend(request.param, f"sqlite+aiosqlite:///{db}", None, prefix)
        return
    require_redis()
    url = request.getfixturevalue("postgres_database")
    await _truncate(url)
    yield Backend(request.param, url, REDIS_URL, prefix)
    await delete_redis_prefix(prefix)


@pytest.fixture
async def sqlite_backend(tmp_path: Path, sqlite_template: Path) -> Backend:
    """SQLite + memory bus only (for tests whose subject is not the backend)."""
    db = tmp_path / "hub.db"
    copy_file(sqlite_template, db)
    return Backend("sqlite-memory", f"sqlite+aiosqlite:///{db}", None, "unused")


TEST_TABLES = (
    "outbox", "idempotency_keys", "seen_signatures", "positions", "latest_positions",
    "workers", "notice_recipients", "notices", "sms_match_keys", "sms_parts",
    "sms_messages", "sms_inbound", "citymgmt_deliveries", "citymgmt_cursors",
    "case_entries", "case_attachments", "cases", "case_counters", "cameras", "recordings",
    "case_org_tallies", "case_assignee_tallies", "case_tally_keys", "case_tally_marks",
    "consultation_recordings", "consultation_participants", "consultations",
    "video_channels", "video_devices",
)  # fmt: skip
"""The tables a test may fill; the other two (org_nodes, users) hold migration data."""


async def _truncate(url: str) -> None:
    """Empty the test tables that hold rows (one query finds them): TRUNCATE costs a few
    milliseconds per table named, and most tests leave most tables empty."""
    engine = make_engine(url)
    async with engine.begin() as conn:
        probe = " UNION ALL ".join(
            f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {t})" for t in TEST_TABLES
        )
        filled = [row[0] for row in await conn.execute(text(probe))]
        if filled:
            # CASCADE: an empty table referencing a filled one must be named too.
            await conn.execute(text(f"TRUNCATE {', '.join(filled)} CASCADE"))
    await engine.dispose()


async def delete_redis_prefix(prefix: str) -> None:
    """Delete every key a test wrote under its prefix."""
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def backend_settings(backend: Backend, **overrides: Any) -> Settings:
    """Test settings for a backend."""
    settings = make_settings(backend.database_url, backend.redis_url, **overrides)
    settings.bus.redis_prefix = backend.redis_prefix
    return settings


@dataclass
class RunningHub:
    """A hub served in-process on a real socket."""

    server: TestServer
    app: web.Application

    @property
    def hub(self) -> Hub:
        """The hub's services."""
        return self.app[HUB]

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return str(self.server.make_url("")).rstrip("/")

    @property
    def ws_url(self) -> str:
        """The WebSocket endpoint."""
        return self.url.replace("http://", "ws://") + "/connection/websocket"


async def start_hub(settings: Settings) -> RunningHub:
    """Start a hub on 127.0.0.1 on a free port."""
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return RunningHub(server, app)


@pytest.fixture
async def running_hub(backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub on the parametrised backend."""
    hub = await start_hub(backend_settings(backend))
    try:
        yield hub
    finally:
        await hub.server.close()


@pytest.fixture
async def sqlite_hub(sqlite_backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub on SQLite + memory bus."""
    hub = await start_hub(backend_settings(sqlite_backend))
    try:
        yield hub
    finally:
        await hub.server.close()
