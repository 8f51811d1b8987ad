"""Run Debian's baresip (1.0.x) as a video-network terminal under test control.

Each :class:`Baresip` gets a private config directory (``config`` + ``accounts``), listens for
SIP on 127.0.0.1 and is driven over ``ctrl_tcp`` (netstring-framed JSON). Media is H.264
(``avcodec``, libx264) plus PCMU/PCMA/Opus over plain RTP/AVP: no ICE, STUN, TURN or SRTP.
The audio source is ``ausine`` (a sine tone of ``sine_hz``); the video source is
``avformat`` looping a clip (see :mod:`tests.support.videonet_media`) or ``fakevideo``; the
video display is ``fakevideo`` (headless) and the ``snapshot`` filter saves received frames.

Typical use::

    async with Baresip(tmp_path / "a", user="a", answermode="auto", clip=clip) as bs:
        await bs.dial("sip:b@127.0.0.1:5070")
        await bs.wait_event("CALL_ESTABLISHED")
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

BARESIP = shutil.which("baresip") or "/usr/bin/baresip"
MODULE_PATH = Path("/usr/lib/baresip/modules")
HOST = "127.0.0.1"
READY_LINE = "baresip is ready."
DEFAULT_SINE_HZ = 440
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TRAILER = b"IEND\xaeB`\x82"
LOG_TAIL_CHARS = 6000

Event = dict[str, Any]


class BaresipError(AssertionError):
    """A baresip instance misbehaved (did not start, answer, or produce an event in time)."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free right now for ``kind`` (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_sip_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1, with the next one free for TCP too:
    baresip listens for SIP on both and for SIP/TLS on the port after (seen in CI: its
    start failed with EADDRINUSE on port + 1)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with contextlib.suppress(OSError), socket.socket() as tcp, socket.socket() as tls:
            tcp.bind((HOST, port))
            tls.bind((HOST, port + 1))
            return port
    raise BaresipError("no free SIP port on 127.0.0.1")


@dataclass(frozen=True)
class Registration:
    """Register the account with ``registrar`` ("host:port") using digest credentials."""

    registrar: str
    password: str
    auth_user: str | None = None
    regint: int = 60
    outbound_proxy: str | None = None  # "host:port"; SIP requests go via it when set


def netstring(payload: bytes) -> bytes:
    """``payload`` framed as a netstring (``<len>:<payload>,``)."""
    return str(len(payload)).encode() + b":" + payload + b","


class NetstringReader:
    """Incremental netstring decoder."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every complete payload now available."""
        self._buf += data
        out: list[bytes] = []
        while True:
            colon = self._buf.find(b":")
            if colon < 0:
                if len(self._buf) > 10:
                    raise ValueError(f"bad netstring header {bytes(self._buf[:20])!r}")
                return out
            length = int(self._buf[:colon])
            end = colon + 1 + length
            if len(self._buf) < end + 1:
                return out
            if self._buf[end : end + 1] != b",":
                raise ValueError("netstring without trailing comma")
            out.append(bytes(self._buf[colon + 1 : end]))
            del self._buf[: end + 1]


