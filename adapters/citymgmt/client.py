"""An HTTP client of the city-management system's Open311 endpoint; knows nothing of the
hub. Updates are POSTed as JSON to ``servicerequestupdates.json``; the feeds are read with
GET and a ``start_date``/``end_date`` window. With a push secret every request is signed
like ours are (X-Timestamp, X-Signature over the body; protocols/signing.py)."""

from __future__ import annotations

import time
from datetime import datetime

import aiohttp
import orjson

from protocols import signing
from protocols.citymgmt import (
    CitymgmtError,
    RequestUpdate,
    ServiceRequest,
    encode_update,
    format_time,
    parse_requests,
    parse_updates,
)

UPDATES_PATH = "/servicerequestupdates.json"
REQUESTS_PATH = "/requests.json"
TEMPORARY_STATUSES = frozenset({408, 425, 429})
"""4xx answers that may succeed later; every other 4xx is permanent."""
MAX_FEED_BYTES = 16 * 1024 * 1024


class DeliveryError(Exception):
    """A push that failed: ``temporary`` (retry later) or not; ``reason`` labels metrics."""

    def __init__(self, reason: str, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.temporary = temporary


class Open311Client:
    """POSTs request updates and reads the request and update feeds."""

    def __init__(self, base_url: str, secret: str, timeout: float) -> None:
        self._base = base_url.rstrip("/")
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def close(self) -> None:
        """Close the connection pool; safe to call twice."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._secret:
            timestamp = str(int(time.time()))
            headers["X-Timestamp"] = timestamp
            headers["X-Signature"] = signing.sign(self._secret, timestamp, body)
        return headers

    async def post_update(self, update: RequestUpdate) -> None:
        """Deliver one update; DeliveryError unless they answer 2xx."""
        body = encode_update(update)
        headers = self._headers(body) | {"Idempotency-Key": update.update_id}
        try:
            async with self._session().post(
                self._base + UPDATES_PATH, data=body, headers=headers
            ) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError as err:
            raise DeliveryError("timeout", "no answer in time", temporary=True) from err
        except aiohttp.ClientError as err:
            raise DeliveryError("connect", f"{type(err).__name__}: {err}", temporary=True) from err
        if 200 <= status < 300:
            return
        temporary = status >= 500 or status in TEMPORARY_STATUSES
        raise DeliveryError(f"http_{status}", f"answered HTTP {status}", temporary=temporary)

    async def _feed(self, path: str, start: datetime, end: datetime) -> bytes:
        params = {"start_date": format_time(start), "end_date": format_time(end)}
        try:
            async with self._session().get(
                self._base + path, params=params, headers=self._headers(b"")
            ) as resp:
                if resp.status != 200:
                    raise DeliveryError(
                        f"http_{resp.status}", f"{path} answered HTTP {resp.status}",
                        temporary=True,
                    )  # fmt: skip
                body = await resp.content.read(MAX_FEED_BYTES + 1)
        except TimeoutError as err:
            raise DeliveryError("timeout", f"{path}: no answer in time", temporary=True) from err
        except aiohttp.ClientError as err:
            raise DeliveryError("connect", f"{path}: {err}", temporary=True) from err
        if len(body) > MAX_FEED_BYTES:
            raise DeliveryError("too_large", f"{path}: feed over the size limit", temporary=True)
        return body

    async def requests(self, start: datetime, end: datetime) -> list[ServiceRequest]:
        """Their requests created or updated in the window (CitymgmtError if malformed)."""
        body = await self._feed(REQUESTS_PATH, start, end)
        return parse_requests(_array(body))

    async def updates(self, start: datetime, end: datetime) -> list[RequestUpdate]:
        """Their request updates in the window (CitymgmtError if malformed)."""
        body = await self._feed(UPDATES_PATH, start, end)
        return parse_updates(_array(body))


def _array(body: bytes) -> list[object]:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise CitymgmtError("body", "not valid JSON") from err
    if not isinstance(raw, list):
        raise CitymgmtError("body", "a feed is a JSON array")
    return raw
