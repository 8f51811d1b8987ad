"""The demo's REST client: the hub's public HTTP API with tokens the demo signs for its
people (it runs on the hub's own configuration, so it knows the JWT secret)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from hub.auth.tokens import mint_token
from hub.org.seed import UserSpec

REQUEST_TIMEOUT = 10.0
READY_POLL = 0.5
TOKEN_TTL = 3600
"""Lifetime of the demo's tokens (s); they are re-signed at half-life."""


class DemoApiError(Exception):
    """The hub refused a request (its error code), or could not be reached: ``status`` 0
    with ``hub_not_ready`` or ``unreachable`` (client-side conditions, not API codes)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class HubApi:
    """Calls the hub's REST API as one of the demo people."""

    def __init__(self, base_url: str, jwt_secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = jwt_secret
        self._tokens: dict[str, tuple[float, str]] = {}
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HubApi:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            json_serialize=_dumps,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def token(self, user: UserSpec) -> str:
        """A token for ``user`` (re-signed when half its life is gone)."""
        now = time.monotonic()
        cached = self._tokens.get(user.id)
        if cached is not None and now - cached[0] < TOKEN_TTL / 2:
            return cached[1]
        token = mint_token(
            self._secret, user=user.id, org=user.org, roles=user.roles, ttl=TOKEN_TTL
        )
        self._tokens[user.id] = (now, token)
        return token

    async def wait_ready(self, timeout: float) -> None:
        """Poll ``/readyz`` until the hub answers 200 (it is another process, or this one
        still starting: polling is the way), or raise DemoApiError."""
        assert self._http is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                async with self._http.get(self.base_url + "/readyz") as resp:
                    if resp.status == 200:
                        return
                    last = f"{resp.status} {await resp.text()}"
            except (aiohttp.ClientError, TimeoutError) as err:
                last = str(err) or type(err).__name__
            if loop.time() >= deadline:
                raise DemoApiError(0, "hub_not_ready", f"{self.base_url}: {last}")
            await asyncio.sleep(READY_POLL)

    async def request(
        self, method: str, path: str, user: UserSpec, body: dict[str, Any] | None = None
    ) -> Any:
        """One call; the decoded JSON reply, or DemoApiError."""
        assert self._http is not None
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        try:
            async with self._http.request(
                method, self.base_url + path, json=body, headers=headers
            ) as resp:
                data: Any = await resp.json(content_type=None)
                if resp.status >= 400:
                    error = data.get("error", {}) if isinstance(data, dict) else {}
                    raise DemoApiError(
                        resp.status, error.get("code", "unknown"), error.get("message", "")
                    )
                return data
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise DemoApiError(0, "unreachable", str(err) or type(err).__name__) from err


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
