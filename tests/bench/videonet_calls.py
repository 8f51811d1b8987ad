"""Video-call benchmark: hub CPU for a 4-party consultation room with one SIP terminal leg
(a real baresip called into the room) against the same room without it, same hub, same run.

    python -m tests.bench.videonet_calls [--window 10] [--settle 3] [--rounds 2] [--quick]

One ``hub serve`` (SQLite, memory bus, recording off, 127.0.0.1) with video calls on
(``HUB_VIDEONET__CALLS__*``): its SIP gateway is the baresip terminal itself, so the hub's
INVITE goes straight to it. The four WebRTC participants run in one ``videonet_peers.py``
process (``room_peers.py`` with a fourth receive slot for the terminal): each sends the
consultation bench's pre-encoded 640×480 25 fps H.264 clip and 20 ms Opus packets without
encoding, and counts the encoded frames relayed to it without decoding. The terminal is
baresip (``tests/support/baresip.py``, auto answer) playing a solid-colour CIF 25 fps clip
(decoded and re-encoded by baresip's libx264 at 500 kbit/s) and a sine tone, G.711 or Opus
as negotiated (baresip picks PCMU). Measured, one window each, on the same hub and room:

A. the room with its 4 WebRTC participants;
B. the same room after the host called the terminal in (REST ``POST
   /api/v1/consultations/{id}/terminals``, 202; it joins when baresip answers);

``--rounds`` times (A1, B1, A2, B2, …), the host removing the terminal (BYE) after each B,
then A once more (``--no-after`` skips it) so drift shows.

Per window: the hub's CPU (user + system over the window / window, % of one core, psutil on
the hub process), the room's frames forwarded/decoded/encoded and the leg's video frames
in/out/decoded/encoded and audio frames decoded/encoded per second from /metrics, delivery
(frames the participants received / frames sent × the 3 other participants; the terminal's
video received / the leg's frames in × 4), and the CPU of the participants' process, of
baresip (the peer, for context) and of everything else. Then B/A of the hub's CPU (means
over the windows, and per round) and the leg's extra CPU in % of a core. Prints the tables;
writes results/videonet_calls-<stamp>.json, logs (hub, participants, baresip) to
results/logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from hub.db.migrate import upgrade
from tests.bench.consultations import (
    CACHE,
    MIB,
    NOISY_OTHERS,
    READY_TIMEOUT,
    RESULTS,
    VENV_PYTHON,
    PeerProcess,
    cpu_seconds,
    room_clip,
    totals,
    udp_receive_errors,
    warm_up,
)
from tests.bench.machine import MachineMeter, busy_processes
from tests.bench.report import _num, _table
from tests.bench.room_peers import BASE, FPS, HEIGHT, USERS, WIDTH, read_clip
from tests.bench.videonet_peers import OTHERS
from tests.support.baresip import Baresip, BaresipError, free_sip_port
from tests.support.hubs import HubProcess, hub_process, make_settings, settings_env, token
from tests.support.videonet_media import BLUE, CLIP_FPS, CLIP_SIZE, make_solid_clip

ROOM_SIZE = len(USERS)
TERMINAL_USER = "t1001"
TERMINAL_BITRATE = 500_000
TERMINAL_CLIP_SECONDS = 120
"""The call lasts warm-up + settle + window (+ hang-up): well under this, so no rewind."""
USERNAME, PASSWORD = "bench-gateway", "bench-gateway-pa55"
CALL_TIMEOUT = 30.0
WARM_FRAMES = 25
"""Video frames every participant must have got from the terminal before the settle time."""
WARM_TIMEOUT = 30.0
POLL = 0.25
MIN_DELIVERY = 95.0
MAX_DELIVERY = 105.0
MACHINE_SATURATED = 95.0
HUB_LOG_LINES = 20
ROOM_METRICS = ("received", "forwarded", "decoded", "encoded", "keyframe_requests")
LEG_METRICS = (
    "video_frames_in", "video_frames_out", "video_frames_decoded", "video_frames_encoded",
    "audio_frames_decoded", "audio_frames_encoded", "keyframe_requests_sent",
)  # fmt: skip


@dataclass
class Window:
    """One configuration of the room, measured over one window."""

    config: str
    """``A`` (the 4 WebRTC participants) or ``B`` (and the SIP terminal)."""
    round: int
    """A's round k is measured before B's round k (after B's round k-1 hung up)."""
    terminal: bool
    participants: int = 0
    window_seconds: float = 0.0
    hub_cpu: float = math.nan
    """% of one core, user + system."""
    hub_rss_mib: float = math.nan
    room_received_per_s: float = math.nan
    room_forwarded_per_s: float = math.nan
    room_decoded_per_s: float = math.nan
    room_encoded_per_s: float = math.nan
    room_keyframe_requests_per_s: float = math.nan
    leg_video_in_per_s: float = math.nan
    leg_video_out_per_s: float = math.nan
    leg_video_decoded_per_s: float = math.nan
    leg_video_encoded_per_s: float = math.nan
    leg_audio_decoded_per_s: float = math.nan
    leg_audio_encoded_per_s: float = math.nan
    leg_keyframe_requests_sent_per_s: float = math.nan
    sent_video_fps: float = math.nan
    """Per WebRTC source: below 25 when the participants' process fell behind."""
    video_delivery: float = math.nan
    """WebRTC to WebRTC: frames received / frames sent × the 3 other participants, %."""
    audio_delivery: float = math.nan
    terminal_video_delivery: float = math.nan
    """The terminal's video at the participants / the leg's video frames in × 4, %."""
    terminal_audio_per_s: float = math.nan
    """The terminal's audio frames each participant got per second (50 at 20 ms)."""
    peers_cpu: float = math.nan
    """The participants' process, % of one core."""
    baresip_cpu: float = math.nan
    """The terminal (decodes the clip and the room's video, encodes with libx264)."""
    machine: float = math.nan
    """Both CPUs, % busy."""
    others: float = math.nan
    """Everything but the hub, the participants and baresip, % of one core."""
    udp_drops: int = 0
    error: str | None = None


class TerminalPeerProcess(PeerProcess):
    """The participants' process of this bench: ``videonet_peers`` (a slot more)."""

    async def start(self, url: str, clip: Path) -> None:
        """Launch and wait for READY (every user's WebSocket connected)."""
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(VENV_PYTHON), "-m", "tests.bench.videonet_peers", url, str(clip),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        self.ps = psutil.Process(self.proc.pid)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        line = await asyncio.wait_for(self._lines.get(), READY_TIMEOUT)
        if line != "READY":
            raise RuntimeError(f"participants' process: {line}")


async def scrape(http: aiohttp.ClientSession, hub: HubProcess) -> dict[str, float]:
    """The hub's unlabelled room and leg counters from /metrics (``room_*``, ``leg_*``)."""
    async with http.get(hub.url + "/metrics") as reply:
        text = await reply.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        for prefix, short in (("hub_room_frames_", "room_"), ("hub_room_", "room_"),
                              ("hub_videonet_", "leg_")):  # fmt: skip
            if name.startswith(prefix) and not name.endswith("_created"):
                values.setdefault(short + name.removeprefix(prefix).removesuffix("_total"),
                                  float(value))  # fmt: skip
                break
    return values


def labelled(text: str, prefix: str) -> list[str]:
    """The /metrics sample lines of ``prefix`` (labelled counters: call outcomes)."""
    return [line for line in text.splitlines() if line.startswith(prefix)]


async def measure(
    http: aiohttp.ClientSession, hub: HubProcess, peers: PeerProcess, terminal: Baresip,
    row: Window, window: float,
) -> None:  # fmt: skip
    """One window: hub CPU, the hub's counters, the participants' counters and CPUs."""
    assert hub.proc is not None and terminal.pid is not None
    process, baresip = psutil.Process(hub.proc.pid), psutil.Process(terminal.pid)
    meter = MachineMeter()
    before, peers_before = await scrape(http, hub), await totals([peers])
    meter.start()
    drops = udp_receive_errors()
    cpu0, peers0, bs0 = cpu_seconds(process), peers.cpu_seconds(), cpu_seconds(baresip)
    started = time.monotonic()
    await asyncio.sleep(window)
    cpu1, peers1, bs1 = cpu_seconds(process), peers.cpu_seconds(), cpu_seconds(baresip)
    ended = time.monotonic()
    row.machine = meter.percent()
    row.udp_drops = udp_receive_errors() - drops
    after, peers_after = await scrape(http, hub), await totals([peers])
    span = row.window_seconds = ended - started
    row.hub_cpu = (cpu1 - cpu0) / span * 100
    row.hub_rss_mib = float(process.memory_info().rss) / MIB
    row.peers_cpu = (peers1 - peers0) / span * 100
    row.baresip_cpu = (bs1 - bs0) / span * 100
    cpus = psutil.cpu_count() or 1
    row.others = max(0.0, row.machine * cpus - row.hub_cpu - row.peers_cpu - row.baresip_cpu)

    def rate(key: str) -> float:
        return (after.get(key, 0.0) - before.get(key, 0.0)) / span

    for key in ROOM_METRICS:
        setattr(row, f"room_{key}_per_s", rate(f"room_{key}"))
    for key in LEG_METRICS:
        short = key.replace("_frames", "")
        setattr(row, f"leg_{short}_per_s", rate(f"leg_{key}"))
    delta = {k: peers_after[k] - peers_before[k] for k in peers_after}
    row.participants = peers_after["participants"]
    row.sent_video_fps = delta["sent_video"] / span / max(row.participants, 1)
    for kind in ("video", "audio"):
        expected = delta[f"expected_{kind}"]
        ratio = delta[f"received_{kind}"] / expected * 100 if expected else math.nan
        setattr(row, f"{kind}_delivery", ratio)
    if row.terminal:
        frames_in = after.get("leg_video_frames_in", 0) - before.get("leg_video_frames_in", 0)
        wanted = frames_in * row.participants
        row.terminal_video_delivery = delta["terminal_video"] / wanted * 100 if wanted else math.nan
        row.terminal_audio_per_s = delta["terminal_audio"] / span / max(row.participants, 1)


async def room_id(http: aiohttp.ClientSession, hub: HubProcess, host: str) -> str:
    """The host's open room (the bench opens exactly one)."""
    async with http.get(hub.url + BASE, headers=host_headers(host)) as reply:
        body = await reply.json()
        if reply.status != 200 or not body.get("items"):
            raise RuntimeError(f"GET {BASE}: {reply.status} {body}")
    return str(body["items"][0]["id"])


def host_headers(host: str) -> dict[str, str]:
    """The room host's bearer token."""
    user, org, roles = next(u for u in USERS if u[0] == host)
    return {"Authorization": f"Bearer {token(user, org, roles)}"}


async def participant_state(
    http: aiohttp.ClientSession, hub: HubProcess, room: str, pid: str
) -> str | None:
    """A participant's state in the room's detail (None: not listed)."""
    async with http.get(f"{hub.url}{BASE}/{room}", headers=host_headers(USERS[0][0])) as reply:
        body = await reply.json()
    states = {p["participant_id"]: p["state"] for p in body.get("participants", [])}
    return states.get(pid)


async def call_in(
    http: aiohttp.ClientSession, hub: HubProcess, room: str, terminal: Baresip
) -> str:
    """The host calls the terminal; returns its participant id once it joined."""
    url = f"{hub.url}{BASE}/{room}/terminals"
    body = {"uri": terminal.contact_uri, "name": "bench terminal"}
    async with http.post(url, json=body, headers=host_headers(USERS[0][0])) as reply:
        created = await reply.json()
        if reply.status != 202:
            raise RuntimeError(f"POST {BASE}/{{id}}/terminals: {reply.status} {created}")
    pid = str(created["participant_id"])
    deadline = time.monotonic() + CALL_TIMEOUT
    while (state := await participant_state(http, hub, room, pid)) != "joined":
        if state not in ("invited", None) or time.monotonic() > deadline:
            raise RuntimeError(f"the terminal's call did not connect: participant {state}")
        await asyncio.sleep(POLL)
    await terminal.wait_event("CALL_ESTABLISHED", timeout=CALL_TIMEOUT)
    return pid


async def hang_up(
    http: aiohttp.ClientSession, hub: HubProcess, room: str, pid: str, terminal: Baresip
) -> None:
    """The host removes the terminal (BYE); returns when baresip saw the call close."""
    url = f"{hub.url}{BASE}/{room}/participants/{pid}"
    async with http.delete(url, headers=host_headers(USERS[0][0])) as reply:
        if reply.status != 204:
            raise RuntimeError(f"DELETE participant: {reply.status} {await reply.text()}")
    await terminal.wait_event("CALL_CLOSED", timeout=CALL_TIMEOUT)


async def terminal_warm(peers: PeerProcess, settle: float, base: int) -> None:
    """Until every participant got video from the terminal (``WARM_FRAMES`` more than the
    fewest ``base`` before the call), then ``settle`` s more."""
    deadline = time.monotonic() + WARM_TIMEOUT
    while (fewest := (await totals([peers]))["min_slot_terminal"] - base) < WARM_FRAMES:
        if time.monotonic() > deadline:
            raise TimeoutError(f"warm-up: a participant got {fewest} frames from the terminal")
        await asyncio.sleep(POLL)
    await asyncio.sleep(settle)


def hub_lines(
    hub: HubProcess, words: tuple[str, ...] = ("call", "terminal", "sip", "error")
) -> str:
    """The hub log's last lines about calls (for an error report)."""
    lines = hub.log_path.read_text(errors="replace").splitlines()
    picked = [line for line in lines if any(w in line.lower() for w in words)]
    return "\n".join(picked[-HUB_LOG_LINES:])


def hub_env(
    db_url: str, sip_port: int, gateway_port: int, tmp: Path, log_level: str
) -> dict[str, str]:
    """``hub serve``'s environment: the consultation bench's room settings, calls on."""
    env = settings_env(make_settings(db_url, None))
    env.update(
        HUB_CONSULTATIONS__FORCE_TRANSCODE="false",
        HUB_CONSULTATIONS__RECORD="false",
        HUB_CONSULTATIONS__RECORDINGS_DIR=str(tmp / "recordings"),
        HUB_CONSULTATIONS__MAX_ROOMS="2",
        HUB_CONSULTATIONS__MAX_PARTICIPANTS=str(ROOM_SIZE + 1),
        HUB_CAMERAS__CAMERAS_FILE="",
        HUB_LOG_LEVEL=log_level,
        HUB_VIDEONET__CALLS__ENABLED="true",
        HUB_VIDEONET__CALLS__HOST="127.0.0.1",
        HUB_VIDEONET__CALLS__PORT=str(sip_port),
        HUB_VIDEONET__CALLS__GATEWAY_HOST="127.0.0.1",
        HUB_VIDEONET__CALLS__GATEWAY_PORT=str(gateway_port),
        HUB_VIDEONET__CALLS__USERNAME=USERNAME,
        HUB_VIDEONET__CALLS__PASSWORD=PASSWORD,
        HUB_VIDEONET__CALLS__RTP_TIMEOUT="10",
    )
    return env


async def run(args: argparse.Namespace, clip: Path, terminal_clip: Path, tmp: Path,
              log_dir: Path, stamp: str) -> tuple[list[Window], list[str]]:  # fmt: skip
    """The windows (A, B per round, A after the last hang-up) on one hub, one
    participants' process and one baresip."""
    db_url = f"sqlite+aiosqlite:///{tmp / 'hub.db'}"
    await asyncio.to_thread(upgrade, db_url)
    gateway_port, sip_port = free_sip_port(), free_sip_port()
    env = hub_env(db_url, sip_port, gateway_port, tmp, args.log_level)
    rows: list[Window] = []
    problems: list[str] = []
    terminal = Baresip(
        log_dir / f"baresip-{stamp}", user=TERMINAL_USER, answermode="auto",
        clip=terminal_clip if args.terminal_source == "clip" else None,
        sip_port=gateway_port, video_bitrate=args.terminal_kbps * 1000,
    )  # fmt: skip
    peers = TerminalPeerProcess(0, log_dir)
    async with terminal, aiohttp.ClientSession() as http:
        with hub_process(env, log_dir) as hub:
            hub.start()
            await hub.wait_ready(60)
            print(f"hub {hub.url} (log {hub.log_path.name}), calls on 127.0.0.1:{sip_port}, "
                  f"terminal {terminal.contact_uri}", flush=True)  # fmt: skip
            try:
                await peers.start(hub.url, clip)
                await peers.add(1, 60)
                room = await room_id(http, hub, USERS[0][0])
                await warm_up([peers], args.settle)
                plan = [(c, k) for k in range(1, args.rounds + 1) for c in "AB"]
                plan += [("A", args.rounds + 1)] if args.after else []
                pid = ""
                for config, k in plan:
                    with_terminal = config == "B"
                    row = Window(config, k, with_terminal)
                    rows.append(row)
                    try:
                        if with_terminal:
                            base = (await totals([peers]))["min_slot_terminal"]
                            pid = await call_in(http, hub, room, terminal)
                            await terminal_warm(peers, args.settle, base)
                        elif pid:
                            await hang_up(http, hub, room, pid, terminal)
                            pid = ""
                            await asyncio.sleep(args.settle)
                        await measure(http, hub, peers, terminal, row, args.window)
                    except (RuntimeError, TimeoutError, BaresipError, aiohttp.ClientError) as err:
                        row.error = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
                        problems += [f"{label(row)}: {row.error}", "hub log (calls):",
                                     hub_lines(hub) or "(nothing)"]  # fmt: skip
                        async with http.get(hub.url + "/metrics") as reply:
                            problems += labelled(await reply.text(), "hub_videonet_call")
                        problems += ["baresip log tail:", terminal.log_tail(1500)]
                    print(describe(row), flush=True)
                    if row.error and with_terminal:
                        break
            finally:
                await peers.stop()
    return rows, problems


def label(row: Window) -> str:
    """``A1``, ``B1``, ``A2`` …"""
    return f"{row.config}{row.round}"


def describe(row: Window) -> str:
    """One progress line."""
    if row.error:
        return f"  {label(row):3}: ERROR {row.error}"
    leg = (
        f", leg in {row.leg_video_in_per_s:4.1f}/s out {row.leg_video_out_per_s:4.1f}/s "
        f"audio dec {row.leg_audio_decoded_per_s:4.0f}/s enc {row.leg_audio_encoded_per_s:4.0f}/s"
        f", terminal video delivery {row.terminal_video_delivery:5.1f}%"
        if row.terminal else ""
    )  # fmt: skip
    return (
        f"  {label(row):3}: hub {row.hub_cpu:5.1f}% of a core, "
        f"fwd {row.room_forwarded_per_s:4.0f}/s, dec {row.room_decoded_per_s:3.0f}/s, "
        f"enc {row.room_encoded_per_s:3.0f}/s, "
        f"delivery video {row.video_delivery:5.1f}% audio {row.audio_delivery:5.1f}%{leg}, "
        f"peers {row.peers_cpu:4.1f}%, baresip {row.baresip_cpu:4.1f}%, others "
        f"{row.others:3.0f}%, machine {row.machine:3.0f}%, {row.udp_drops} UDP drops"
    )


def tables(rows: list[Window]) -> list[str]:
    """The CPU table and the frames table."""

    def name(row: Window) -> str:
        what = "+ SIP terminal" if row.terminal else "4 WebRTC"
        return f"{label(row)}: {what}" + (" (after hang-up)" if row.round > 1 and
                                           not row.terminal else "")  # fmt: skip

    ok = [r for r in rows if not r.error]
    cpu = _table(
        ("config", "hub CPU % of 1 core", "hub RSS MiB", "participants' CPU %", "baresip CPU %",
         "others' CPU %", "machine %", "UDP drops", "status"),
        [(name(r), _num(r.hub_cpu, 1), _num(r.hub_rss_mib), _num(r.peers_cpu, 1),
          _num(r.baresip_cpu, 1), _num(r.others), _num(r.machine), str(r.udp_drops),
          (r.error or "ok")[:70]) for r in rows],
    )  # fmt: skip
    frames = _table(
        ("config", "room fwd/s", "room dec/s", "room enc/s", "leg video in/s", "out/s",
         "dec/s", "enc/s", "leg audio dec/s", "enc/s", "video delivery %",
         "audio delivery %", "terminal video delivery %", "terminal audio/s each",
         "sent fps/source"),
        [(name(r), _num(r.room_forwarded_per_s), _num(r.room_decoded_per_s),
          _num(r.room_encoded_per_s), _num(r.leg_video_in_per_s, 1),
          _num(r.leg_video_out_per_s, 1), _num(r.leg_video_decoded_per_s),
          _num(r.leg_video_encoded_per_s), _num(r.leg_audio_decoded_per_s),
          _num(r.leg_audio_encoded_per_s), _num(r.video_delivery, 1),
          _num(r.audio_delivery, 1), _num(r.terminal_video_delivery, 1),
          _num(r.terminal_audio_per_s, 1), _num(r.sent_video_fps, 1)) for r in ok],
    )  # fmt: skip
    return [
        "Hub CPU (one window per configuration, same hub and room):", *cpu, "",
        "Frames per second (hub /metrics; delivery from the participants):", *frames,
    ]  # fmt: skip


def _even(delivery: float) -> bool:
    """Whether a delivery ratio says the window carried its load evenly."""
    return MIN_DELIVERY <= delivery <= MAX_DELIVERY


def _mean(rows: list[Window], attr: str) -> float:
    return statistics.fmean(getattr(r, attr) for r in rows) if rows else math.nan


def _spread(rows: list[Window]) -> str:
    cpus = [r.hub_cpu for r in rows]
    return f"{min(cpus):.1f}-{max(cpus):.1f}%" if len(cpus) > 1 else "one window"


def summary(rows: list[Window]) -> list[str]:
    """B/A of the hub's CPU (means over the rounds and per round), the leg's extra CPU in %
    of a core, the checks."""
    ok = [r for r in rows if not r.error]
    a_rows, b_rows = [r for r in ok if not r.terminal], [r for r in ok if r.terminal]
    lines = []
    if a_rows and b_rows:
        a, b = _mean(a_rows, "hub_cpu"), _mean(b_rows, "hub_cpu")
        lines.append(
            f"B / A hub CPU: {b / a:.2f}x ({b:.1f}% vs {a:.1f}% of one core, means of "
            f"{len(b_rows)} B and {len(a_rows)} A windows, A {_spread(a_rows)}, B "
            f"{_spread(b_rows)}); the SIP terminal leg costs {b - a:+.1f}% of a core"
        )
        before = {r.round: r for r in a_rows}
        for row in b_rows:
            if (first := before.get(row.round)) is not None:
                lines.append(
                    f"  round {row.round}: B / A {row.hub_cpu / first.hub_cpu:.2f}x "
                    f"({row.hub_cpu:.1f}% vs {first.hub_cpu:.1f}%, "
                    f"{row.hub_cpu - first.hub_cpu:+.1f}% of a core)"
                )
        lines.append(
            f"the terminal (baresip: its clip decoded, libx264 encode, the room's video "
            f"decoded; context only): {_mean(b_rows, 'baresip_cpu'):.1f}% of a core; it sent "
            f"{_mean(b_rows, 'leg_video_in_per_s'):.1f} video frames/s"
        )
        if any(r.leg_video_decoded_per_s or r.leg_video_encoded_per_s for r in b_rows):
            lines.append("WARNING: the leg decoded or encoded video (it should only forward)")
        if any(r.leg_video_in_per_s < FPS * 0.9 or r.leg_video_out_per_s < FPS * 0.9
               for r in b_rows):  # fmt: skip
            lines.append(
                f"WARNING: the leg carried under {FPS * 0.9:.1f} video frames/s one way (see "
                "the frames table): a lighter load than a 25 fps terminal"
            )
    else:
        lines.append("B / A hub CPU: not measured (see the errors)")
    off = [label(r) for r in ok if not _even(r.video_delivery)
           or (r.terminal and not _even(r.terminal_video_delivery))]  # fmt: skip
    if off:
        lines.append(f"WARNING: video delivery outside {MIN_DELIVERY:.0f}-{MAX_DELIVERY:.0f}% in: "
                     f"{', '.join(off)}; those windows did not carry the load evenly (frames lost"
                     " or caught up: a busy machine, see UDP drops)")  # fmt: skip
    noisy = [label(r) for r in ok if r.others > NOISY_OTHERS]
    if noisy:
        lines.append(f"WARNING: other processes used over {NOISY_OTHERS:.0f}% of a core in: "
                     f"{', '.join(noisy)}; those figures are skewed, re-run")  # fmt: skip
    busy = [label(r) for r in ok if r.machine >= MACHINE_SATURATED]
    if busy:
        lines.append(f"WARNING: the machine was saturated in: {', '.join(busy)}")
    return lines


def terminal_clip() -> Path:
    """The terminal's cached source clip (solid blue CIF, made on first use). Long enough
    not to loop during a run: baresip 1.0's avformat source loses its pace after a rewind
    (a 4 s clip came out at 1-11 fps instead of 25)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    width, height = CLIP_SIZE
    path = CACHE / f"terminal-{width}x{height}p{CLIP_FPS}-blue-{TERMINAL_CLIP_SECONDS}s.mp4"
    if not path.exists():
        print(f"making {path.name} ...", flush=True)
        part = path.with_suffix(".part.mp4")
        make_solid_clip(part, BLUE, seconds=TERMINAL_CLIP_SECONDS).rename(path)
    return path


async def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when every window was measured."""
    machine, busy = busy_processes()
    print(f"machine: {psutil.cpu_count()} CPUs, {machine:.0f}% busy before the run", flush=True)
    for line in busy:
        print(f"  busy: {line}", flush=True)
    clip, sip_clip = room_clip(), terminal_clip()
    loaded = read_clip(clip)
    source = (f"{CLIP_SIZE[0]}x{CLIP_SIZE[1]} {CLIP_FPS} fps solid clip" if
              args.terminal_source == "clip" else "fakevideo pattern")  # fmt: skip
    print(
        f"room clip: {WIDTH}x{HEIGHT} {FPS} fps H.264, {loaded.video_bitrate / 1e6:.2f} Mbit/s;"
        f" terminal: baresip, {source} re-encoded (libx264) at {args.terminal_kbps} kbit/s, "
        "sine tone",
        flush=True,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="bench-videonet-calls-") as tmp:
        rows, problems = await run(args, clip, sip_clip, Path(tmp), log_dir, stamp)
    lines, notes = tables(rows), summary(rows)
    print("\n" + "\n".join(lines) + "\n\n" + "\n".join(notes))
    if problems:
        print("\nproblems:\n" + "\n".join(problems))
    out = RESULTS / f"videonet_calls-{stamp}.json"
    data: dict[str, Any] = {
        "machine_busy_percent": machine, "busy_processes": busy, "cpus": psutil.cpu_count(),
        "window_seconds": args.window, "settle_seconds": args.settle, "rounds": args.rounds,
        "clip": {"width": WIDTH, "height": HEIGHT, "fps": FPS,
                 "video_bitrate": round(loaded.video_bitrate)},
        "terminal": {"program": "baresip", "source": args.terminal_source,
                     "video_bitrate": args.terminal_kbps * 1000, "receive_slot": OTHERS},
        "windows": [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                     for k, v in asdict(r).items()} for r in rows],
        "tables": lines, "summary": notes, "problems": problems,
    }  # fmt: skip
    out.write_text(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), encoding="utf-8")
    print(f"results: {out}")
    return 0 if rows and not any(r.error for r in rows) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=10.0, help="measured seconds per config")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after warm-up")
    parser.add_argument("--rounds", type=int, default=2, help="A, B pairs measured")
    parser.add_argument("--after", action=argparse.BooleanOptionalAction, default=True,
                        help="measure A again after the terminal hung up")  # fmt: skip
    parser.add_argument("--terminal-kbps", type=int, default=TERMINAL_BITRATE // 1000,
                        help="baresip's video bitrate")  # fmt: skip
    parser.add_argument("--terminal-source", choices=("clip", "fakevideo"), default="clip",
                        help="baresip's video: the solid clip or its moving pattern")  # fmt: skip
    parser.add_argument("--log-level", default="INFO", help="the hub's log level")
    parser.add_argument(
        "--quick", action="store_true", help="smoke: one round, 4 s windows, 1 s settle"
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.window, arguments.settle, arguments.rounds = 4.0, 1.0, 1
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(asyncio.run(main(arguments)))
