"""The ``hub`` command: serve, db upgrade, token, tail, demo."""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import signal
import sys
from typing import TYPE_CHECKING, Any

from hub.config import Settings, load_settings

if TYPE_CHECKING:
    from aiohttp import web

CONSOLE_USER = "admin"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hub`` console script."""
    parser = argparse.ArgumentParser(prog="hub", description="Grid Hub")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hub")
    serve.add_argument("--host", help="bind address (default from config)")
    serve.add_argument("--port", type=int, help="port (default from config)")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="also run the demo driver (`hub demo`) once the hub is up (needs demo data)",
    )

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate to the latest schema")
    down = db_sub.add_parser("downgrade", help="migrate back to a revision")
    down.add_argument("revision")
    db_sub.add_parser("current", help="show the current revision")

    token = sub.add_parser("token", help="mint a development token")
    token.add_argument("--user", required=True)
    token.add_argument("--org", required=True, help="org path, e.g. d01.s01")
    token.add_argument("--roles", required=True, help="comma-separated roles")
    token.add_argument("--ttl", type=int, help="lifetime in seconds")

    tail = sub.add_parser("tail", help="print live events of a channel")
    tail.add_argument("--channel", required=True, help="e.g. org:d01")
    tail.add_argument("--url", help="hub base URL (default from config)")
    tail.add_argument("--token", help="token (default: a development admin token)")
    tail.add_argument("--count", type=int, default=0, help="stop after N events (0: never)")

    sub.add_parser("config-doc", help="print the configuration reference (Markdown)")

    demo = sub.add_parser(
        "demo", help="simulated grid phones, cases and notices against a running hub"
    )
    demo.add_argument("--url", help="hub base URL (default from config)")
    demo.add_argument(
        "--mqtt", help="broker URL (default: the running hub's, from var/runtime.json)"
    )
    demo.add_argument("--workers", type=int, help="phones to simulate (default: all)")
    demo.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    demo.add_argument("--seed", type=int, help="random seed (repeatable runs)")

    args = parser.parse_args(argv)
    settings = load_settings()
    if args.command == "serve":
        return _serve(settings, args)
    if args.command == "db":
        return _db(settings, args)
    if args.command == "token":
        return _token(settings, args)
    if args.command == "config-doc":
        from hub.config_doc import reference

        print(reference())
        return 0
    if args.command == "tail":
        from hub.tail import tail as run_tail

        return asyncio.run(run_tail(settings, args.channel, args.url, args.token, args.count))
    if args.command == "demo":
        return _demo(settings, args)
    return 2


def _serve(settings: Settings, args: Any) -> int:
    from aiohttp import web

    from hub.app import create_app
    from hub.logs import configure_logging

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    if overrides:
        settings = settings.model_copy(update=overrides)
    configure_logging(settings.log_format, settings.log_level)
    _raise_fd_limit()
    app = create_app(settings)
    app.on_startup.append(_freeze_heap)
    if settings.demo_data:
        app.on_startup.append(lambda started: _print_welcome(started, settings))
        app.on_cleanup.append(_forget_runtime)
    if args.demo:
        if settings.demo_data:
            from hub.demo.background import attach_demo

            attach_demo(app, settings, local_url(settings))
        else:
            print("hub serve: no demo data (HUB_DEMO_DATA=false): demo driver off", file=sys.stderr)
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=None,
            shutdown_timeout=settings.shutdown_timeout,
            backlog=4096,
            access_log=None,
        )
    except OSError as err:
        print(
            f"hub serve: cannot listen on {settings.host}:{settings.port} ({err.strerror}); "
            "pick another port with --port or HUB_PORT",
            file=sys.stderr,
        )
        return 1
    return 0


async def _freeze_heap(app: web.Application) -> None:
    """Once started, keep what lives as long as the process out of the cyclic garbage
    collector's scans: the ingest path allocates enough to trigger many of them (about a
    tenth of its CPU time before)."""
    gc.freeze()


async def _print_welcome(app: web.Application, settings: Settings) -> None:
    from hub.auth.tokens import mint_token
    from hub.demo.runtime import write_runtime
    from hub.state import HUB

    token = mint_token(
        settings.jwt_secret.get_secret_value(),
        user=CONSOLE_USER,
        org="d01",
        roles=["admin", "leader", "dispatcher"],
        ttl=settings.jwt_ttl,
    )
    phones = ""
    broker: str | None = None
    for adapter in app[HUB].adapters:
        url = getattr(adapter, "broker_url", None)
        if url:
            broker = url
            kind = "embedded broker" if settings.mqtt_url is None else "broker"
            phones = f"  Grid phones (MQTT, {kind}): {url}\n"
    console = local_url(settings) + "/"
    if broker is not None and settings.mqtt_url is None:
        # For `hub demo` and other local tools: the embedded broker moves to a free port
        # when the configured one is taken, so the config alone does not say where it is.
        write_runtime(local_url(settings), broker)
    print(
        f"\nGrid Hub is running.\n  Console:  {console}\n{phones}"
        f"  Login token ({CONSOLE_USER}, district d01):\n  {token}\n"
        f"  Console, signed in:\n  {console}?token={token}\n",
        flush=True,
    )


async def _forget_runtime(app: web.Application) -> None:
    from hub.demo.runtime import remove_runtime

    remove_runtime()


def local_url(settings: Settings) -> str:
    """The hub's base URL as seen from this machine."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def _demo(settings: Settings, args: Any) -> int:
    from hub.demo import DemoError, DemoOptions, run_demo

    if args.workers is not None and args.workers < 1:
        print("hub demo: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.duration is not None and args.duration <= 0:
        print("hub demo: --duration must be positive", file=sys.stderr)
        return 2
    options = DemoOptions(
        url=(args.url or local_url(settings)).rstrip("/"),
        mqtt_url=args.mqtt,
        topic_prefix=settings.mqtt.topic_prefix,
        workers=args.workers,
        duration=args.duration,
        seed=args.seed,
    )

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_demo(settings, options, stop=stop)
        except DemoError as err:
            print(f"hub demo: {err}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(run())


def _db(settings: Settings, args: Any) -> int:
    from hub.db import migrate

    url = settings.resolved_database_url()
    if args.db_command == "upgrade":
        migrate.upgrade(url)
        print("database is at the latest schema")
    elif args.db_command == "downgrade":
        migrate.downgrade(url, args.revision)
    else:
        migrate.current(url)
    return 0


def _token(settings: Settings, args: Any) -> int:
    from hub.auth.tokens import mint_token

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    try:
        token = mint_token(
            settings.jwt_secret.get_secret_value(),
            user=args.user,
            org=args.org,
            roles=roles,
            ttl=args.ttl or settings.jwt_ttl,
        )
    except ValueError as err:
        print(f"hub token: {err}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    sys.exit(main())
