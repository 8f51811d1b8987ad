"""Camera live-view benchmark: hub CPU and memory for one 720p 25 fps H.264 camera watched by
1, 10 and 50 aiortc WHEP viewers, passed through and (same run) with transcoding forced.

    python -m tests.bench.cameras [--viewers 1,10,50] [--window 20] [--quick]

A PyAV-made 720p H.264 High clip (cached under tests/bench/results/cache/) is served by
GStreamer's RTSP server on 127.0.0.1; the hub runs as a real ``hub serve`` subprocess whose
cameras file holds that one camera. Viewers run in separate processes
(``camera_viewers.py``, at most ``VIEWERS_PER_PROCESS`` each) so their CPU is not the
hub's. Once every viewer receives frames, the hub's CPU time (user + system, % of one core)
is measured over a steady window, with its RSS at the end. Then the same with
``HUB_MEDIA__FORCE_TRANSCODE=true`` (one decode + one encode for the camera, shared by all
viewers). Prints a table with the transcode/passthrough ratio and the verdict on the
target (50 passthrough viewers under one core); writes results/cameras-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from hub.db.migrate import upgrade
from tests.bench.machine import MachineMeter, busy_processes
from tests.bench.procutil import free_port, stop_child
from tests.support.hubs import HubProcess, hub_process, make_settings, settings_env, token
from tests.support.rtsp_server import RtspServer

RESULTS = Path(__file__).resolve().parent / "results"
VENV_PYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"
CACHE = RESULTS / "cache"
WIDTH, HEIGHT, FPS, GOP = 1280, 720, 25, 50
CLIP_SECONDS = 90
CLIP_BITRATE = 2_000_000
NOISE = 6
CAMERA_ID = "bench-cam"
CAMERA_ORG = "d01"
VIEWERS_PER_PROCESS = 25
WARM_FRAMES = 25
"""Frames every viewer must have received before the window starts."""
WARM_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
IDLE_TIMEOUT = 1.0
TARGET_VIEWERS = 50
TARGET_CPU = 100.0
MIB = 1024 * 1024


@dataclass
class Run:
    """One measurement: a media path and a number of viewers."""

    path: str
    viewers: int
    cpu_percent: float = math.nan
    rss_mib: float = math.nan
    fps_per_viewer: float = math.nan
    machine_percent: float = math.nan
    """All CPUs' use during the window (hub, viewers, RTSP server and anything else)."""
    window_seconds: float = 0.0
    reported_paths: list[str] = field(default_factory=list)
    error: str | None = None


