"""Engine and session factory; one session per unit of work, never shared between tasks."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from hub.errors import NotReadyError


class _SqliteConnection(sqlite3.Connection):
    """Rolls back before closing. SQLite closes a connection that still has a statement
    (a cursor kept alive by the traceback of a query cancelled mid-flight) only once that
    statement is finalized, and until then keeps its transaction and write lock: every
    other writer would wait out the busy timeout."""

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # closing anyway; close() reports the rest
            if self.in_transaction:
                self.rollback()
        super().close()


def make_engine(url: str) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and a busy timeout so the relay and
    request handlers do not trip over each other's locks."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 30, "factory": _SqliteConnection}}
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory with ``expire_on_commit=False``."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_database(engine: AsyncEngine) -> None:
    """Raise NotReadyError unless a trivial query succeeds."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as err:
        raise NotReadyError(f"database unreachable: {type(err).__name__}") from err
