"""Consultation room benchmark: hub CPU for 4-party rooms of 640×480 25 fps video, relayed
and (same run, same load) with transcoding forced, and how many relayed rooms one hub
process sustains.

    python -m tests.bench.consultations [--steps 1,2,4,...] [--window 10] [--quick]

The hub runs as ``hub serve`` (SQLite, memory bus, recording off unless said) on 127.0.0.1.
The participants run in ``room_peers.py`` processes (rooms spread over ``--peer-processes``):
each sends a pre-encoded clip (H.264 constrained baseline ~1 Mbit/s, keyframe every 2 s,
and 20 ms Opus packets) that aiortc packetises without encoding, and counts the encoded
frames the hub relays to it without decoding them.

1. Relay: the room count is stepped up (1, 2, 4, 6, …) on one hub until the hub uses ≥ 95 %
   of one core, fewer than 95 % of the frames sent arrive, the participants' processes or
   the machine saturate (the load generator shares the 2 cores: said, not hidden), an
   error, ``--max-rooms`` or the time budget. The 1-room step is the relay figure.
2. Transcode: a second hub with ``HUB_CONSULTATIONS__FORCE_TRANSCODE=true``, one room.
3. Optionally (``--record``) a third hub, relaying one room with recording on.

Per step the hub's CPU (user + system over the window / window, % of one core) comes from
psutil, frames forwarded/decoded/encoded from the hub's /metrics before and after the
window, delivery from the participants (frames received / frames sent × the other
participants of the room). Prints a table and writes results/consultations-<stamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from hub.db.migrate import upgrade
from tests.bench.machine import MachineMeter, busy_processes
from tests.bench.procutil import stop_child
from tests.bench.room_peers import FPS, HEIGHT, USERS, VIDEO_BITRATE, WIDTH, make_clip, read_clip
from tests.support.hubs import HubProcess, hub_process, make_settings, settings_env

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = RESULTS / "cache"
VENV_PYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"
ROOM_SIZE = len(USERS)
TARGET_CPU = 25.0
"""Target: one 4-party room relayed under a quarter of one core."""
HUB_SATURATED = 95.0
PEERS_SATURATED = 90.0
"""A participants' process above this share of one core cannot keep its pace."""
MACHINE_SATURATED = 95.0
MIN_DELIVERY = 95.0
NOISY_OTHERS = 25.0
"""CPU of foreign processes (% of one core) above which a step is flagged as skewed."""
WARM_FRAMES = 25
"""Video frames every receive slot must have got before the settle time starts."""
WARM_TIMEOUT = 60.0
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SNAP_TIMEOUT = 10.0
POLL = 0.25
IDLE_WINDOW = 4.0
MIB = 1024 * 1024
METRICS = ("received", "forwarded", "decoded", "encoded")


@dataclass
class Step:
    """One measurement: a mode and a number of rooms on one hub."""

    mode: str
    rooms: int
    participants: int = 0
    window_seconds: float = 0.0
    hub_cpu: float = math.nan
    """% of one core, user + system."""
    hub_rss_mib: float = math.nan
    received_per_s: float = math.nan
    forwarded_per_s: float = math.nan
    decoded_per_s: float = math.nan
    encoded_per_s: float = math.nan
    keyframe_requests_per_s: float = math.nan
    sent_video_fps: float = math.nan
    """Per source: below 25 when the participants' processes fell behind."""
    video_delivery: float = math.nan
    audio_delivery: float = math.nan
    peers_cpu: float = math.nan
    """All participants' processes, % of one core."""
    peers_cpu_max: float = math.nan
    """The busiest participants' process, % of one core."""
    machine: float = math.nan
    """Both CPUs, % busy (hub, participants and anything else)."""
    others: float = math.nan
    """CPU of everything but the hub and the participants (the orchestrator, other users of
    the machine), % of one core: a busy machine skews every figure."""
    udp_drops: int = 0
    """Datagrams the kernel dropped for full socket buffers during the window (machine-wide)."""
    stop: str | None = None
    error: str | None = None


