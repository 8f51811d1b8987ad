"""A private ``redis-server`` process for tests that stop, freeze and restart Redis.

The shared Redis on 127.0.0.1:6379 must never be restarted by a test; this one runs on a
free port, keeps nothing on disk (``--save "" --appendonly no``) and is always killed on
exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator

from tests.support.processes import stop_process

REDIS_SERVER = "redis-server"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_POLL = 0.02


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on a fixed port; start, stop, freeze, start again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._proc: asyncio.subprocess.Process | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="hub-redis-")

    @property
    def url(self) -> str:
        """The redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the process is alive (possibly frozen)."""
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start the server and return once it answers PING."""
        if self.running:
            return
        binary = shutil.which(REDIS_SERVER)
        if binary is None:
            raise RuntimeError(f"{REDIS_SERVER} is not on PATH")
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--logfile", "",
            "--daemonize", "no",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await self._wait_answering()
        except BaseException:
            await self.stop(signal.SIGKILL)
            raise

    async def _wait_answering(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while True:
            if self._proc is None or self._proc.returncode is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited at start")
            if await self._pings():
                return
            if loop.time() > deadline:
                raise TimeoutError(f"redis-server on port {self.port} did not start")
            await asyncio.sleep(_POLL)

    async def _pings(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), timeout=1.0
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout=1.0)
            return line.startswith(b"+PONG")
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process with ``sig`` (SIGKILL if it lingers) and wait for it."""
        proc, self._proc = self._proc, None
        await stop_process(proc, sig, STOP_TIMEOUT)

    async def kill(self) -> None:
        """Stop the server abruptly, as a crash would."""
        await self.stop(signal.SIGKILL)

    async def restart(self) -> None:
        """Kill the server and start a fresh, empty one on the same port."""
        await self.kill()
        await self.start()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a silently dead peer)."""
        if self._proc is not None and self._proc.returncode is None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: undo freeze."""
        if self._proc is not None and self._proc.returncode is None:
            os.kill(self._proc.pid, signal.SIGCONT)

    async def close(self) -> None:
        """Kill the server if running and remove its directory."""
        try:
            await self.kill()
        finally:
            self._dir.cleanup()


@contextlib.asynccontextmanager
async def private_redis(port: int | None = None) -> AsyncIterator[RedisServer]:
    """A started private redis-server, killed and cleaned up on exit."""
    server = RedisServer(port)
    try:
        await server.start()
        yield server
    finally:
        await server.close()
