"""Live-view half of the GB/T 28181 benchmark: the hub's CPU for one WHEP viewer of a 720p
25 fps H.264 camera pulled over RTSP (camera A), then of the same clip sent by a GB/T 28181
device as MPEG-PS over RTP, TCP passive (camera B), on one hub process in the same run.

The RTSP server is a process of its own; the GB/T 28181 stand-in runs in this process, so
neither's CPU is counted as the hub's. The viewer is one ``camera_viewers`` process.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from hub.db.migrate import upgrade
from tests.bench.cameras import (
    CAMERA_ORG,
    IDLE_TIMEOUT,
    MIB,
    VENV_PYTHON,
    WARM_TIMEOUT,
    ViewerProcess,
    hub_cpu_seconds,
)
from tests.bench.gb28181_sip import (
    CHANNEL_PREFIX,
    CIVIL_CODE,
    DOMAIN,
    HUB_ID,
    PASSWORD,
    POLL,
    free_sip_port,
    gb_env,
    sample,
    scrape,
)
from tests.bench.machine import MachineMeter
from tests.bench.procutil import free_port
from tests.support.gb_device import GbDevice
from tests.support.hubs import HubProcess, hub_process, token
from tests.support.rtsp_server import RtspServer

RTSP_CAMERA = "bench-rtsp"
GB_DEVICE = "34020000001320000001"
GB_CHANNEL = f"{CHANNEL_PREFIX}0000001"
GB_CAMERA = f"{GB_DEVICE}_{GB_CHANNEL}"
KEEPALIVE_INTERVAL = 30.0
"""The hub's expected keepalive interval in the live-view runs (offline after 3 misses)."""
DEVICE_KEEPALIVE = 5.0
"""How often the stand-in sends keepalives: far inside the hub's 90 s of tolerated silence."""
CATALOG_TIMEOUT = 30.0
SETTLE = 2.0
"""Seconds between the end of one phase and the next, so the previous pull has stopped."""


@dataclass
class StreamRun:
    """One phase: one viewer of one camera."""

    source: str
    camera: str
    cpu_percent: float = math.nan
    rss_mib: float = math.nan
    fps: float = math.nan
    machine_percent: float = math.nan
    bench_cpu_percent: float = math.nan
    """This process's CPU over the window (the GB stand-in's sending, for camera B)."""
    window_seconds: float = 0.0
    reported_paths: list[str] = field(default_factory=list)
    error: str | None = None


