"""The python-socketio peer: ``AsyncServer(async_mode="aiohttp")`` with one room.

Subscribers emit ``join`` (acknowledged) to enter the room; the publisher emits
``publish`` (acknowledged once fanned out) and the server does
``await sio.emit("pub", data, room=...)``. ``GET /healthz`` is the readiness probe.

Run: ``python -m tests.bench.peer_socketio --port 8102``.
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp import web

from tests.bench.clients import SOCKETIO_ROOM
from tests.bench.peer_bare import healthz, parse_args, serve
from tests.bench.procutil import raise_nofile_limit, run


def make_app() -> web.Application:
    """The socket.io fan-out application."""
    sio = socketio.AsyncServer(async_mode="aiohttp", logger=False, engineio_logger=False)

    async def join(sid: str, room: str) -> bool:
        await sio.enter_room(sid, room)
        return True

    async def publish(_sid: str, data: Any) -> bool:
        await sio.emit("pub", data, room=SOCKETIO_ROOM)
        return True

    sio.on("join", join)
    sio.on("publish", publish)
    app = web.Application()
    sio.attach(app)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    """Entry point."""
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "socket.io peer")
    raise_nofile_limit()
    run(serve(make_app(), args.host, args.port), args.loop)


if __name__ == "__main__":
    main()
