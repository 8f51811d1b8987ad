"""The demo camera: a clip generated once with PyAV under var/demo/, served over real RTSP by
GStreamer's RTSP server (Debian's /usr/bin/python3 with python3-gi) when it is installed,
else handed to the hub as a ``file://`` source; registered through the camera REST API as
an admin, like any camera platform would. The RTSP server is a child process the demo
stops when it stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from hub.demo.api import DemoApiError, HubApi
from hub.demo.walk import Walker
from hub.org.seed import UserSpec

CAMERA_ID = "demo-camera"
CAMERA_NAME = "演示摄像头（网格巡查点）"
SYSTEM_PYTHON = "/usr/bin/python3"
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
WIDTH, HEIGHT, FPS, GOP = 640, 360, 25, 50
BAR = 48
"""Width in pixels of the bar that sweeps across the picture (motion to see it is live)."""

# A looping RTSP server for one H.264 MP4 (GStreamer's RTSP server; SPS/PPS in band).
# Run as: /usr/bin/python3 -c SERVE_SCRIPT CLIP PORT. Prints "READY <port>" once listening.
SERVE_SCRIPT = """
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[2])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( filesrc location=%s ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    % sys.argv[1]
)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(1)
print("READY %d" % server.get_bound_port(), flush=True)
GLib.MainLoop().run()
"""
PROBE_SCRIPT = (
    "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
)


def make_clip(path: Path, seconds: float) -> Path:
    """Write an H.264 MP4 of a gradient with a bar sweeping across it (blocking: PyAV)."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part.mp4")
    frames = int(seconds * FPS)
    with av.open(str(partial), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.codec_context.time_base = Fraction(1, FPS)
        stream.codec_context.options = {
            "preset": "superfast", "bf": "0", "keyint_min": str(GOP), "sc_threshold": "0",
        }  # fmt: skip
        base = np.tile(np.linspace(40, 200, WIDTH, dtype=np.uint8), (HEIGHT, 1))
        chroma = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
        for n in range(frames):
            y = base.copy()
            x = n * 8 % (WIDTH - BAR)
            y[HEIGHT // 3 : 2 * HEIGHT // 3, x : x + BAR] = 235
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, chroma]), format="yuv420p")
            frame.pts = n
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    os.replace(partial, path)
    return path


def _has_rtsp_server() -> bool:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", PROBE_SCRIPT], capture_output=True, check=False, timeout=30
    )
    return probe.returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DemoCamera:
    """The running demo camera: its source URL and, when served over RTSP, the server."""

    source_url: str
    kind: str
    """``rtsp`` or ``file``."""
    process: asyncio.subprocess.Process | None = None

    async def stop(self) -> None:
        """Stop the RTSP server, if any (safe to call twice)."""
        proc, self.process = self.process, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _serve_rtsp(clip: Path) -> DemoCamera | None:
    """Start GStreamer's RTSP server on the clip; None if it is not installed or fails."""
    if not await asyncio.to_thread(_has_rtsp_server):
        return None
    proc = await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON, "-c", SERVE_SCRIPT, str(clip), str(_free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    camera = DemoCamera("", "rtsp", proc)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT)
    except TimeoutError:
        line = b""
    words = line.decode(errors="replace").split()
    if len(words) != 2 or words[0] != "READY":
        await camera.stop()
        return None
    camera.source_url = f"rtsp://127.0.0.1:{words[1]}/cam"
    return camera


async def start_demo_camera(
    api: HubApi,
    admin: UserSpec,
    walkers: list[Walker],
    media_dir: Path,
    clip_seconds: float,
) -> DemoCamera:
    """Make the clip if missing, serve it (RTSP if possible, else as a file) and register or
    update the camera ``CAMERA_ID`` through the REST API. The caller stops the camera."""
    clip = media_dir / f"camera-{clip_seconds:g}s.mp4"
    if not clip.is_file():
        await asyncio.to_thread(make_clip, clip, clip_seconds)
    camera = await _serve_rtsp(clip)
    if camera is None:
        camera = DemoCamera(clip.resolve().as_uri(), "file")
    try:
        await _register(api, admin, walkers, camera.source_url)
    except BaseException:
        await camera.stop()
        raise
    return camera


async def _register(api: HubApi, admin: UserSpec, walkers: list[Walker], source: str) -> None:
    path = f"/api/v1/cameras/{CAMERA_ID}"
    try:
        await api.request("GET", path, admin)
    except DemoApiError as err:
        if err.status != 404:
            raise
        body: dict[str, Any] = {"id": CAMERA_ID, "name": CAMERA_NAME, "source_url": source}
        if walkers:
            # Where the first phone patrols, so it is on the map beside the workers.
            walker = walkers[0]
            body.update(org=walker.area.path, lat=walker.position.lat, lon=walker.position.lon)
        else:
            body["org"] = admin.org
        await api.request("POST", "/api/v1/cameras", admin, body)
        return
    await api.request("PATCH", path, admin, {"source_url": source})
