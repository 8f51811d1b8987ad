"""Command line of the fan-out benchmark (:mod:`tests.bench.fanout`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.bench.servers import KINDS

DEFAULT_CLIENTS = (1000, 5000)
DEFAULT_MESSAGES = {1000: 500, 5000: 200}
FALLBACK_MESSAGES = 200
QUICK_CLIENTS = (200,)
QUICK_MESSAGES = 50
HOLD_CLIENTS = 10_000
# Longer than the hub's ping interval plus pong timeout (25 s + 10 s), so a client that
# failed to answer pings would be gone by the probe.
HOLD_SECONDS = 45.0
# More client processes than cores only adds context switches (measured on 2 cores:
# K=2 delivered 20-40% more per second than K=4 against the bare peer).
DEFAULT_PROCESSES = max(2, os.cpu_count() or 2)


@dataclass(frozen=True)
class Options:
    """Command-line settings of one benchmark run."""

    kinds: tuple[str, ...]
    clients: tuple[int, ...]
    messages: dict[int, int]
    processes: int
    sample_every: int
    window: int
    rate: float
    repeat: int
    payload_bytes: int
    connect_concurrency: int
    retries: int
    stall_timeout: float
    max_wait: float
    hold_clients: int
    hold_seconds: float
    hold_kinds: tuple[str, ...]
    peer_loop: str
    client_loop: str
    output: Path | None


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.fanout",
        description="WebSocket fan-out: hub vs python-socketio vs a bare aiohttp loop.",
    )
    parser.add_argument(
        "--only",
        default=",".join(KINDS),
        help="servers to run, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--clients", help="subscriber counts N, comma-separated (1000,5000)")
    parser.add_argument(
        "--messages",
        help="publications M: one value, or one per N (default 500 for N=1000, 200 for N=5000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: N={QUICK_CLIENTS[0]}, M={QUICK_MESSAGES}, no hold step",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        help="client processes K (default: one per CPU, at least 2: %(default)s)",
    )
    parser.add_argument(
        "--sample-every",
        type=int,
        default=20,
        help="every n-th client measures latency (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each server at each N, interleaved; ratios use medians (default: 1)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="publications per second; 0 (default) publishes at full speed",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=8,
        help="publications in flight, unacknowledged (default: %(default)s)",
    )
    parser.add_argument(
        "--payload-bytes",
        type=int,
        default=200,
        help="size of the published JSON data (default: %(default)s)",
    )
    parser.add_argument(
        "--connect-concurrency",
        type=int,
        default=128,
        help="handshakes in progress, all processes together",
    )
    parser.add_argument("--retries", type=int, default=2, help="connect retries per client")
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=20.0,
        help="give up when no delivery arrives for this long (s)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=420.0,
        help="give up on a run's deliveries after this long (s)",
    )
    parser.add_argument(
        "--hold",
        type=int,
        default=HOLD_CLIENTS,
        help="connections for the hold step, 0 to skip (default: %(default)s)",
    )
    parser.add_argument(
        "--hold-seconds",
        type=float,
        default=HOLD_SECONDS,
        help="how long the hold step keeps them idle (default: %(default)s)",
    )
    parser.add_argument(
        "--hold-servers",
        default="hub",
        help="servers that get the hold step (default: %(default)s)",
    )
    parser.add_argument(
        "--peer-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop of the bare and socketio peers (default: %(default)s, their faster "
        "one, so the hub is compared with their best)",
    )
    parser.add_argument(
        "--client-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop of the client and publisher processes",
    )
    parser.add_argument("--output", type=Path, help="results JSON path")
    args = parser.parse_args(argv)

    kinds = tuple(_csv(args.only))
    hold_kinds = tuple(_csv(args.hold_servers))
    for kind in (*kinds, *hold_kinds):
        if kind not in KINDS:
            parser.error(f"unknown server {kind!r}; choose from {', '.join(KINDS)}")
    if args.clients:
        clients = tuple(int(n) for n in _csv(args.clients))
    else:
        clients = QUICK_CLIENTS if args.quick else DEFAULT_CLIENTS
    if args.messages:
        values = [int(m) for m in _csv(args.messages)]
        if len(values) not in (1, len(clients)):
            parser.error("--messages takes one value or one per --clients value")
        messages = dict(
            zip(clients, values * len(clients) if len(values) == 1 else values, strict=True)
        )
    elif args.quick:
        messages = dict.fromkeys(clients, QUICK_MESSAGES)
    else:
        messages = {n: DEFAULT_MESSAGES.get(n, FALLBACK_MESSAGES) for n in clients}
    if min(args.processes, args.sample_every, args.window, args.repeat) < 1:
        parser.error("--processes, --sample-every, --window and --repeat must be at least 1")
    return Options(
        kinds=kinds,
        clients=clients,
        messages=messages,
        processes=args.processes,
        sample_every=args.sample_every,
        window=args.window,
        rate=args.rate,
        repeat=args.repeat,
        payload_bytes=args.payload_bytes,
        connect_concurrency=args.connect_concurrency,
        retries=args.retries,
        stall_timeout=args.stall_timeout,
        max_wait=args.max_wait,
        hold_clients=0 if args.quick else args.hold,
        hold_seconds=args.hold_seconds,
        hold_kinds=hold_kinds,
        peer_loop=args.peer_loop,
        client_loop=args.client_loop,
        output=args.output,
    )
