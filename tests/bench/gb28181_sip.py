"""Keepalive half of the GB/T 28181 benchmark: sipp's keepalive.xml at rising rates against
the hub's SIP server, and against sipp itself as the UAS (the peer), in the same run.

K devices register to the hub first (GbDevice stand-ins over UDP, each with one channel,
so the hub's catalog sync after a registration has someone to answer it); the keepalives
then come from one sipp client cycling through their ids (``-inf``). The hub's
``keepalive_interval`` is an hour, so no device goes offline and the hub writes nothing to
the database for a keepalive: what is measured is the SIP/MANSCDP hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from hub.db.migrate import upgrade
from tests.bench.machine import MachineMeter
from tests.support.gb_device import GbDevice
from tests.support.hubs import HubProcess, hub_process, make_settings, settings_env
from tests.support.sipp import SIPP, SippResult, run_sipp, scenario_path, write_injection

HUB_ID = "34020000002000000001"
DOMAIN = "3402000000"
PASSWORD = "bench-gb-password"
DEVICE_PREFIX = "3402000000132"
CHANNEL_PREFIX = "3402000000131"
CIVIL_CODE = "340200"
KEEPALIVE_INTERVAL = 3600.0
"""The hub's expected keepalive interval in the throughput runs: nobody goes offline."""
REGISTER_BATCH = 50
REGISTER_TIMEOUT = 60.0
CATALOG_TIMEOUT = 60.0
CONCURRENT_CALLS = 500
"""sipp ``-l``: outstanding keepalives at most (125 ms of backlog at 4,000/s, under the
500 ms retransmission timer of keepalive.xml)."""
SIPP_GRACE = 30.0
"""Seconds a sipp run may take beyond its nominal duration (retransmissions, slow peer)."""
UAS_READY_TIMEOUT = 5.0
SUSTAINED_FRACTION = 0.97
"""A rate counts as sustained when no call failed and this share of the target got through."""
POLL = 0.2


@dataclass
class RateRun:
    """One sipp keepalive run at one target rate against one server."""

    server: str
    target_rate: int
    calls: int
    successful: int = 0
    failed: int = 0
    sipp_elapsed: float = math.nan
    """sipp's own StartTime → CurrentTime of its last statistics row (first call to last)."""
    wall_seconds: float = math.nan
    server_cpu_percent: float = math.nan
    """User + system CPU of the server process over the run, % of one core."""
    machine_percent: float = math.nan
    server_counted: int | None = None
    """Keepalives the hub itself counted during the run (its /metrics), hub runs only."""
    retransmissions: int | None = None
    """Retransmitted requests the hub answered from its transaction cache during the run."""
    sipp_retransmissions: int = 0
    """Requests sipp sent again after 500 ms without an answer (a sign of dropped datagrams)."""
    udp_rcvbuf_errors: int = 0
    """Machine-wide UDP receive-buffer overflows during the run (/proc/net/snmp)."""
    failure_kinds: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def achieved(self) -> float:
        """Successful keepalives per second over sipp's elapsed time."""
        if not self.sipp_elapsed or not math.isfinite(self.sipp_elapsed):
            return math.nan
        return self.successful / self.sipp_elapsed

    @property
    def sustained(self) -> bool:
        """No failure and (nearly) the whole target rate got through."""
        return (
            self.error is None
            and self.failed == 0
            and self.successful == self.calls
            and self.achieved >= SUSTAINED_FRACTION * self.target_rate
        )


def device_ids(count: int) -> list[str]:
    """``count`` 20-digit device ids: 3402000000132 + a 7-digit number."""
    return [f"{DEVICE_PREFIX}{n:07d}" for n in range(1, count + 1)]


def free_sip_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the hub binds both)."""
    for _ in range(50):
        port = random.randrange(20000, 60000)
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP+TCP port found on 127.0.0.1")


def gb_env(db_url: str, sip_port: int, keepalive_interval: float) -> dict[str, str]:
    """Environment of a ``hub serve`` with GB/T 28181 on, SQLite, the memory bus."""
    env = settings_env(make_settings(db_url, None))
    media_low = random.randrange(31000, 59000, 100)
    env.update(
        HUB_LOG_LEVEL="WARNING",
        HUB_GB28181__ENABLED="true",
        HUB_GB28181__HOST="127.0.0.1",
        HUB_GB28181__PORT=str(sip_port),
        HUB_GB28181__PASSWORD=PASSWORD,
        HUB_GB28181__MEDIA_IP="127.0.0.1",
        HUB_GB28181__MEDIA_PORT_MIN=str(media_low),
        HUB_GB28181__MEDIA_PORT_MAX=str(media_low + 99),
        HUB_GB28181__KEEPALIVE_INTERVAL=str(keepalive_interval),
    )
    return env


async def scrape(http: aiohttp.ClientSession, hub: HubProcess) -> dict[str, float]:
    """The hub's ``hub_gb28181_*`` samples from /metrics, keyed by name{labels}."""
    async with http.get(hub.url + "/metrics", timeout=aiohttp.ClientTimeout(total=10)) as resp:
        text = await resp.text()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("hub_gb28181_"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
    return samples


def sample(samples: dict[str, float], name: str) -> int:
    """One counter (summed over its labels when it has several)."""
    total = sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))
    return int(total)


