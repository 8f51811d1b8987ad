"""Command line of the ingest benchmark (:mod:`tests.bench.ingest`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("sqlite", "postgres", "bare")
DEFAULT_PHONES = 1000
DEFAULT_PINGS = 50
QUICK_PHONES = 200
QUICK_PINGS = 20
DEFAULT_PROCESSES = max(2, os.cpu_count() or 2)
DEFAULT_WINDOW = 5000
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Options:
    """Command-line settings of one benchmark run."""

    backends: tuple[str, ...]
    phones: int
    pings: int
    processes: int
    window: int
    repeat: int
    publisher: str
    postgres_url: str
    stall_timeout: float
    max_wait: float
    output: Path | None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.ingest",
        description="Grid phones through Mosquitto into the hub, vs a bare paho subscriber.",
    )
    parser.add_argument("--only", default=",".join(BACKENDS),
                        help="runs, comma-separated (default: %(default)s)")  # fmt: skip
    parser.add_argument("--phones", type=int, help=f"phones K (default {DEFAULT_PHONES})")
    parser.add_argument("--pings", type=int, help=f"pings per phone M (default {DEFAULT_PINGS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: K={QUICK_PHONES}, M={QUICK_PINGS}")  # fmt: skip
    parser.add_argument("--processes", type=int, default=DEFAULT_PROCESSES,
                        help="phone processes (default: one per CPU, at least 2)")  # fmt: skip
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help="pings per phone process not yet acked by the broker "
                        "(default: %(default)s)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each backend, interleaved; ratios use medians")  # fmt: skip
    parser.add_argument("--publisher", choices=("raw", "paho"), default="raw",
                        help="phones as lean raw MQTT 3.1.1 connections (default: they leave "
                        "the cores to the broker and the hub) or as paho clients, which need "
                        "more than a core here to publish 20,000 pings/s")  # fmt: skip
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES,
                        help="an existing database to create the run's database from "
                        "(default: %(default)s)")  # fmt: skip
    parser.add_argument("--stall-timeout", type=float, default=20.0,
                        help="give up when nothing is stored for this long (s)")  # fmt: skip
    parser.add_argument("--max-wait", type=float, default=300.0,
                        help="give up on a run's timed round after this long (s)")  # fmt: skip
    parser.add_argument("--output", type=Path, help="results JSON path")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.only.split(",") if b.strip())
    for backend in backends:
        if backend not in BACKENDS:
            parser.error(f"unknown run {backend!r}; choose from {', '.join(BACKENDS)}")
    phones = args.phones or (QUICK_PHONES if args.quick else DEFAULT_PHONES)
    pings = args.pings or (QUICK_PINGS if args.quick else DEFAULT_PINGS)
    if min(phones, pings, args.processes, args.window, args.repeat) < 1:
        parser.error("--phones, --pings, --processes, --window and --repeat must be ≥ 1")
    return Options(
        backends=backends,
        phones=phones,
        pings=pings,
        processes=min(args.processes, phones),
        window=args.window,
        repeat=args.repeat,
        publisher=args.publisher,
        postgres_url=args.postgres_url,
        stall_timeout=args.stall_timeout,
        max_wait=args.max_wait,
        output=args.output,
    )