class PeerProcess:
    """One ``room_peers`` process: commands in, answers out."""

    def __init__(self, index: int, log_dir: Path) -> None:
        self.index = index
        self.rooms = 0
        self.log_path = log_dir / f"room-peers-{index}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._snaps: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._seq = 0
        self._reader: asyncio.Task[None] | None = None

    async def start(self, url: str, clip: Path) -> None:
        """Launch and wait for READY (every user's WebSocket connected)."""
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                str(VENV_PYTHON), "-m", "tests.bench.room_peers", url, str(clip),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        self.ps = psutil.Process(self.proc.pid)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        line = await asyncio.wait_for(self._lines.get(), READY_TIMEOUT)
        if line != "READY":
            raise RuntimeError(f"participants' process {self.index}: {line}")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().strip()
            kind, _, rest = line.partition(" ")
            if kind == "SNAP":
                seq, _, body = rest.partition(" ")
                waiter = self._snaps.pop(int(seq), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(orjson.loads(body))
            else:
                self._lines.put_nowait(line)
        self._lines.put_nowait("ERROR the participants' process exited")

    def _send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    async def add(self, count: int, timeout: float) -> None:
        """Open ``count`` more rooms; raise with the process's error if it failed."""
        self._send(f"ADD {count}")
        line = await asyncio.wait_for(self._lines.get(), timeout)
        if not line.startswith("ADDED"):
            raise RuntimeError(f"participants' process {self.index}: {line}")
        self.rooms += count

    async def snapshot(self) -> dict[str, Any]:
        """The process's counters now."""
        self._seq += 1
        waiter = asyncio.get_running_loop().create_future()
        self._snaps[self._seq] = waiter
        self._send(f"SNAP {self._seq}")
        result: dict[str, Any] = await asyncio.wait_for(waiter, SNAP_TIMEOUT)
        return result

    def cpu_seconds(self) -> float:
        """User + system CPU seconds so far."""
        assert self.ps is not None
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    async def stop(self) -> None:
        """Close stdin (the process hangs up and exits); kill if it lingers."""
        await stop_child(self.proc, self._reader, STOP_TIMEOUT)


async def room_metrics(http: aiohttp.ClientSession, hub: HubProcess) -> dict[str, float]:
    """The hub's room counters from /metrics."""
    async with http.get(hub.url + "/metrics") as reply:
        text = await reply.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("hub_room_"):
            values[name.removeprefix("hub_room_").removesuffix("_total")] = float(value)
    return values


def udp_receive_errors() -> int:
    """The kernel's count of UDP datagrams (IPv4 and IPv6) dropped for a full receive
    buffer, machine-wide (the ICE pair is often IPv6)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = next((h, v) for h, v in itertools.pairwise(lines) if h[0] == "Udp:"
                          and v[0] == "Udp:" and h != v)  # fmt: skip
    drops = int(values[header.index("RcvbufErrors")])
    with contextlib.suppress(OSError, StopIteration):
        v6 = Path("/proc/net/snmp6").read_text().splitlines()
        drops += int(next(line.split()[1] for line in v6 if line.startswith("Udp6RcvbufErrors")))
    return drops


async def idle(hub: HubProcess, mode: str, seconds: float) -> Step:
    """The hub's CPU with every participant's WebSocket open and no room."""
    assert hub.proc is not None
    process = psutil.Process(hub.proc.pid)
    step = Step(mode, 0)
    cpu0, started = cpu_seconds(process), time.monotonic()
    await asyncio.sleep(seconds)
    step.window_seconds = time.monotonic() - started
    step.hub_cpu = (cpu_seconds(process) - cpu0) / step.window_seconds * 100
    step.hub_rss_mib = float(process.memory_info().rss) / MIB
    print(f"  {mode:12}   0 rooms: hub {step.hub_cpu:5.1f}% of a core (idle)", flush=True)
    return step


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of a process so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


async def totals(groups: list[PeerProcess]) -> dict[str, int]:
    """The participants' counters summed over their processes."""
    snaps = await asyncio.gather(*(g.snapshot() for g in groups))
    return {k: sum(int(s[k]) for s in snaps) for k in snaps[0] if k != "min_slot_video"} | {
        "min_slot_video": min(int(s["min_slot_video"]) for s in snaps if s["rooms"])
    }


async def warm_up(groups: list[PeerProcess], settle: float) -> None:
    """Until every participant is connected and every receive slot has had video, then
    ``settle`` seconds more (first GOP bursts and keyframe requests pass)."""
    deadline = time.monotonic() + WARM_TIMEOUT
    while True:
        snap = await totals(groups)
        if snap["connected"] == snap["participants"] and snap["min_slot_video"] >= WARM_FRAMES:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"warm-up: {snap['connected']}/{snap['participants']} connected, the "
                f"poorest receive slot has {snap['min_slot_video']} video frames"
            )
        await asyncio.sleep(POLL)
    await asyncio.sleep(settle)