def stand_in(sip_port: int, device_id: str) -> GbDevice:
    """A device with one channel (its number shares the device's last 7 digits)."""
    channel = (f"{CHANNEL_PREFIX}{device_id[-7:]}", f"bench {device_id[-4:]}", CIVIL_CODE)
    return GbDevice(hub_port=sip_port, hub_id=HUB_ID, domain=DOMAIN, device_id=device_id,
                    password=PASSWORD, channels=[channel])  # fmt: skip


async def register_devices(hub: HubProcess, sip_port: int, ids: list[str]) -> list[GbDevice]:
    """Register every id (digest) and wait for the hub's catalog sync of each to end."""
    devices = [stand_in(sip_port, device_id) for device_id in ids]
    try:
        async with asyncio.timeout(REGISTER_TIMEOUT):
            for start in range(0, len(devices), REGISTER_BATCH):
                batch = devices[start : start + REGISTER_BATCH]
                await asyncio.gather(*(d.start() for d in batch))
                codes = await asyncio.gather(*(d.register() for d in batch))
                refused = [c for c in codes if c != 200]
                if refused:
                    raise RuntimeError(f"REGISTER answered {refused[0]} ({len(refused)} devices)")
    except TimeoutError as err:
        await close_devices(devices)
        raise RuntimeError(
            f"{len(ids)} devices did not register in {REGISTER_TIMEOUT:.0f} s"
        ) from err
    except BaseException:
        await close_devices(devices)
        raise
    # The catalog syncs end in the hub (a cross-process condition: poll its counters).
    deadline = time.monotonic() + CATALOG_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while True:
            done = sample(await scrape(http, hub), "hub_gb28181_catalog_syncs_total")
            if done >= len(ids):
                break
            if time.monotonic() > deadline:
                await close_devices(devices)
                raise RuntimeError(f"only {done}/{len(ids)} catalog syncs ended in time")
            await asyncio.sleep(POLL)
    return devices


async def close_devices(devices: list[GbDevice]) -> None:
    """Close every stand-in."""
    await asyncio.gather(*(d.close() for d in devices), return_exceptions=True)


def sipp_elapsed(result: SippResult) -> float:
    """Seconds from sipp's start to its last statistics row (epoch in the 3rd tab field)."""
    try:
        start = float(result.stats["StartTime"].split("\t")[-1])
        current = float(result.stats["CurrentTime"].split("\t")[-1])
    except (KeyError, ValueError, IndexError):
        return math.nan
    return current - start


def udp_rcvbuf_errors() -> int:
    """The kernel's count of UDP datagrams dropped for a full receive buffer (0 if unknown)."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    except OSError:
        return 0
    udp = [ln for ln in lines if ln and ln[0] == "Udp:"]
    if len(udp) < 2 or "RcvbufErrors" not in udp[0]:
        return 0
    return int(udp[1][udp[0].index("RcvbufErrors")])


def failure_kinds(result: SippResult) -> dict[str, int]:
    """The non-zero cumulative failure counters of sipp's statistics."""
    kinds = {}
    for key, value in result.stats.items():
        counted = key.startswith("Failed") and key.endswith("(C)") and key != "FailedCall(C)"
        if counted and value.strip().isdigit() and int(value):
            kinds[key[len("Failed") : -len("(C)")]] = int(value)
    return kinds


async def keepalive_run(
    server: str, target: str, process: psutil.Process, ids_file: Path, rate: int, seconds: float
) -> RateRun:
    """One keepalive.xml run at ``rate`` for ``seconds`` worth of calls."""
    calls = int(rate * seconds)
    run = RateRun(server, rate, calls)
    args = [
        "-i", "127.0.0.1", "-inf", str(ids_file), "-key", "hub_id", HUB_ID, "-key", "domain",
        DOMAIN, "-r", str(rate), "-m", str(calls), "-l", str(CONCURRENT_CALLS),
    ]  # fmt: skip
    meter = MachineMeter()
    meter.start()
    times = process.cpu_times()
    cpu_before, started = times.user + times.system, time.monotonic()
    drops_before = udp_rcvbuf_errors()
    result = await run_sipp("keepalive", target, extra_args=args, timeout=seconds + SIPP_GRACE)
    times = process.cpu_times()
    run.wall_seconds = time.monotonic() - started
    run.server_cpu_percent = (times.user + times.system - cpu_before) / run.wall_seconds * 100
    run.machine_percent = meter.percent()
    run.successful, run.failed = result.successful, result.failed
    run.sipp_elapsed = sipp_elapsed(result)
    run.failure_kinds = failure_kinds(result)
    run.udp_rcvbuf_errors = udp_rcvbuf_errors() - drops_before
    retransmissions = result.stats.get("Retransmissions(C)", "0").strip()
    run.sipp_retransmissions = int(retransmissions) if retransmissions.isdigit() else 0
    if not result.stats:
        run.error = f"sipp exited {result.returncode} without statistics: " + (
            result.stderr_tail.strip()[-300:] or result.stdout_tail.strip()[-300:]
        )
    elif result.successful + result.failed < calls:
        run.error = f"sipp stopped after {result.successful + result.failed}/{calls} calls"
    return run


