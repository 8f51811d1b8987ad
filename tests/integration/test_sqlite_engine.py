"""The SQLite engine lets go of its locks when a connection is closed in the middle of a
transaction while a statement of it is still referenced (a task cancelled mid-query: the
traceback keeps the cursor alive). SQLite keeps such a connection as a "zombie" until the
last statement is finalized, with its transaction and write lock, and every other writer
then waits out the busy timeout (seen as a 30 s stall at hub shutdown)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from hub.db.engine import make_engine


async def test_closing_a_connection_mid_transaction_releases_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "zombie.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1), (2)"))

        conn = await engine.connect()
        await conn.execute(text("INSERT INTO t VALUES (3)"))  # the write transaction is open
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        # A statement left unfinished and still referenced, as a cancelled query leaves it.
        pending = await driver.execute("SELECT x FROM t")
        await conn.invalidate()  # the pool closes the DBAPI connection (what terminate does)

        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # raises "database is locked" on a zombie
            other.execute("INSERT INTO t VALUES (4)")
            other.execute("COMMIT")
            rows = sorted(x for (x,) in other.execute("SELECT x FROM t"))
        finally:
            other.close()
        assert rows == [1, 2, 4]  # the closed connection's insert was rolled back
        del pending
    finally:
        await engine.dispose()
