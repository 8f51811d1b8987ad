"""Building hub settings and running hubs in tests: in-process (aiohttp test server) or
as a real subprocess (``hub serve``) for multi-process and crash tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from hub.auth.tokens import mint_token
from hub.config import ApiKey, Settings

TEST_SECRET = "test-secret-for-grid-hub-tests-0123456789"
API_KEY = ApiKey(id="test-system", name="test system", secret="test-api-secret", org="d01")  # type: ignore[arg-type]
NARROW_KEY = ApiKey(id="street-system", name="street", secret="street-secret", org="d01.s01")  # type: ignore[arg-type]
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(database_url: str, redis_url: str | None, **overrides: Any) -> Settings:
    """Settings for a test hub: demo directory, test secret and keys."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "jwt_secret": TEST_SECRET,
        "api_keys": [API_KEY, NARROW_KEY],
        "demo_data": True,
        "log_level": "WARNING",
        # Tests about grid phones switch MQTT on against the real Mosquitto.
        "mqtt": {"enabled": False},
    }
    values.update(overrides)
    return Settings(**values)


def token(user: str, org: str, roles: list[str], ttl: int = 3600) -> str:
    """A token signed with the test secret."""
    return mint_token(TEST_SECRET, user=user, org=org, roles=roles, ttl=ttl)


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a subprocess."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        HUB_DATABASE_URL=settings.database_url,
        HUB_JWT_SECRET=TEST_SECRET,
        HUB_API_KEYS=json.dumps(
            [
                {"id": k.id, "name": k.name, "secret": k.secret.get_secret_value(), "org": k.org}
                for k in settings.api_keys
            ]
        ),
        HUB_DEMO_DATA="true",
        HUB_LOG_LEVEL="INFO",
        HUB_LOG_FORMAT="json",
        HUB_MQTT__ENABLED="true" if settings.mqtt.enabled else "false",
    )
    if settings.redis_url:
        env["HUB_REDIS_URL"] = settings.redis_url
        env["HUB_BUS__REDIS_PREFIX"] = settings.bus.redis_prefix
    return env


class HubProcess:
    """A hub running as a real ``hub serve`` subprocess."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = dict(env)
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """WebSocket endpoint."""
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    def start(self, **extra_env: str) -> None:
        """Start the process (does not wait for readiness)."""
        env = dict(self.env, HUB_PORT=str(self.port), HUB_HOST="127.0.0.1", **extra_env)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub", "serve"], env=env, stdout=log, stderr=log, cwd=REPO
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll /readyz until 200 (a cross-process condition: polling is the way)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"hub exited early:\n{self.log_path.read_text()[-3000:]}")
                try:
                    async with http.get(self.url + "/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"hub not ready:\n{self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal and reap the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Graceful stop (SIGTERM)."""
        self.kill(signal.SIGTERM)


@contextmanager
def hub_process(env: dict[str, str], log_dir: Path) -> Iterator[HubProcess]:
    """A HubProcess that is always stopped at the end."""
    proc = HubProcess(env, free_port(), log_dir / f"hub-{free_port()}.log")
    try:
        yield proc
    finally:
        proc.kill()


def copy_file(src: Path, dst: Path) -> None:
    """Copy a SQLite database file."""
    shutil.copyfile(src, dst)