async def measure(
    http: aiohttp.ClientSession, hub: HubProcess, groups: list[PeerProcess], step: Step,
    window: float,
) -> None:  # fmt: skip
    """One window: hub CPU, hub counters, the participants' counters and CPU."""
    assert hub.proc is not None
    process = psutil.Process(hub.proc.pid)
    active = [g for g in groups if g.rooms]
    meter = MachineMeter()
    before_metrics, before_peers = await room_metrics(http, hub), await totals(active)
    meter.start()
    drops = udp_receive_errors()
    cpu0, peers0 = cpu_seconds(process), [g.cpu_seconds() for g in groups]
    started = time.monotonic()
    await asyncio.sleep(window)
    cpu1, peers1 = cpu_seconds(process), [g.cpu_seconds() for g in groups]
    ended = time.monotonic()
    step.machine = meter.percent()
    step.udp_drops = udp_receive_errors() - drops
    cpus = psutil.cpu_count() or 1
    after_metrics, after_peers = await room_metrics(http, hub), await totals(active)
    span = step.window_seconds = ended - started
    step.hub_cpu = (cpu1 - cpu0) / span * 100
    step.hub_rss_mib = float(process.memory_info().rss) / MIB
    shares = [(b - a) / span * 100 for a, b in zip(peers0, peers1, strict=True)]
    step.peers_cpu, step.peers_cpu_max = sum(shares), max(shares)
    step.others = max(0.0, step.machine * cpus - step.hub_cpu - step.peers_cpu)
    rates = {k: (after_metrics.get(f"frames_{k}", 0) - before_metrics.get(f"frames_{k}", 0))
             / span for k in METRICS}  # fmt: skip
    step.received_per_s, step.forwarded_per_s = rates["received"], rates["forwarded"]
    step.decoded_per_s, step.encoded_per_s = rates["decoded"], rates["encoded"]
    step.keyframe_requests_per_s = (
        after_metrics.get("keyframe_requests", 0) - before_metrics.get("keyframe_requests", 0)
    ) / span
    delta = {k: after_peers[k] - before_peers[k] for k in after_peers}
    step.participants = after_peers["participants"]
    step.sent_video_fps = delta["sent_video"] / span / max(step.participants, 1)
    for kind in ("video", "audio"):
        expected = delta[f"expected_{kind}"]
        ratio = delta[f"received_{kind}"] / expected * 100 if expected else math.nan
        setattr(step, f"{kind}_delivery", ratio)


