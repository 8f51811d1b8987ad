"""A stand-in for Jasmin's HTTP API: an aiohttp app on 127.0.0.1 that records ``/send``
calls, answers ``Success "<id>"`` and posts delivery reports and inbound messages to the
hub the way Jasmin does (form-encoded, expecting ``ACK/Jasmin``). It can go down (stop
listening) and come back on the same port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

WAIT = 15.0


@dataclass
class Sent:
    """One accepted ``/send``: its parameters and the id Jasmin gave it."""

    params: dict[str, str]
    message_id: str


@dataclass
class FakeJasmin:
    """Start it, then point the hub's ``gateway_url`` at ``url``."""

    sent: list[Sent] = field(default_factory=list)
    refuse_status: int | None = None
    port: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (a free port the first time, the same one after ``go_down``)."""
        app = web.Application()
        app.router.add_post("/send", self._send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def go_down(self) -> None:
        """Stop listening: connections are refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _send(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        if self.refuse_status is not None:
            return web.Response(status=self.refuse_status, text='Error "refused for the test"')
        message_id = str(uuid.uuid4())
        self.sent.append(Sent(params, message_id))
        self._changed.set()
        return web.Response(text=f'Success "{message_id}"')

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until ``predicate()`` holds, woken by each accepted ``/send``."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


async def post_form(url: str, params: dict[str, str]) -> tuple[int, str]:
    """POST a form as Jasmin does; (status, body)."""
    async with aiohttp.ClientSession() as http, http.post(url, data=params) as resp:
        return resp.status, await resp.text()


def dlr_params(message_id: str, status: str, *, level: int = 2) -> dict[str, str]:
    """A Jasmin DLR callback's form for ``message_id``."""
    params = {"id": message_id, "message_status": status, "level": str(level)}
    if level > 1:
        params.update({"id_smsc": "2a8b0f", "sub": "001", "dlvrd": "001",
                       "subdate": "2611231200", "donedate": "2611231201", "err": "000",
                       "text": "hello"})  # fmt: skip
    return params


def mo_params(message_id: str, sender: str, text: str) -> dict[str, str]:
    """A Jasmin MO callback's form (UCS-2 with ``binary`` for non-ASCII text)."""
    params = {"id": message_id, "from": sender, "to": "10690000",
              "origin-connector": "smsc1", "priority": "0"}  # fmt: skip
    if text.isascii():
        params.update({"content": text, "coding": "0"})
    else:
        params.update({"content": text, "coding": "8",
                       "binary": text.encode("utf-16-be").hex()})  # fmt: skip
    return params