def print_run(run: RateRun) -> None:
    """One progress line."""
    extra = ""
    if run.server_counted is not None:
        extra = f", hub counted {run.server_counted}, retrans answered {run.retransmissions}"
    print(
        f"  {run.server:8} {run.target_rate:5}/s: {run.achieved:7.0f}/s ok "
        f"({run.successful}/{run.calls}, {run.failed} failed"
        f"{' ' + str(run.failure_kinds) if run.failure_kinds else ''}), "
        f"server {run.server_cpu_percent:5.1f}% of a core, machine {run.machine_percent:3.0f}%, "
        f"sipp retrans {run.sipp_retransmissions}, UDP rcvbuf drops {run.udp_rcvbuf_errors}"
        f"{extra}" + (f"  ERROR {run.error}" if run.error else ""),
        flush=True,
    )


async def hub_rates(
    rates: list[int], seconds: float, devices: int, tmp: Path, log_dir: Path
) -> tuple[list[RateRun], Path]:
    """Every rate against one hub process; returns the runs and the hub's log."""
    db_url = f"sqlite+aiosqlite:///{tmp / 'hub-gb-keepalive.db'}"
    await asyncio.to_thread(upgrade, db_url)
    sip_port = free_sip_port()
    ids = device_ids(devices)
    ids_file = write_injection(tmp / "device-ids.csv", ids)
    runs: list[RateRun] = []
    with hub_process(gb_env(db_url, sip_port, KEEPALIVE_INTERVAL), log_dir) as hub:
        hub.start()
        await hub.wait_ready(60)
        assert hub.proc is not None
        process = psutil.Process(hub.proc.pid)
        started = time.monotonic()
        stand_ins = await register_devices(hub, sip_port, ids)
        print(f"  {devices} devices registered, catalogs synced in "
              f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                for rate in rates:
                    before = await scrape(http, hub)
                    run = await keepalive_run(
                        "hub", f"127.0.0.1:{sip_port}", process, ids_file, rate, seconds
                    )
                    after = await scrape(http, hub)
                    name = "hub_gb28181_keepalives_total"
                    run.server_counted = sample(after, name) - sample(before, name)
                    name = "hub_gb28181_sip_retransmissions_answered_total"
                    run.retransmissions = sample(after, name) - sample(before, name)
                    runs.append(run)
                    print_run(run)
                    if hub.proc.poll() is not None:
                        raise RuntimeError(f"the hub exited (code {hub.proc.returncode})")
        finally:
            await close_devices(stand_ins)
        return runs, hub.log_path


async def peer_rates(rates: list[int], seconds: float, devices: int, tmp: Path) -> list[RateRun]:
    """Every rate against sipp as the UAS (keepalive_uas.xml)."""
    port = free_sip_port()
    ids_file = write_injection(tmp / "peer-ids.csv", device_ids(devices))
    work = Path(tempfile.mkdtemp(prefix="sipp-uas-", dir=tmp))
    with (work / "stderr.log").open("wb") as stderr:
        uas = await asyncio.create_subprocess_exec(
            SIPP, "-sf", str(scenario_path("keepalive_uas")), "-i", "127.0.0.1",
            "-p", str(port), "-t", "u1", "-nostdin",
            "-trace_err", "-error_file", str(work / "errors.log"),
            cwd=work, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    runs: list[RateRun] = []
    try:
        process = psutil.Process(uas.pid)
        await wait_udp_bound(uas, port)
        for rate in rates:
            run = await keepalive_run(
                "sipp-uas", f"127.0.0.1:{port}", process, ids_file, rate, seconds
            )
            runs.append(run)
            print_run(run)
    finally:
        if uas.returncode is None:
            uas.terminate()
        try:
            await asyncio.wait_for(uas.wait(), 5)
        except TimeoutError:
            uas.kill()
            await uas.wait()
    return runs


async def wait_udp_bound(proc: asyncio.subprocess.Process, port: int) -> None:
    """Wait until the UAS holds its UDP port (it cannot be bound by us any more)."""
    deadline = time.monotonic() + UAS_READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"sipp UAS exited ({proc.returncode}) before binding its port")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"sipp UAS did not bind 127.0.0.1:{port} in {UAS_READY_TIMEOUT} s")
