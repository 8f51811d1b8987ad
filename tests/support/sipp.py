"""Run SIPp (Debian's sip-tester) scenarios against the hub's GB28181 SIP port.

Scenarios live in ``tests/support/sipp/``; see each file's header comment for its keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SIPP = "/usr/bin/sipp"
SCENARIO_DIR = Path(__file__).parent / "sipp"
STDERR_TAIL = 2000
STOP_GRACE = 5.0


@dataclass
class SippResult:
    """What one SIPp run did: exit code, call counts from its statistics, output tails."""

    returncode: int
    successful: int
    failed: int
    stats: dict[str, str] = field(default_factory=dict)
    stderr_tail: str = ""
    stdout_tail: str = ""
    errors_tail: str = ""


def sipp_available() -> bool:
    """True when the sipp binary is installed and executable."""
    return os.access(SIPP, os.X_OK) or shutil.which("sipp") is not None


def scenario_path(scenario: str) -> Path:
    """A scenario by name (``keepalive`` or ``keepalive.xml``) or by path."""
    path = Path(scenario)
    if path.exists():
        return path
    name = scenario if scenario.endswith(".xml") else f"{scenario}.xml"
    return SCENARIO_DIR / name


def write_injection(path: Path, device_ids: list[str]) -> Path:
    """Write an -inf CSV (one device id per line, read sequentially) for keepalive.xml."""
    with path.open("w", newline="") as handle:
        handle.write("SEQUENTIAL\n")
        writer = csv.writer(handle, delimiter=";", lineterminator=";\n")
        for device_id in device_ids:
            writer.writerow([device_id])
    return path


def _last_stats(stat_file: Path) -> dict[str, str]:
    """The last row of a -trace_stat CSV (';' separated, header on the first line)."""
    if not stat_file.exists():
        return {}
    lines = [line for line in stat_file.read_text(errors="replace").splitlines() if line]
    if len(lines) < 2:
        return {}
    header, last = lines[0].split(";"), lines[-1].split(";")
    return dict(zip(header, last, strict=False))


def _count(stats: dict[str, str], name: str) -> int:
    value = stats.get(name, "0").strip()
    return int(value) if value.isdigit() else 0


async def run_sipp(
    scenario: str,
    target: str,
    *,
    extra_args: list[str] | None = None,
    timeout: float = 60.0,
) -> SippResult:
    """Run sipp in the foreground on a scenario against target (host:port) and wait.

    target may be "" for the UAS scenarios (they answer whoever calls ``-p <port>``).
    """
    path = scenario_path(scenario)
    with tempfile.TemporaryDirectory(prefix="sipp-") as tmp:
        work = Path(tmp)
        stat_file = work / "stats.csv"
        error_file = work / "errors.log"
        args = [
            "-sf", str(path), *([target] if target else []),
            "-nostdin",
            "-trace_stat", "-stf", str(stat_file), "-fd", "1",
            "-trace_err", "-error_file", str(error_file),
            "-timeout", f"{max(1, int(timeout))}s", "-timeout_error",
            *(extra_args or []),
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            SIPP,
            *args,
            cwd=work,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout + STOP_GRACE):
                stdout, stderr = await process.communicate()
        except TimeoutError:
            process.kill()
            stdout, stderr = await process.communicate()
        except BaseException:  # cancelled (a failing test): leave no sipp behind
            if process.returncode is None:
                process.kill()
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.shield(process.wait())
            raise
        stats = _last_stats(stat_file)
        errors = ""
        with contextlib.suppress(OSError):
            errors = error_file.read_text(errors="replace")[-STDERR_TAIL:]
        return SippResult(
            returncode=process.returncode if process.returncode is not None else -1,
            successful=_count(stats, "SuccessfulCall(C)"),
            failed=_count(stats, "FailedCall(C)"),
            stats=stats,
            stderr_tail=stderr.decode(errors="replace")[-STDERR_TAIL:],
            stdout_tail=stdout.decode(errors="replace")[-STDERR_TAIL:],
            errors_tail=errors,
        )