def make_camera_clip(path: Path) -> Path:
    """A 720p 25 fps H.264 High clip (GOP 2 s, no B-frames, ~2 Mbit/s) of a panning
    texture with sensor-like noise, so every frame carries motion and detail like a real
    camera's (without the noise x264 needs a third of the bitrate, and the transcoded
    stream, encoded at ``HUB_MEDIA__TRANSCODE_BITRATE``, would carry more than the camera's)."""
    tmp = path.with_suffix(".part.mp4")
    rng = np.random.default_rng(7)
    texture = rng.integers(40, 220, (HEIGHT // 8, WIDTH // 8), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8), dtype=np.uint8))
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = CLIP_BITRATE
        stream.gop_size = GOP
        stream.codec_context.options = {
            "preset": "veryfast", "profile": "high", "bf": "0", "keyint_min": str(GOP),
            "sc_threshold": "0",
        }  # fmt: skip
        stream.codec_context.time_base = Fraction(1, FPS)
        chroma = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
        noise = rng.integers(-NOISE, NOISE + 1, (4, HEIGHT, WIDTH), dtype=np.int16)
        for n in range(CLIP_SECONDS * FPS):
            moved = np.roll(texture, (n * 2, n * 3), axis=(0, 1)).astype(np.int16)
            y = np.clip(moved + noise[n % len(noise)], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            frame.pts = n
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.rename(path)
    return path


def camera_clip() -> Path:
    """The cached clip, made on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"camera-{HEIGHT}p{FPS}-h264-{CLIP_SECONDS}s-noise{NOISE}.mp4"
    if not path.exists():
        print(f"making {path.name} ...", flush=True)
        make_camera_clip(path)
    return path


class ViewerProcess:
    """One ``camera_viewers`` process and the last status it printed."""

    def __init__(self, viewers: int) -> None:
        self.viewers = viewers
        self.proc: asyncio.subprocess.Process | None = None
        self.connected = 0
        self.min_frames = 0
        self.total_frames = 0
        self.decoded = 0
        self.paths: list[str] = []
        self.error: str | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, url: str, bearer: str, query: str) -> None:
        """Launch the process."""
        self.proc = await asyncio.create_subprocess_exec(
            str(VENV_PYTHON),
            "-m", "tests.bench.camera_viewers", url, bearer, CAMERA_ID, str(self.viewers),
            "--query", query,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            kind, _, rest = raw.decode().strip().partition(" ")
            if kind == "STATUS":
                parts = [int(p) for p in rest.split()]
                self.connected, self.min_frames, self.total_frames, self.decoded = parts
            elif kind == "PATHS":
                self.paths = rest.split(",")
            elif kind == "ERROR":
                self.error = rest

    @property
    def warm(self) -> bool:
        """Every viewer connected and received ``WARM_FRAMES``."""
        return self.connected == self.viewers and self.min_frames >= WARM_FRAMES

    async def stop(self) -> None:
        """Close stdin (the process closes its peers and exits); kill if it lingers."""
        await stop_child(self.proc, self._reader, STOP_TIMEOUT)


def hub_cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of the hub so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


async def measure(hub: HubProcess, run: Run, window: float, query: str) -> None:
    """Connect ``run.viewers`` viewers, wait until all receive, measure the hub."""
    assert hub.proc is not None
    process = psutil.Process(hub.proc.pid)
    bearer = token("bench-admin", CAMERA_ORG, ["admin"], ttl=3600)
    sizes = [VIEWERS_PER_PROCESS] * (run.viewers // VIEWERS_PER_PROCESS)
    if run.viewers % VIEWERS_PER_PROCESS:
        sizes.append(run.viewers % VIEWERS_PER_PROCESS)
    groups = [ViewerProcess(size) for size in sizes]
    try:
        for group in groups:
            await group.start(hub.url, bearer, query)
        deadline = time.monotonic() + WARM_TIMEOUT
        while not all(g.warm for g in groups):
            errors = [g.error for g in groups if g.error]
            if errors or time.monotonic() > deadline:
                run.error = errors[0] if errors else "viewers did not all receive frames in time"
                return
            await asyncio.sleep(0.2)
        frames_before = sum(g.total_frames for g in groups)
        meter = MachineMeter()
        meter.start()
        cpu_before, started = hub_cpu_seconds(process), time.monotonic()
        await asyncio.sleep(window)
        cpu_after, ended = hub_cpu_seconds(process), time.monotonic()
        run.machine_percent = meter.percent()
        run.window_seconds = ended - started
        run.cpu_percent = (cpu_after - cpu_before) / run.window_seconds * 100
        run.rss_mib = float(process.memory_info().rss) / MIB
        frames = sum(g.total_frames for g in groups) - frames_before
        run.fps_per_viewer = frames / run.window_seconds / run.viewers
        run.reported_paths = sorted({p for g in groups for p in g.paths})
    finally:
        await asyncio.gather(*(g.stop() for g in groups))


def cameras_file(directory: Path, rtsp_url: str) -> Path:
    """A cameras file holding the one benchmark camera."""
    path = directory / "cameras.json"
    camera = {
        "id": CAMERA_ID, "name": "bench camera", "org": CAMERA_ORG, "lat": 30.6, "lon": 114.3,
        "source_url": rtsp_url, "tags": ["bench"], "ptz": False,
    }  # fmt: skip
    path.write_text(json.dumps({"cameras": [camera]}), encoding="utf-8")
    return path


async def run_path(
    path: str, counts: list[int], window: float, clip: Path, tmp: Path, log_dir: Path
) -> list[Run]:
    """All viewer counts for one media path, on one hub process."""
    db_url = f"sqlite+aiosqlite:///{tmp / f'hub-{path}.db'}"
    await asyncio.to_thread(upgrade, db_url)
    rtsp_port = free_port()
    env = settings_env(make_settings(db_url, None))
    env.update(
        HUB_CAMERAS__CAMERAS_FILE=str(cameras_file(tmp, f"rtsp://127.0.0.1:{rtsp_port}/cam")),
        HUB_MEDIA__FORCE_TRANSCODE="true" if path == "transcoded" else "false",
        HUB_MEDIA__MAX_VIEWERS_PER_CAMERA=str(max(counts) + 10),
        HUB_MEDIA__IDLE_TIMEOUT=str(IDLE_TIMEOUT),
        HUB_LOG_LEVEL="WARNING",
    )
    runs: list[Run] = []
    with hub_process(env, log_dir) as hub:
        hub.start()
        await hub.wait_ready(60)
        for count in counts:
            run = Run(path, count)
            runs.append(run)
            # A fresh camera per run: the clip restarts and the previous pull has ended.
            camera = RtspServer(clip, port=rtsp_port)
            camera.start()
            try:
                await measure(hub, run, window, "")
            finally:
                camera.stop()
            print(
                f"  {path:11} {count:3} viewers: hub {run.cpu_percent:6.1f}% of a core, "
                f"RSS {run.rss_mib:6.1f} MiB, {run.fps_per_viewer:4.1f} fps/viewer, "
                f"machine {run.machine_percent:3.0f}% busy"
                + (f"  ERROR {run.error}" if run.error else ""),
                flush=True,
            )
            await asyncio.sleep(IDLE_TIMEOUT + 1)  # the pull stops once idle
    return runs


def table(runs: list[Run], counts: list[int]) -> list[str]:
    """The result table (markdown)."""
    by = {(r.path, r.viewers): r for r in runs}
    lines = [
        "| viewers | passthrough hub CPU % | RSS MiB | fps/viewer | transcoded hub CPU % "
        "| RSS MiB | fps/viewer | transcode/passthrough CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count in counts:
        p, t = by.get(("passthrough", count)), by.get(("transcoded", count))
        cells = [str(count)]
        for r in (p, t):
            if r is None or r.error:
                cells += ["error", "", ""]
            else:
                cells += [f"{r.cpu_percent:.1f}", f"{r.rss_mib:.0f}", f"{r.fps_per_viewer:.1f}"]
        ratio = t.cpu_percent / p.cpu_percent if p and t and p.cpu_percent > 0 else math.nan
        cells.append(f"{ratio:.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


async def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when the target is met."""
    counts = [int(c) for c in args.viewers.split(",")]
    machine, busy = busy_processes()
    print(f"machine: {psutil.cpu_count()} CPUs, {machine:.0f}% busy before the run", flush=True)
    for line in busy:
        print(f"  busy: {line}", flush=True)
    clip = camera_clip()
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-cameras-") as tmp:
        for path in ("passthrough", "transcoded"):
            print(f"{path}:", flush=True)
            runs += await run_path(path, counts, args.window, clip, Path(tmp), log_dir)
    lines = table(runs, counts)
    print("\n" + "\n".join(lines))
    for run in runs:
        expected = [run.path]
        if not run.error and run.reported_paths != expected:
            print(f"WARNING: {run.path} run reported media paths {run.reported_paths}")
    target = next((r for r in runs if (r.path, r.viewers) == ("passthrough", TARGET_VIEWERS)), None)
    met = target is not None and not target.error and target.cpu_percent < TARGET_CPU
    if target is None:
        verdict = f"verdict: not measured ({TARGET_VIEWERS} viewers not in --viewers)"
    else:
        verdict = (
            f"verdict: {TARGET_VIEWERS} viewers passthrough < {TARGET_CPU:.0f}% of one core: "
            f"{'MET' if met else 'NOT MET'} ({target.cpu_percent:.1f}%)"
        )
    print(verdict)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"cameras-{stamp}.json"
    data: dict[str, Any] = {
        "machine_busy_percent": machine, "busy_processes": busy, "window_seconds": args.window,
        "clip": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "bitrate": CLIP_BITRATE},
        "runs": [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                  for k, v in asdict(r).items()} for r in runs],
        "table": lines, "verdict": verdict,
    }  # fmt: skip
    out.write_text(json.dumps(data, indent=1), encoding="utf-8")
    print(f"results: {out}")
    return 0 if met or target is None else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="1,10,50", help="viewer counts, comma-separated")
    parser.add_argument("--window", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--quick", action="store_true", help="smoke: 1,5 viewers, 5 s window")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.viewers, arguments.window = "1,5", 5.0
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(asyncio.run(main(arguments)))
