"""Real backing services for tests: PostgreSQL and Redis on this machine. A test that needs
one fails loudly when it is down (the suite never skips them)."""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_port(host: str, port: int, what: str) -> None:
    """Fail the test (never skip) when ``what`` does not listen on host:port."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as err:
        pytest.fail(
            f"{what} is not reachable at {host}:{port} ({err}). `make test` starts it; "
            "start it by hand with the command in README.md (Development).",
            pytrace=False,
        )


def require_postgres() -> None:
    """PostgreSQL must be up."""
    require_port("127.0.0.1", 5432, "PostgreSQL")


def require_redis() -> None:
    """Redis must be up."""
    require_port("127.0.0.1", 6379, "Redis")
