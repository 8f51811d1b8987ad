"""``hub tail``: print a channel's live events as JSON lines, reconnecting with recovery.
A plain client of our own WebSocket protocol on the websockets library."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
import websockets

from hub.auth.tokens import mint_token
from hub.config import Settings

MAX_RECONNECT_DELAY = 10.0


async def tail(
    settings: Settings, channel: str, url: str | None, token: str | None, count: int
) -> int:
    """Connect, subscribe, print each publication's event; stop after ``count`` (0: never)."""
    base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    ws_url = base.replace("http://", "ws://").replace("https://", "wss://")
    ws_url += "/connection/websocket"
    token = token or mint_token(
        settings.jwt_secret.get_secret_value(),
        user="hub-tail",
        org="d01",
        roles=["admin"],
        ttl=settings.jwt_ttl,
    )
    printed = 0
    offset, epoch = 0, ""
    delay = 0.5
    while True:
        try:
            async with websockets.connect(ws_url, max_size=None) as ws:
                sub: dict[str, Any] = {"channel": channel}
                if epoch:
                    sub.update(recover=True, offset=offset, epoch=epoch)
                connect = orjson.dumps({"id": 1, "connect": {"token": token}})
                subscribe = orjson.dumps({"id": 2, "subscribe": sub})
                await ws.send((connect + b"\n" + subscribe).decode())
                delay = 0.5
                async for frame in ws:
                    for line in str(frame).splitlines():
                        reply = orjson.loads(line)
                        if not reply:
                            await ws.send("{}")  # pong
                            continue
                        if "error" in reply:
                            print(f"hub tail: {reply['error']}", file=sys.stderr)
                            return 1
                        pubs: list[dict[str, Any]] = []
                        if reply.get("id") == 2:
                            result = reply["subscribe"]
                            epoch = result["epoch"]
                            offset = result["offset"]
                            pubs = result.get("publications", [])
                        push = reply.get("push") or {}
                        if push.get("channel") == channel and "pub" in push:
                            pubs = [push["pub"]]
                        for pub in pubs:
                            print(orjson.dumps(pub["data"]).decode(), flush=True)
                            offset = max(offset, int(pub.get("offset", 0)))
                            printed += 1
                            if count and printed >= count:
                                return 0
        except (OSError, websockets.ConnectionClosed) as err:
            print(f"hub tail: connection lost ({err}); reconnecting", file=sys.stderr)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)
