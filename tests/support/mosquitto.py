"""A private ``mosquitto`` process for tests that stop, kill and restart the broker.

The shared Mosquitto on 127.0.0.1:1883 must never be restarted by a test; this one runs on
a free port from a temporary config (anonymous clients allowed, logging off) and is always
killed on exit. Persistence is off unless asked for; with ``persistence=True`` the broker
keeps its database in its temporary directory, so ``stop()`` (SIGTERM: the broker saves)
followed by ``start()`` brings back its sessions and queued messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.support.processes import stop_process
from tests.support.redis_server import free_port

MOSQUITTO = "mosquitto"
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"
"""Where Debian puts the broker; often not on a user's PATH."""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_POLL = 0.02


class MosquittoServer:
    """One mosquitto process on a fixed port; start, stop, kill, start again."""

    def __init__(
        self,
        port: int | None = None,
        *,
        listener_config: str = "",
        global_config: str = "allow_anonymous true\n",
        tls: bool = False,
        persistence: bool = False,
    ) -> None:
        """``listener_config`` goes under the listener (e.g. certfile lines),
        ``global_config`` after it (e.g. ``max_inflight_messages 0``, a password_file);
        ``persistence`` keeps sessions and queued messages across a graceful restart."""
        self.port = port or free_port()
        self.tls = tls
        self._proc: asyncio.subprocess.Process | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="hub-mosquitto-")
        self._config = Path(self._dir.name) / "mosquitto.conf"
        if persistence:
            # Saved on a graceful stop (and every autosave_interval, 30 min by default).
            # Started as root, mosquitto drops to its own user: let that user write here.
            Path(self._dir.name).chmod(0o711)
            data = Path(self._dir.name) / "data"
            data.mkdir()
            data.chmod(0o777)
            store = f"persistence true\npersistence_location {data}/\n"
        else:
            store = "persistence false\n"
        self._config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{listener_config}"
            f"{global_config}"
            f"{store}"
            "log_dest none\n"
        )

    @property
    def url(self) -> str:
        """The mqtt:// (or mqtts://) URL of this broker."""
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start the broker and return once it accepts TCP connections."""
        if self.running:
            return
        binary = shutil.which(MOSQUITTO, path=f"{os.environ.get('PATH', '')}:{SBIN_PATH}")
        if binary is None:
            raise RuntimeError(f"{MOSQUITTO} is not installed")
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(self._config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await self._wait_listening()
        except BaseException:
            await self.stop(signal.SIGKILL)
            raise

    async def _wait_listening(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while True:
            if self._proc is None or self._proc.returncode is not None:
                raise RuntimeError(f"mosquitto on port {self.port} exited at start")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port), timeout=1.0
                )
            except (OSError, TimeoutError):
                if loop.time() > deadline:
                    raise TimeoutError(f"mosquitto on port {self.port} did not start") from None
                await asyncio.sleep(_POLL)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process with ``sig`` (SIGKILL if it lingers) and wait for it."""
        proc, self._proc = self._proc, None
        await stop_process(proc, sig, STOP_TIMEOUT)

    async def kill(self) -> None:
        """Stop the broker abruptly, as a crash would."""
        await self.stop(signal.SIGKILL)

    async def restart(self) -> None:
        """Kill the broker and start it again on the same port: a fresh, empty one unless
        persistence is on (then it has what it last saved, e.g. at a graceful stop)."""
        await self.kill()
        await self.start()

    async def close(self) -> None:
        """Kill the broker if running and remove its directory."""
        try:
            await self.kill()
        finally:
            self._dir.cleanup()


@contextlib.asynccontextmanager
async def private_mosquitto(
    port: int | None = None, **config: Any
) -> AsyncIterator[MosquittoServer]:
    """A started private mosquitto (``config``: MosquittoServer's keywords), killed and
    cleaned up on exit."""
    server = MosquittoServer(port, **config)
    try:
        await server.start()
        yield server
    finally:
        await server.close()
