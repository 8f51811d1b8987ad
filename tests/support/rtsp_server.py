"""Test cameras: an H.264 clip made with PyAV (libx264, High profile) whose frames carry their
index as a bit pattern, served over real RTSP by GStreamer's RTSP server on loopback."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SYSTEM_PYTHON = "/usr/bin/python3"
SERVE_SCRIPT = Path(__file__).with_name("rtsp_serve.py")
APT_HINT = (
    "apt-get install -y gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad  (or: bash .ci/ensure-media)"
)
WIDTH, HEIGHT, FPS, GOP = 640, 360, 25, 50
BITS = 12
CELL = 40  # one bit = one CELL x CELL square on the top row
READY_TIMEOUT = 15.0


def make_clip(path: Path, seconds: float = 40.0, codec: str = "h264") -> Path:
    """Write an MP4 (H.264 High, or with ``codec="h265"`` H.265 Main; GOP 50, no
    B-frames) whose frame n shows n in binary."""
    frames = int(seconds * FPS)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265" if codec == "h265" else "libx264", rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = GOP
        if codec == "h265":
            stream.codec_context.options = {
                "preset": "ultrafast", "x265-params":
                f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0:log-level=error",
            }  # fmt: skip
        else:
            stream.codec_context.profile = "High"
            stream.codec_context.options = {
                "preset": "superfast", "profile": "high", "bf": "0", "keyint_min": str(GOP),
                "sc_threshold": "0", "x264-params": "scenecut=0:cabac=1:8x8dct=1",
            }  # fmt: skip
        stream.codec_context.time_base = Fraction(1, FPS)
        base = np.tile(np.linspace(40, 200, WIDTH, dtype=np.uint8), (HEIGHT, 1))
        for n in range(frames):
            y = base.copy()
            for bit in range(BITS):
                y[0:CELL, bit * CELL : (bit + 1) * CELL] = 235 if n >> bit & 1 else 16
            yuv = np.concatenate([y, np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)], axis=0)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = n
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def frame_number(frame: av.VideoFrame) -> int:
    """Read back the index a clip frame shows (scaled to the clip's size first)."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        frame = frame.reformat(width=WIDTH, height=HEIGHT)
    y = frame.to_ndarray(format="yuv420p")[:HEIGHT]
    n = 0
    for bit in range(BITS):
        cell = y[8 : CELL - 8, bit * CELL + 8 : (bit + 1) * CELL - 8]
        if float(cell.mean()) > 128:
            n |= 1 << bit
    return n


def gradient_ok(frame: av.VideoFrame) -> bool:
    """The picture below the bit row is the clip's left-to-right gradient."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        frame = frame.reformat(width=WIDTH, height=HEIGHT)
    y = frame.to_ndarray(format="yuv420p")[:HEIGHT]
    row = y[HEIGHT // 2].astype(int)
    return abs(row[10] - 41) < 12 and abs(row[WIDTH - 10] - 197) < 12


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_gst_rtsp() -> None:
    """Fail loudly (never skip) when the RTSP server's system packages are missing."""
    check = subprocess.run(
        [SYSTEM_PYTHON, "-c",
         "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import GstRtspServer"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if check.returncode != 0:
        raise RuntimeError(
            f"GStreamer's RTSP server is not installed for {SYSTEM_PYTHON}: {APT_HINT}\n"
            + check.stderr[-500:]
        )


class RtspServer:
    """One GStreamer RTSP server process serving ``clip`` at rtsp://127.0.0.1:<port>/cam."""

    def __init__(self, clip: Path, port: int | None = None, codec: str = "h264") -> None:
        self.clip = clip
        self.codec = codec
        self.port = port or free_port()
        self.sessions = 0
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._changed = threading.Condition()

    @property
    def url(self) -> str:
        """The camera's RTSP URL."""
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        """Start the server and return once it listens."""
        require_gst_rtsp()
        self._ready.clear()
        self._proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVE_SCRIPT), str(self.clip), str(self.port), self.codec],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, args=(self._proc,), daemon=True)
        self._reader.start()
        if not self._ready.wait(READY_TIMEOUT):
            self.stop()
            raise RuntimeError("the RTSP server did not start")

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                self._ready.set()
            elif line.startswith("SESSION"):
                with self._changed:
                    self.sessions += 1
                    self._changed.notify_all()

    def stop(self) -> None:
        """Stop the server (the camera goes dark)."""
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGCONT)
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        if self._proc.stdout:
            with contextlib.suppress(Exception):
                self._proc.stdout.close()
        self._proc = None

    def freeze(self) -> None:
        """Stop the server process without closing its sockets (a hung camera)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def wait_sessions(self, count: int, timeout: float) -> int:
        """Wait until ``count`` sessions were made (or the time is up); the number made."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.sessions < count and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return self.sessions