def stop_reason(step: Step) -> str | None:
    """Why the ramp ends after this step (None: go on)."""
    if step.error:
        return "error"
    reasons = []
    if step.peers_cpu_max >= PEERS_SATURATED or step.sent_video_fps < FPS * 0.98:
        reasons.append("participants' process saturated")
    if step.machine >= MACHINE_SATURATED:
        reasons.append("machine saturated")
    if step.hub_cpu >= HUB_SATURATED:
        reasons.append("hub ≥ 95% of a core")
    if not step.video_delivery >= MIN_DELIVERY:
        reasons.append("video delivery < 95%")
    return ", ".join(reasons) or None


def describe(step: Step) -> str:
    """One progress line."""
    if step.error:
        return f"  {step.mode:12} {step.rooms:3} rooms: ERROR {step.error}"
    return (
        f"  {step.mode:12} {step.rooms:3} rooms: hub {step.hub_cpu:5.1f}% of a core, "
        f"fwd {step.forwarded_per_s:6.0f}/s, dec {step.decoded_per_s:4.0f}/s, "
        f"enc {step.encoded_per_s:4.0f}/s, delivery video {step.video_delivery:5.1f}% "
        f"audio {step.audio_delivery:5.1f}%, sent {step.sent_video_fps:4.1f} fps/source, "
        f"peers {step.peers_cpu:5.1f}% (max {step.peers_cpu_max:4.1f}%), "
        f"others {step.others:3.0f}%, machine {step.machine:3.0f}%, {step.udp_drops} UDP drops, "
        f"{step.keyframe_requests_per_s:.1f} PLI/s"
        + (f"  -> stop: {step.stop}" if step.stop else "")
    )


async def run_mode(
    mode: str, steps: list[int], args: argparse.Namespace, clip: Path, tmp: Path, log_dir: Path
) -> list[Step]:
    """All room counts of one mode, on one fresh hub and fresh participants' processes."""
    db_url = f"sqlite+aiosqlite:///{tmp / f'hub-{mode}.db'}"
    await asyncio.to_thread(upgrade, db_url)
    env = settings_env(make_settings(db_url, None))
    env.update(
        HUB_CONSULTATIONS__FORCE_TRANSCODE="true" if mode == "transcode" else "false",
        HUB_CONSULTATIONS__RECORD="true" if mode == "relay+record" else "false",
        HUB_CONSULTATIONS__RECORDINGS_DIR=str(tmp / f"recordings-{mode}"),
        HUB_CONSULTATIONS__MAX_ROOMS=str(max(steps) + 1),
        HUB_CONSULTATIONS__MAX_PARTICIPANTS=str(ROOM_SIZE),
        HUB_CAMERAS__CAMERAS_FILE="",
        HUB_LOG_LEVEL="WARNING",
    )
    results: list[Step] = []
    started = time.monotonic()
    groups = [PeerProcess(i, log_dir) for i in range(args.peer_processes)]
    with hub_process(env, log_dir) as hub:
        hub.start()
        await hub.wait_ready(60)
        try:
            await asyncio.gather(*(g.start(hub.url, clip) for g in groups))
            await asyncio.sleep(args.settle)
            results.append(await idle(hub, mode, min(args.window, IDLE_WINDOW)))
            async with aiohttp.ClientSession() as http:
                for rooms in steps:
                    if len(results) > 1 and time.monotonic() - started > args.budget:
                        results[-1].stop = (results[-1].stop or "") + "time budget"
                        break
                    step = Step(mode, rooms)
                    results.append(step)
                    try:
                        await grow(groups, rooms)
                        await warm_up(groups, args.settle)
                        await measure(http, hub, groups, step, args.window)
                    except (RuntimeError, TimeoutError) as err:
                        step.error = f"{type(err).__name__}: {err}"
                    step.stop = stop_reason(step)
                    print(describe(step), flush=True)
                    if step.stop:
                        break
        finally:
            await asyncio.gather(*(g.stop() for g in groups))
    return results


