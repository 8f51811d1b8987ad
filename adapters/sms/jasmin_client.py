"""A client for a Jasmin-compatible HTTP API's ``/send``; knows nothing of the hub."""

from __future__ import annotations

import aiohttp

from protocols.sms import SendAccepted, SendRefused, parse_send_response

SEND_PATH = "/send"
MAX_RESPONSE_BYTES = 8192


class GatewayUnreachable(Exception):
    """No answer from the gateway (connection refused or reset, timeout)."""


class JasminClient:
    """POSTs ``/send`` requests and reads Jasmin's answer."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self._url = base_url.rstrip("/") + SEND_PATH
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, params: dict[str, str]) -> SendAccepted | SendRefused:
        """One ``/send``; raises GatewayUnreachable, or SmsRejected (bad_response) for an
        answer that is not Jasmin's."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, data=params) as resp:
                body = await resp.content.read(MAX_RESPONSE_BYTES)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as err:
            raise GatewayUnreachable(str(err) or type(err).__name__) from err
        return parse_send_response(status, body)

    async def close(self) -> None:
        """Close the connection pool; safe to call twice."""
        if self._session is not None:
            await self._session.close()
            self._session = None
