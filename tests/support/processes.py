"""Stopping the server processes the tests start (private Redis, private Mosquitto)."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def stop_process(proc: asyncio.subprocess.Process | None, sig: int, timeout: float) -> None:
    """Stop ``proc`` with ``sig`` (SIGKILL if it lingers past ``timeout``) and reap it. A
    frozen (SIGSTOP) process gets SIGCONT first, or it could not act on the signal."""
    if proc is None:
        return
    if proc.returncode is not None:
        await proc.wait()
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.wait(), timeout=timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