class Baresip:
    """One baresip process with a private config dir, driven over ctrl_tcp.

    ``clip`` (a video file) becomes ``video_source avformat,<clip>`` (looped); without it the
    source is ``fakevideo``. ``answermode`` is ``"manual"`` (use :meth:`accept`) or
    ``"auto"``. ``registration`` adds REGISTER with digest auth; otherwise the account does
    not register (``regint=0``) and can still dial and be dialled directly.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "terminal",
        display_name: str | None = None,
        password: str | None = None,
        auth_user: str | None = None,
        domain: str = HOST,
        answermode: str = "manual",
        clip: Path | None = None,
        sine_hz: int = DEFAULT_SINE_HZ,
        audio_codecs: Iterable[str] | None = ("PCMU/8000/1", "PCMA/8000/1", "opus/48000/2"),
        video_codecs: Iterable[str] | None = None,
        registration: Registration | None = None,
        sip_port: int | None = None,
        ctrl_port: int | None = None,
        video_size: tuple[int, int] = (352, 288),
        video_fps: int = 25,
        video_bitrate: int = 500_000,
        rtp_timeout: int | None = None,
        sip_trace: bool = True,
        start_timeout: float = 15.0,
        extra_config: str = "",
    ) -> None:
        if answermode not in ("manual", "auto", "early"):
            raise ValueError(f"answermode {answermode!r}")
        self.workdir = Path(workdir)
        self.user = user
        self.display_name = display_name
        self.password = password
        self.auth_user = auth_user
        """Digest username for calls without registration (default: the user part)."""
        self.domain = domain
        self.answermode = answermode
        self.clip = clip
        self.sine_hz = sine_hz
        self.audio_codecs = tuple(audio_codecs) if audio_codecs is not None else None
        self.video_codecs = tuple(video_codecs) if video_codecs is not None else None
        self.registration = registration
        self.sip_port = sip_port or free_sip_port()
        self.ctrl_port = ctrl_port or free_port()
        self.video_size = video_size
        self.video_fps = video_fps
        self.video_bitrate = video_bitrate
        self.rtp_timeout = rtp_timeout
        self.sip_trace = sip_trace
        self.start_timeout = start_timeout
        self.extra_config = extra_config
        self.log_path = self.workdir / "baresip.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[Event] = []  # every event received, in order (never consumed)
        self._event_cursor = 0
        self._event_signal = asyncio.Condition()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._fifo: list[asyncio.Future[dict[str, Any]]] = []
        self._cmd_lock = asyncio.Lock()
        self._tokens = itertools.count(1)
        self._log_file: BinaryIO | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def aor(self) -> str:
        """The account's address of record, e.g. ``sip:a@127.0.0.1``."""
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact_uri(self) -> str:
        """A URI that reaches this instance directly (no proxy): ``sip:user@127.0.0.1:port``."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    # ------------------------------------------------------------------ config

    def account_line(self) -> str:
        """The single line of the ``accounts`` file."""
        name = f'"{self.display_name}" ' if self.display_name else ""
        reg = self.registration
        domain = reg.registrar if reg else self.domain
        params = [f"answermode={self.answermode}"]
        password = reg.password if reg else self.password
        if password is not None:
            params.append(f"auth_pass={password}")
        auth_user = reg.auth_user if reg else self.auth_user
        if auth_user:
            params.append(f"auth_user={auth_user}")
        if reg and reg.outbound_proxy:
            params.append(f'outbound="sip:{reg.outbound_proxy};lr"')
        params.append(f"regint={reg.regint if reg else 0}")
        if self.audio_codecs is not None:
            params.append(f"audio_codecs={','.join(self.audio_codecs)}")
        if self.video_codecs is not None:
            params.append(f"video_codecs={','.join(self.video_codecs)}")
        params.append("mediaenc=")  # no SRTP/DTLS
        params.append("medianat=")  # no STUN/TURN/ICE
        return f"{name}<sip:{self.user}@{domain}>;" + ";".join(params) + "\n"

    def config_text(self) -> str:
        """The ``config`` file: everything local, headless, modules listed explicitly."""
        width, height = self.video_size
        video_source = f"avformat,{self.clip}" if self.clip is not None else "fakevideo,nil"
        lines = [
            "poll_method\t\tepoll",
            f"sip_listen\t\t{HOST}:{self.sip_port}",
            f"net_interface\t\t{HOST}",  # the address put in SDP c= lines: stay on loopback
            f"dns_server\t\t{HOST}:53",  # never used with IP-literal URIs; keeps it local
            "call_local_timeout\t120",
            "call_max_calls\t\t4",
            # Audio: sine tone in (ausine needs 48 kHz stereo), bridge sink out (headless).
            f"audio_source\t\tausine,{self.sine_hz}",
            "audio_player\t\taubridge,sink",
            "audio_alert\t\taubridge,alert",
            "ausrc_srate\t\t48000",
            "ausrc_channels\t\t2",
            "auplay_srate\t\t48000",
            "auplay_channels\t\t2",
            "audio_level\t\tno",
            "ausrc_format\t\ts16",
            "auplay_format\t\ts16",
            "auenc_format\t\ts16",
            "audec_format\t\ts16",
            "audio_buffer\t\t20-160",
            # Video
            f"video_source\t\t{video_source}",
            "video_display\t\tfakevideo,nil",
            f"video_size\t\t{width}x{height}",
            f"video_bitrate\t\t{self.video_bitrate}",
            f"video_fps\t\t{self.video_fps}.00",
            "video_fullscreen\tno",
            "videnc_format\t\tyuv420p",
            # AVT
            "rtp_tos\t\t\t0",
            "rtcp_mux\t\tno",
            "jitter_buffer_delay\t5-10",
            "rtp_stats\t\tno",
            *([f"rtp_timeout\t\t{self.rtp_timeout}"] if self.rtp_timeout else []),
            # Modules
            f"module_path\t\t{MODULE_PATH}",
            "module\t\t\tg711.so",
            "module\t\t\topus.so",
            "module\t\t\tausine.so",
            "module\t\t\taubridge.so",
            "module\t\t\tavcodec.so",
            "module\t\t\tsnapshot.so",
            "module\t\t\tavformat.so",
            "module\t\t\tfakevideo.so",
            "module_tmp\t\tuuid.so",
            "module_tmp\t\taccount.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            # Module parameters
            f"ctrl_tcp_listen\t\t{HOST}:{self.ctrl_port}",
            "opus_bitrate\t\t28000",
            "avcodec_h264enc\t\tlibx264",
            "avcodec_h264dec\t\th264",
            "menu_bell\t\tno",
            "redial_attempts\t\t0",
            "ringback_disabled\tyes",
            "statmode_default\toff",
        ]
        return "\n".join(lines) + "\n" + self.extra_config

    def write_config(self) -> None:
        """Write ``config``, ``accounts`` and an empty ``contacts`` into ``workdir``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config").write_text(self.config_text())
        (self.workdir / "accounts").write_text(self.account_line())
        (self.workdir / "contacts").write_text("")

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Baresip:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            print(f"---- baresip {self.user} log tail ----\n{self.log_tail()}")

    async def start(self) -> None:
        """Start baresip; return once it printed "baresip is ready." and ctrl_tcp answers."""
        self.write_config()
        self._log_file = self._open_log()
        args = [BARESIP, "-f", str(self.workdir)]
        if self.sip_trace:
            args.append("-s")
        # baresip writes its log with stdio: line-buffer it so the log file is live.
        stdbuf = shutil.which("stdbuf")
        if stdbuf:
            args = [stdbuf, "-oL", "-eL", *args]
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(self.workdir),
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        try:
            await self._wait_log(READY_LINE, deadline)
            await self._connect(deadline)
        except BaseException:
            await self.stop()
            raise

    def _open_log(self) -> BinaryIO:
        return open(self.log_path, "wb")  # closed in stop()

    async def _wait_log(self, needle: str, deadline: float) -> None:
        while needle not in self.log_text():
            if self.proc is not None and self.proc.returncode is not None:
                raise BaresipError(
                    f"baresip {self.user} exited ({self.proc.returncode}) before "
                    f"{needle!r}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise BaresipError(
                    f"baresip {self.user}: no {needle!r} in time:\n{self.log_tail()}"
                )
            await asyncio.sleep(0.05)

    async def _connect(self, deadline: float) -> None:
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(HOST, self.ctrl_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(
                        f"baresip {self.user}: ctrl_tcp {HOST}:{self.ctrl_port} not accepting"
                        f":\n{self.log_tail()}"
                    ) from None
                await asyncio.sleep(0.05)
        self._read_task = asyncio.create_task(self._read_loop(), name=f"baresip-{self.user}")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        decoder = NetstringReader()
        try:
            while data := await self._reader.read(65536):
                for payload in decoder.feed(data):
                    await self._dispatch(json.loads(payload))
        finally:
            error = BaresipError(f"baresip {self.user}: ctrl_tcp connection closed")
            for fut in [*self._pending.values(), *self._fifo]:
                if not fut.done():
                    fut.set_exception(error)
            self._pending.clear()
            self._fifo.clear()
            async with self._event_signal:
                self._event_signal.notify_all()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("event"):
            async with self._event_signal:
                self.events.append(message)
                self._event_signal.notify_all()
            return
        if message.get("response"):
            token = message.get("token")
            fut = self._pending.pop(str(token), None) if token is not None else None
            if fut is None and self._fifo:
                fut = self._fifo[0]
            if fut is not None:
                if fut in self._fifo:
                    self._fifo.remove(fut)
                if not fut.done():
                    fut.set_result(message)

    async def stop(self, timeout: float = 5.0) -> None:
        """Quit baresip (SIGTERM, then SIGKILL after ``timeout``) and reap it. Idempotent."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
            self._writer = None
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
            self._read_task = None
        proc = self.proc
        if proc is not None and proc.returncode is None:
            # The first SIGTERM stops gracefully (BYEs, lets transactions finish: can take
            # seconds); a second one forces the exit; SIGKILL if even that lingers.
            for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGTERM, timeout)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), timeout=wait)
                    break
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await asyncio.wait_for(proc.wait(), timeout=timeout)
        elif proc is not None:
            await proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def kill(self) -> int:
        """SIGKILL baresip (a terminal dying mid-call) and reap it; return its exit status."""
        assert self.proc is not None, "not started"
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        return await asyncio.wait_for(self.proc.wait(), timeout=5.0)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    # ------------------------------------------------------------------ log

    def log_text(self) -> str:
        """Everything baresip has written so far (stdout + stderr)."""
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log_text()[-chars:]

    # ------------------------------------------------------------------ ctrl_tcp

    async def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a long command (e.g. ``dial``) and return baresip's response dict
        (``{"response": true, "ok": bool, "data": str, ...}``)."""
        if self._writer is None:
            raise BaresipError(f"baresip {self.user}: not connected")
        token = str(next(self._tokens))
        message: dict[str, Any] = {"command": name, "token": token}
        if params:
            message["params"] = params
        async with self._cmd_lock:
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[token] = fut
            self._fifo.append(fut)
            self._writer.write(netstring(json.dumps(message).encode()))
            await self._writer.drain()
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise BaresipError(
                    f"baresip {self.user}: no response to {name} {params} within {timeout}s"
                    f":\n{self.log_tail()}"
                ) from None
            finally:
                self._pending.pop(token, None)
                if fut in self._fifo:
                    self._fifo.remove(fut)

    async def checked(self, name: str, params: str = "", timeout: float = 5.0) -> str:
        """:meth:`command` that fails unless baresip reports ``ok``; returns ``data``."""
        response = await self.command(name, params, timeout)
        if not response.get("ok"):
            raise BaresipError(f"baresip {self.user}: {name} {params} failed: {response}")
        return str(response.get("data", ""))

    async def wait_event(
        self,
        type: str | None = None,
        *,
        timeout: float = 10.0,
        match: Callable[[Event], bool] | None = None,
        klass: str | None = None,
    ) -> Event:
        """The next not-yet-consumed event of ``type`` (and ``klass``/``match``).

        Events are consumed in order: a matching event removes itself and every earlier
        event from the "not yet consumed" window, so sequences (INCOMING then ESTABLISHED
        then CLOSED) are awaited naturally. All events stay in :attr:`events`.
        """

        def find() -> Event | None:
            for index in range(self._event_cursor, len(self.events)):
                event = self.events[index]
                if type is not None and event.get("type") != type:
                    continue
                if klass is not None and event.get("class") != klass:
                    continue
                if match is not None and not match(event):
                    continue
                self._event_cursor = index + 1
                return event
            return None

        async def waiter() -> Event:
            async with self._event_signal:
                while True:
                    found = find()
                    if found is not None:
                        return found
                    if self._read_task is None or self._read_task.done():
                        raise BaresipError(f"baresip {self.user}: ctrl_tcp connection closed")
                    await self._event_signal.wait()

        try:
            return await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            seen = [e.get("type") for e in self.events[self._event_cursor :]]
            raise BaresipError(
                f"baresip {self.user}: no event {type or ''} within {timeout}s "
                f"(unconsumed: {seen}; all: {[e.get('type') for e in self.events]})"
                f":\n{self.log_tail()}"
            ) from None

    # ------------------------------------------------------------------ helpers

    async def dial(self, uri: str) -> str:
        """Place a call to ``uri``; returns baresip's response text."""
        return await self.checked("dial", uri)

    async def hangup(self) -> str:
        """Hang up the current call."""
        return await self.checked("hangup")

    async def accept(self) -> str:
        """Answer the pending incoming call (for ``answermode="manual"``)."""
        return await self.checked("accept")

    async def snapshot_recv(self, path: Path, timeout: float = 10.0) -> Path:
        """Save the next received (decoded) video frame as a PNG at ``path``; wait until the
        file is complete. Fails if no frame is decoded within ``timeout`` (no media)."""
        path = Path(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        await self.checked("snapshot_recv", str(path))
        return await wait_png(path, timeout, on_timeout=self.log_tail)


def png_complete(path: Path) -> bool:
    """Whether ``path`` holds a whole PNG (signature first, IEND chunk last)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    return data.startswith(PNG_SIGNATURE) and data.endswith(PNG_TRAILER)


async def wait_png(path: Path, timeout: float, on_timeout: Callable[[], str] | None = None) -> Path:
    """Wait until ``path`` is a complete PNG (signature and IEND trailer present)."""
    deadline = time.monotonic() + timeout
    while True:
        if png_complete(path):
            return path
        if time.monotonic() > deadline:
            tail = on_timeout() if on_timeout else ""
            raise BaresipError(f"no complete PNG at {path} within {timeout}s:\n{tail}")
        await asyncio.sleep(0.05)


def sdp_of(sip_message: str) -> str:
    """The body (SDP) of a SIP message text."""
    _, _, body = sip_message.replace("\r\n", "\n").partition("\n\n")
    return body


async def capture_invite(bs: Baresip, timeout: float = 10.0) -> str:
    """Let ``bs`` dial a bare UDP socket and return the first INVITE it sends (verbatim).

    Nothing answers it; the call is hung up afterwards. Useful to inspect baresip's offer.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    try:
        await bs.dial(f"sip:capture@{HOST}:{port}")
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BaresipError(f"no INVITE from {bs.user}:\n{bs.log_tail()}")
            data = await asyncio.wait_for(loop.sock_recv(sock, 65535), remaining)
            text = data.decode("utf-8", "replace")
            if text.startswith("INVITE "):
                return text
    finally:
        with contextlib.suppress(BaresipError):
            await bs.command("hangup")
        sock.close()


__all__ = [
    "Baresip",
    "BaresipError",
    "Registration",
    "capture_invite",
    "free_port",
    "free_sip_port",
    "sdp_of",
    "wait_png",
]
