"""The servers under test, each run as its own subprocess on loopback.

:func:`start_server` launches one kind (``hub``, ``bare`` or ``socketio``) on a fresh port,
waits until its readiness probe answers and returns a :class:`ServerProcess` that reads
the process's CPU time and RSS (children included) and stops it, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from tests.bench.procutil import die_with_parent, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
MIGRATE_TIMEOUT = 180.0
PROBE_INTERVAL = 0.1
LOG_TAIL_BYTES = 4000

KINDS = ("hub", "bare", "socketio")


class ServerError(RuntimeError):
    """A server did not start (the message ends with the tail of its log)."""


def _python() -> str:
    venv_python = VENV_BIN / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def hub_available() -> str | None:
    """``None`` when the hub can be started here, else why not."""
    if not (PROJECT_ROOT / "hub" / "cli.py").exists():
        return "hub/cli.py does not exist yet"
    if not (PROJECT_ROOT / "hub" / "__main__.py").exists() and not (VENV_BIN / "hub").exists():
        return "neither hub/__main__.py nor .venv/bin/hub exists"
    return None


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError), path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return log.read().decode("utf-8", "replace")
    return ""


@dataclass
class ServerProcess:
    """A running server: its port, process, log, and the measurements taken of it."""

    kind: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def _processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        try:
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return [root]

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU seconds used so far by the server and its children."""
        user = system = 0.0
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                user += times.user
                system += times.system
        return user, system

    def rss(self) -> int:
        """Resident set size in bytes of the server and its children."""
        total = 0
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        return total

    def settled_rss(
        self, *, interval: float = 0.5, tolerance: int = 64 * 1024, limit: float = 10.0
    ) -> int:
        """RSS once two readings ``interval`` apart agree within ``tolerance`` bytes."""
        deadline = time.monotonic() + limit
        previous = self.rss()
        while time.monotonic() < deadline:
            time.sleep(interval)
            current = self.rss()
            if abs(current - previous) <= tolerance:
                return current
            previous = current
        return previous

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT)
        # Children that outlived their parent are still in the process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def _hub_env(port: int, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HUB_HOST=HOST,
        HUB_PORT=str(port),
        HUB_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        HUB_DEMO_DATA="true",
    )
    return env


def _hub_command(*args: str) -> list[str]:
    if (PROJECT_ROOT / "hub" / "__main__.py").exists():
        return [_python(), "-m", "hub", *args]
    return [str(VENV_BIN / "hub"), *args]


def _command(kind: str, port: int, workdir: Path, loop: str) -> tuple[list[str], dict[str, str]]:
    if kind == "hub":
        return _hub_command("serve"), _hub_env(port, workdir)
    module = {"bare": "tests.bench.peer_bare", "socketio": "tests.bench.peer_socketio"}[kind]
    argv = [_python(), "-m", module, "--host", HOST, "--port", str(port), "--loop", loop]
    return argv, dict(os.environ)


def _migrate_hub(workdir: Path, log_path: Path) -> None:
    env = _hub_env(free_port(HOST), workdir)
    with log_path.open("ab") as log:
        result = subprocess.run(
            _hub_command("db", "upgrade"),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=MIGRATE_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        raise ServerError(f"hub db upgrade exited {result.returncode}:\n{_log_tail(log_path)}")


def _probe(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_server(kind: str, workdir: Path, log_dir: Path, *, loop: str = "uvloop") -> ServerProcess:
    """Start a server of ``kind`` in ``workdir`` and return once it is ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(HOST)
    log_path = log_dir / f"{workdir.name}-{port}.log"
    if kind == "hub":
        _migrate_hub(workdir, log_path)
    argv, env = _command(kind, port, workdir, loop)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group, and no Ctrl-C from the terminal
            preexec_fn=die_with_parent,  # safe: the orchestrator has no threads
        )
    server = ServerProcess(kind, port, proc, log_path)
    probe_path = "/readyz" if kind == "hub" else "/healthz"
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while not _probe(port, probe_path):
            if not server.alive():
                raise ServerError(f"{kind} exited with {proc.returncode}:\n{_log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{kind} not ready after {READY_TIMEOUT}s:\n{_log_tail(log_path)}"
                )
            time.sleep(PROBE_INTERVAL)
    except BaseException:
        server.stop()
        raise
    return server