async def grow(groups: list[PeerProcess], rooms: int) -> None:
    """Open rooms until there are ``rooms``, each in the process with the fewest."""
    plan = [0] * len(groups)
    have = sum(g.rooms for g in groups)
    for _ in range(rooms - have):
        index = min(range(len(groups)), key=lambda i: groups[i].rooms + plan[i])
        plan[index] += 1
    await asyncio.gather(
        *(g.add(n, WARM_TIMEOUT + 10 * n) for g, n in zip(groups, plan, strict=True) if n)
    )


def _num(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def table(steps: list[Step]) -> list[str]:
    """The result table (markdown)."""
    lines = [
        "| mode | rooms | participants | hub CPU % of 1 core | per room | forwarded/s "
        "| decoded/s | encoded/s | video delivery % | audio delivery % | sent fps/source "
        "| peers' CPU % (max proc) | others' CPU % | machine % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        if s.error:
            lines.append(f"| {s.mode} | {s.rooms} | error: {s.error} |" + " |" * 11)
            continue
        lines.append("| " + " | ".join([
            s.mode, str(s.rooms), str(s.participants), _num(s.hub_cpu, 1),
            _num(s.hub_cpu / s.rooms if s.rooms else math.nan, 1), _num(s.forwarded_per_s),
            _num(s.decoded_per_s), _num(s.encoded_per_s), _num(s.video_delivery, 1),
            _num(s.audio_delivery, 1), _num(s.sent_video_fps, 1),
            f"{_num(s.peers_cpu)} ({_num(s.peers_cpu_max)})", _num(s.others), _num(s.machine),
        ]) + " |")  # fmt: skip
    return lines


def _unequal(*steps: Step) -> str:
    """A warning when the compared steps did not carry the whole load."""
    if all(s.video_delivery >= MIN_DELIVERY for s in steps):
        return ""
    return " (not comparable: a step delivered under 95% of the frames)"


def summary(steps: list[Step]) -> list[str]:
    """Ratios, capacity and the verdict on the target."""
    first = {s.mode: s for s in steps if s.rooms == 1 and not s.error}
    relay, transcode = first.get("relay"), first.get("transcode")
    lines = []
    if relay and transcode:
        lines.append(
            f"transcode / relay hub CPU, one room: {transcode.hub_cpu / relay.hub_cpu:.1f}x "
            f"({transcode.hub_cpu:.1f}% vs {relay.hub_cpu:.1f}%)" + _unequal(relay, transcode)
        )
    if (record := first.get("relay+record")) and relay:
        lines.append(
            f"relay with recording / without, one room: {record.hub_cpu / relay.hub_cpu:.2f}x"
            + _unequal(relay, record)
        )
    ramp = [s for s in steps if s.mode == "relay"]
    clean = [s for s in ramp if not s.error and s.hub_cpu < HUB_SATURATED
             and s.video_delivery >= MIN_DELIVERY]  # fmt: skip
    if ramp:
        last = ramp[-1]
        why = last.stop or "all steps done"
        best = clean[-1] if clean else None
        if best is None:
            lines.append(f"relay capacity: not even one room sustained ({why})")
        else:
            per_room = best.hub_cpu / best.rooms
            base = next((s.hub_cpu for s in steps if s.mode == "relay" and not s.rooms), 0.0)
            marginal = (best.hub_cpu - base) / best.rooms
            projected = (HUB_SATURATED - base) / marginal if marginal > 0 else math.nan
            if "saturated" in why and "hub" not in why:
                bound = "machine: hub, participants and others share 2 cores"
            elif "hub" in why or "delivery" in why:
                bound = "hub"
            else:
                bound = "step list or time budget"
            lines.append(
                f"relay capacity: {best.rooms} rooms ({best.rooms * ROOM_SIZE} participants) "
                f"sustained at {best.hub_cpu:.1f}% of one core, {per_room:.1f}% per room; "
                f"the ramp ended on: {why} (limited by the {bound}); idle hub "
                f"{base:.1f}%, {marginal:.1f}% more per room: a whole core would carry "
                f"about {projected:.1f} rooms"
            )
    noisy = [f"{s.mode} {s.rooms}" for s in steps if s.others > NOISY_OTHERS]
    if noisy:
        lines.append(
            f"WARNING: other processes used over {NOISY_OTHERS:.0f}% of a core during: "
            f"{', '.join(noisy)}; those figures are skewed (the machine is shared), re-run"
        )
    met = relay is not None and relay.hub_cpu < TARGET_CPU and relay.video_delivery >= 95
    verdict = (
        f"target: one 4-party room relayed under {TARGET_CPU:.0f}% of one core: "
        + ("not measured" if relay is None else
           f"{'MET' if met else 'NOT MET'} ({relay.hub_cpu:.1f}%, "
           f"video delivery {relay.video_delivery:.1f}%)")
    )  # fmt: skip
    return [*lines, verdict]


def room_clip() -> Path:
    """The cached pre-encoded clip, made on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"room-{HEIGHT}p{FPS}-cb-{VIDEO_BITRATE // 1000}k.bin"
    if not path.exists():
        print(f"making {path.name} ...", flush=True)
        make_clip(path)
    return path


async def main(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when the target is met."""
    steps = sorted({int(c) for c in args.steps.split(",") if int(c) <= args.max_rooms})
    machine, busy = busy_processes()
    print(f"machine: {psutil.cpu_count()} CPUs, {machine:.0f}% busy before the run", flush=True)
    for line in busy:
        print(f"  busy: {line}", flush=True)
    clip = room_clip()
    loaded = read_clip(clip)
    print(
        f"clip: {WIDTH}x{HEIGHT} {FPS} fps H.264 constrained baseline, "
        f"{loaded.video_bitrate / 1e6:.2f} Mbit/s, {len(loaded.video) / FPS:.0f} s loop; "
        f"Opus {len(loaded.audio)} × 20 ms",
        flush=True,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "logs"
    log_dir.mkdir(exist_ok=True)
    plan = [("relay", steps), ("transcode", [1])]
    if args.record:
        plan.append(("relay+record", [1]))
    results: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="bench-consultations-") as tmp:
        for mode, counts in plan:
            print(f"{mode}:", flush=True)
            results += await run_mode(mode, counts, args, clip, Path(tmp), log_dir)
    lines = table(results)
    notes = summary(results)
    print("\n" + "\n".join(lines) + "\n\n" + "\n".join(notes))
    out = RESULTS / f"consultations-{time.strftime('%Y%m%d-%H%M%S')}.json"
    data: dict[str, Any] = {
        "machine_busy_percent": machine, "busy_processes": busy,
        "window_seconds": args.window, "settle_seconds": args.settle,
        "peer_processes": args.peer_processes,
        "clip": {"width": WIDTH, "height": HEIGHT, "fps": FPS,
                 "video_bitrate": round(loaded.video_bitrate)},
        "steps": [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                   for k, v in asdict(s).items()} for s in results],
        "table": lines, "summary": notes,
    }  # fmt: skip
    out.write_text(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), encoding="utf-8")
    print(f"results: {out}")
    return 0 if notes[-1].split(": ")[-1].startswith("MET") else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="1,2,3,4,5,6,8,10,12,16", help="room counts of the ramp")
    parser.add_argument("--max-rooms", type=int, default=16, help="the ramp's upper bound")
    parser.add_argument("--window", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after warm-up")
    parser.add_argument("--budget", type=float, default=150.0, help="ramp seconds before stop")
    parser.add_argument("--peer-processes", type=int, default=2, help="participants' processes")
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=True,
                        help="one more relayed room with recording on")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke: 1,2 rooms, 4 s windows")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.steps, arguments.window, arguments.settle = "1,2", 4.0, 1.0
        arguments.record = False
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(asyncio.run(main(arguments)))
