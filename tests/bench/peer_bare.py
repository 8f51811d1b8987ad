"""The "bare loop" peer: an aiohttp server that fans out with ``await ws.send_str(msg)``.

``GET /ws`` registers a subscriber (the server answers ``ok`` once it is in the set).
``GET /publish`` is the publisher's WebSocket: for every text message received, the server
runs ``for ws in clients: await ws.send_str(msg)`` and then answers ``ok``.
``GET /healthz`` answers 200 for the readiness probe.

Run: ``python -m tests.bench.peer_bare --port 8101``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from aiohttp import WSMsgType, web

from tests.bench.procutil import raise_nofile_limit, run

LISTEN_BACKLOG = 4096

CLIENTS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("clients", set)


async def subscriber(request: web.Request) -> web.WebSocketResponse:
    """A subscriber: held in the client set until it goes away."""
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    clients = request.app[CLIENTS]
    clients.add(ws)
    try:
        await ws.send_str("ok")
        async for _ in ws:
            pass
    finally:
        clients.discard(ws)
    return ws


async def publisher(request: web.Request) -> web.WebSocketResponse:
    """The publisher: each text message is sent to every subscriber in turn."""
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    clients = request.app[CLIENTS]
    await ws.send_str("ok")
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        msg = message.data
        # A snapshot, because a subscriber leaving during an await would change the set.
        for client in tuple(clients):
            try:
                await client.send_str(msg)
            except ConnectionError:
                clients.discard(client)
        await ws.send_str("ok")
    return ws


async def healthz(_request: web.Request) -> web.Response:
    """Readiness probe."""
    return web.Response(text="ok")


def make_app() -> web.Application:
    """The bare fan-out application."""
    app = web.Application()
    app[CLIENTS] = set()
    app.router.add_get("/ws", subscriber)
    app.router.add_get("/publish", publisher)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve ``app`` until SIGTERM or SIGINT (shared by both peers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
        await site.start()
        await stop.wait()
    finally:
        with contextlib.suppress(asyncio.TimeoutError):
            async with asyncio.timeout(10):
                await runner.cleanup()


def parse_args(description: str) -> argparse.Namespace:
    """Command line shared by both peers."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    return parser.parse_args()


def main() -> None:
    """Entry point."""
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "bare peer")
    raise_nofile_limit()
    run(serve(make_app(), args.host, args.port), args.loop)


if __name__ == "__main__":
    main()
