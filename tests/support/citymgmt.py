"""A stand-in smart city-management system: an aiohttp app on 127.0.0.1 speaking the
Open311 wire format. It receives our request updates (``POST /servicerequestupdates.json``,
checking our signature, recording each one it accepts, deduplicating by ``update_id`` as
a real receiver would), serves its own ``requests.json`` and ``servicerequestupdates.json``
feeds by date window, and pushes requests to the hub's signed webhook.

Faults: ``faults`` is a list consumed one per incoming update — ``"ok"`` answers as usual,
``"500"`` answers 500,
``"hang"`` holds the request without recording it until ``release()`` and then answers
503 (the hub has timed out long before), ``"take_and_hold"`` records the update and holds
the answer until ``release()`` (an update that arrived but whose ack got lost).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from protocols import signing
from protocols.citymgmt import parse_time, parse_update

WAIT = 30.0
HOOK_PATH = "/api/v1/citymgmt/requests"
REPLAY_RETRIES = 5


@dataclass
class Received:
    """One update the stand-in accepted (duplicates included)."""

    update: dict[str, Any]
    answered: bool
    """False: taken, but the answer was held (and perhaps never reached the hub)."""


@dataclass
class StandIn:
    """Start it, then point ``citymgmt.base_url`` at ``url``."""

    push_secret: str = ""
    faults: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    """What its own ``requests.json`` serves."""
    updates: list[dict[str, Any]] = field(default_factory=list)
    """What its own ``servicerequestupdates.json`` serves."""
    attempts: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _clock: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        """Its Open311 base URL."""
        return f"http://127.0.0.1:{self.port}/open311/v2"

    async def start(self) -> None:
        """Listen on a free port."""
        app = web.Application()
        app.router.add_post("/open311/v2/servicerequestupdates.json", self._post_update)
        app.router.add_get("/open311/v2/servicerequestupdates.json", self._get_updates)
        app.router.add_get("/open311/v2/requests.json", self._get_requests)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        """Release held requests and stop listening."""
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def release(self) -> None:
        """Let held requests answer; later ones are not held unless ``faults`` says so."""
        self._release.set()

    def hold_again(self) -> None:
        """Hold the requests ``faults`` marks from now on."""
        self._release = asyncio.Event()

    # -- receiving our updates ----------------------------------------------------------

    def _changed_now(self) -> None:
        self._changed.set()

    async def _post_update(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.push_secret and not signing.verify(
            self.push_secret,
            request.headers.get("X-Timestamp", ""),
            body,
            request.headers.get("X-Signature", ""),
        ):
            return web.json_response([{"code": 401, "description": "bad signature"}], status=401)
        update = parse_update(orjson.loads(body))  # raises (→ 500) on a malformed update
        assert request.headers.get("Idempotency-Key") == update.update_id
        self.attempts += 1
        fault = self.faults.pop(0) if self.faults else None
        self._changed_now()
        if fault == "500":
            return web.json_response([{"code": 500, "description": "fault"}], status=500)
        if fault == "hang":
            await self._release.wait()
            return web.json_response([{"code": 503, "description": "late"}], status=503)
        record = Received(orjson.loads(body), answered=fault != "take_and_hold")
        self.received.append(record)
        self._changed_now()
        if fault == "take_and_hold":
            await self._release.wait()
        return web.json_response([{"update_id": update.update_id}])

    def update_ids(self) -> list[str]:
        """update_ids in the order they arrived, re-sends included."""
        return [r.update["update_id"] for r in self.received]

    def applied(self) -> dict[str, dict[str, Any]]:
        """The receiver's view after deduplication: update_id → first arrival."""
        out: dict[str, dict[str, Any]] = {}
        for r in self.received:
            out.setdefault(r.update["update_id"], r.update)
        return out

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until ``predicate()`` holds, woken by each incoming update."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    # -- its own feeds --------------------------------------------------------------------

    def _window(self, request: web.Request) -> tuple[datetime, datetime]:
        return (
            parse_time(request.query["start_date"], "start_date"),
            parse_time(request.query["end_date"], "end_date"),
        )

    async def _get_requests(self, request: web.Request) -> web.Response:
        start, end = self._window(request)
        items = [
            r for r in self.requests
            if start <= parse_time(r.get("updated_datetime") or r["requested_datetime"],
                                   "t") <= end
        ]  # fmt: skip
        return web.json_response(items)

    async def _get_updates(self, request: web.Request) -> web.Response:
        start, end = self._window(request)
        items = [u for u in self.updates if start <= parse_time(u["updated_datetime"], "t") <= end]
        return web.json_response(items)

    # -- pushing requests to the hub ------------------------------------------------------

    def signed_headers(self, key_id: str, secret: str, body: bytes) -> dict[str, str]:
        """Headers of a signed push. Each push gets its own timestamp inside the window
        (stepping back a second per push), so two pushes of the same body do not share
        a signature the hub would refuse as a replay."""
        timestamp = str(int(time.time()) - next(self._clock) % 200)
        return {
            "Content-Type": "application/json",
            "X-Api-Key": key_id,
            "X-Timestamp": timestamp,
            "X-Signature": signing.sign(secret, timestamp, body),
        }

    async def push(
        self, http: aiohttp.ClientSession, hub_url: str, key_id: str, secret: str, payload: object
    ) -> tuple[int, Any]:
        """Push one request or an array to the hub's webhook; (status, JSON answer)."""
        body = orjson.dumps(payload)
        for _ in range(REPLAY_RETRIES):
            headers = self.signed_headers(key_id, secret, body)
            async with http.post(hub_url + HOOK_PATH, data=body, headers=headers) as resp:
                answer = await resp.json()
            # The same body signed in the same second has the same signature: re-sign.
            if resp.status != 409 or answer["error"]["code"] != "auth.replayed":
                break
        return resp.status, answer
