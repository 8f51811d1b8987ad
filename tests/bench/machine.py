"""How busy the machine is apart from the benchmark, so noisy results can be recognised.

The benchmark shares the CPUs with whatever else runs; other busy processes shorten the
server's time slices and skew every figure. The orchestrator lists them at the start and
records the machine's CPU use while its own processes sit idle before each publication.
"""

from __future__ import annotations

import contextlib
import os

import psutil  # type: ignore[import-untyped]  # no stubs in the venv

BUSY_PROCESS_PERCENT = 5.0
"""A foreign process using more than this share of one CPU is reported."""


def busy_processes(sample_seconds: float = 1.0) -> tuple[float, list[str]]:
    """Machine CPU use in percent over ``sample_seconds`` and the busy processes in it."""
    me = os.getpid()
    processes = []
    for process in psutil.process_iter(["pid", "cmdline", "name"]):
        if process.pid == me:
            continue
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
            processes.append(process)
    machine = float(psutil.cpu_percent(interval=sample_seconds))
    busy = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            share = float(process.cpu_percent(None))
            if share > BUSY_PROCESS_PERCENT:
                command = " ".join(process.info["cmdline"] or [process.info["name"]])
                busy.append(f"pid {process.pid} {share:.0f}%: {command[:80]}")
    return machine, busy


class MachineMeter:
    """Machine-wide CPU use between :meth:`start` and :meth:`percent`."""

    def start(self) -> None:
        """Begin a measurement window."""
        psutil.cpu_percent(None)

    def percent(self) -> float:
        """Percent of all CPUs busy since :meth:`start`."""
        return float(psutil.cpu_percent(None))
