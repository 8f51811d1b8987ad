"""The HTTP provider: a Jasmin-compatible gateway's ``/send`` out; its delivery reports
and inbound messages come back by callback (adapters/sms/callbacks.py).

Jasmin splits long texts itself and answers one id per message, so a message has one
part here; its DLRs carry that id. A refusal with a 5xx status or no answer at all is
temporary; a 4xx refusal (bad number, auth, no route) is permanent.
"""

from __future__ import annotations

from adapters.sms.jasmin_client import GatewayUnreachable, JasminClient
from hub.config import SmsSettings
from hub.sms.ports import OutboundSms, SubmitError
from protocols.sms import DlrLevel, SendRefused, SmsRejected, build_send_params

NAME = "http"
DLR_PATH = "/api/v1/sms/jasmin/dlr"
MO_PATH = "/api/v1/sms/jasmin/mo"


class HttpProvider:
    """Sends through a Jasmin-compatible HTTP API."""

    name = NAME

    def __init__(self, settings: SmsSettings) -> None:
        self._settings = settings
        self._client = JasminClient(settings.gateway_url, timeout=settings.submit_timeout)

    @property
    def ready(self) -> bool:
        """Always willing to try: an unreachable gateway is a temporary error per message."""
        return True

    def dlr_url(self) -> str:
        """Where the gateway posts delivery reports."""
        url = self._settings.callback_base_url.rstrip("/") + DLR_PATH
        token = self._settings.callback_token
        return f"{url}?token={token.get_secret_value()}" if token is not None else url

    async def submit(self, message: OutboundSms) -> list[str]:
        """One ``/send``; the gateway's message id."""
        try:
            params = build_send_params(
                username=self._settings.username,
                password=self._settings.password.get_secret_value(),
                to=message.to,
                text=message.text,
                sender=message.sender,
                dlr_url=self.dlr_url(),
                dlr_level=DlrLevel.ALL,
                max_segments=message.max_segments,
            )
        except SmsRejected as err:
            raise SubmitError(str(err), temporary=False) from err
        try:
            answer = await self._client.send(params)
        except GatewayUnreachable as err:
            raise SubmitError(f"gateway unreachable: {err}", temporary=True) from err
        except SmsRejected as err:
            raise SubmitError(str(err), temporary=True) from err
        if isinstance(answer, SendRefused):
            raise SubmitError(
                f"gateway refused (HTTP {answer.http_status}): {answer.message[:200]}",
                temporary=answer.retryable,
            )
        return [answer.message_id]

    async def close(self) -> None:
        """Close the HTTP client; safe to call twice."""
        await self._client.close()