class CameraViewer(ViewerProcess):
    """A ``camera_viewers`` process for a camera chosen by id (cameras.py's is fixed)."""

    def __init__(self, viewers: int, camera: str) -> None:
        super().__init__(viewers)
        self.camera = camera

    async def start(self, url: str, bearer: str, query: str) -> None:
        """Launch the process."""
        self.proc = await asyncio.create_subprocess_exec(
            str(VENV_PYTHON),
            "-m", "tests.bench.camera_viewers", url, bearer, self.camera, str(self.viewers),
            "--query", query,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._reader = asyncio.get_running_loop().create_task(self._read())


async def measure(hub: HubProcess, run: StreamRun, window: float) -> None:
    """One viewer of ``run.camera``: wait until it receives frames, measure the hub."""
    assert hub.proc is not None
    process, me = psutil.Process(hub.proc.pid), psutil.Process()
    bearer = token("bench-admin", CAMERA_ORG, ["admin"], ttl=3600)
    viewer = CameraViewer(1, run.camera)
    try:
        await viewer.start(hub.url, bearer, "")
        deadline = time.monotonic() + WARM_TIMEOUT
        while not viewer.warm:
            if viewer.error or time.monotonic() > deadline:
                run.error = viewer.error or "the viewer received no frames in time"
                return
            await asyncio.sleep(POLL)
        frames_before = viewer.total_frames
        meter = MachineMeter()
        meter.start()
        mine = me.cpu_times()
        cpu_before, started = hub_cpu_seconds(process), time.monotonic()
        await asyncio.sleep(window)
        cpu_after, ended = hub_cpu_seconds(process), time.monotonic()
        mine_after = me.cpu_times()
        run.machine_percent = meter.percent()
        run.window_seconds = ended - started
        run.cpu_percent = (cpu_after - cpu_before) / run.window_seconds * 100
        bench_cpu = (mine_after.user + mine_after.system) - (mine.user + mine.system)
        run.bench_cpu_percent = bench_cpu / run.window_seconds * 100
        run.rss_mib = float(process.memory_info().rss) / MIB
        run.fps = (viewer.total_frames - frames_before) / run.window_seconds
        run.reported_paths = list(viewer.paths)
        if viewer.error:
            run.error = viewer.error
    finally:
        await viewer.stop()


def cameras_file(directory: Path, rtsp_url: str) -> Path:
    """A cameras file holding camera A."""
    path = directory / "gb-bench-cameras.json"
    camera = {
        "id": RTSP_CAMERA, "name": "bench rtsp camera", "org": CAMERA_ORG, "lat": 30.6,
        "lon": 114.3, "source_url": rtsp_url, "tags": ["bench"], "ptz": False,
    }  # fmt: skip
    path.write_text(json.dumps({"cameras": [camera]}), encoding="utf-8")
    return path


async def wait_catalog(hub: HubProcess) -> None:
    """Wait until the hub's catalog sync of the stand-in ended (camera B exists)."""
    deadline = time.monotonic() + CATALOG_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while sample(await scrape(http, hub), "hub_gb28181_catalog_syncs_total") < 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hub's catalog sync did not end in {CATALOG_TIMEOUT} s")
            await asyncio.sleep(POLL)


def print_run(run: StreamRun) -> None:
    """One progress line."""
    print(
        f"  {run.source:5} ({run.camera}): hub {run.cpu_percent:5.1f}% of a core, "
        f"RSS {run.rss_mib:5.0f} MiB, {run.fps:4.1f} fps, bench process "
        f"{run.bench_cpu_percent:4.1f}%, machine {run.machine_percent:3.0f}%"
        + (f"  ERROR {run.error}" if run.error else ""),
        flush=True,
    )


async def stream_runs(
    clip: Path, window: float, tmp: Path, log_dir: Path
) -> tuple[list[StreamRun], Path, int]:
    """Phase A (RTSP) then phase B (GB/T 28181) on one hub process.

    Returns the runs, the hub's log and the keepalives the hub counted from the stand-in.
    """
    db_url = f"sqlite+aiosqlite:///{tmp / 'hub-gb-live.db'}"
    await asyncio.to_thread(upgrade, db_url)
    rtsp_port, sip_port = free_port(), free_sip_port()
    env = gb_env(db_url, sip_port, KEEPALIVE_INTERVAL)
    env.update(
        HUB_CAMERAS__CAMERAS_FILE=str(cameras_file(tmp, f"rtsp://127.0.0.1:{rtsp_port}/cam")),
        HUB_MEDIA__FORCE_TRANSCODE="false",
        HUB_MEDIA__IDLE_TIMEOUT=str(IDLE_TIMEOUT),
    )
    runs: list[StreamRun] = []
    with hub_process(env, log_dir) as hub:
        hub.start()
        await hub.wait_ready(60)
        device = GbDevice(
            hub_port=sip_port, hub_id=HUB_ID, domain=DOMAIN, device_id=GB_DEVICE,
            password=PASSWORD, channels=[(GB_CHANNEL, "bench gb camera", CIVIL_CODE)],
            clip=clip,
        )  # fmt: skip
        await device.start()
        try:
            status = await device.register()
            if status != 200:
                raise RuntimeError(f"the GB/T 28181 stand-in's REGISTER was answered {status}")
            device.start_keepalives(DEVICE_KEEPALIVE)
            await wait_catalog(hub)
            async with aiohttp.ClientSession() as http:
                keepalives_before = sample(await scrape(http, hub), "hub_gb28181_keepalives_total")

            rtsp = RtspServer(clip, port=rtsp_port)
            rtsp.start()
            try:
                run = StreamRun("rtsp", RTSP_CAMERA)
                runs.append(run)
                await measure(hub, run, window)
                print_run(run)
            finally:
                rtsp.stop()
            await asyncio.sleep(IDLE_TIMEOUT + SETTLE)  # the RTSP pull stops once idle

            run = StreamRun("gb", GB_CAMERA)
            runs.append(run)
            await measure(hub, run, window)
            print_run(run)
            if device.errors:
                print(f"  stand-in errors: {device.errors[:3]}", flush=True)
            async with aiohttp.ClientSession() as http:
                counted = sample(await scrape(http, hub), "hub_gb28181_keepalives_total")
        finally:
            await device.close()
        return runs, hub.log_path, counted - keepalives_before
