"""HTTP callbacks from a Jasmin-compatible gateway: delivery reports and inbound messages.

Jasmin resends a callback until it gets ``ACK/Jasmin`` back with status 200, so the answer
is given only once the report or message is committed. Garbage gets a 400 with our error
JSON (and is counted): resending it will not help, and Jasmin gives up after its retries.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import structlog
from aiohttp import web

from adapters.sms.http import DLR_PATH, MO_PATH, NAME
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.errors import HubError, NotReadyError
from hub.sms.ports import ReceiptOutcome
from hub.sms.service import SmsService
from hub.state import HUB
from protocols.sms import ACK_BODY, SmsRejected, parse_dlr, parse_mo

log = structlog.get_logger(__name__)

FORM = "application/x-www-form-urlencoded"


def _service(request: web.Request) -> SmsService:
    hub = request.app[HUB]
    if hub.sms is None:
        raise NotReadyError("SMS service not running")
    return hub.sms


async def _params(request: web.Request, service: SmsService) -> Mapping[str, str]:
    token = service.settings.callback_token
    if token is not None and not hmac.compare_digest(
        request.query.get("token", ""), token.get_secret_value()
    ):
        service.counters.rejected("callback_forbidden")
        raise HubError("sms.callback_forbidden", "missing or wrong callback token", 403)
    form = await request.post()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    for key, value in request.query.items():
        params.setdefault(key, value)
    return params


def _bad(service: SmsService, err: SmsRejected, what: str) -> HubError:
    service.counters.rejected(f"bad_{what}_{err.reason.value}")
    log.warning("gateway callback refused", callback=what, error=str(err))
    return HubError(f"sms.bad_{what}", f"not a Jasmin {what.upper()} callback: {err}", 400)


def _ack() -> web.Response:
    return web.Response(text=ACK_BODY, content_type="text/plain")


async def post_dlr(request: web.Request) -> web.Response:
    """A delivery report for a message we sent."""
    service = _service(request)
    params = await _params(request, service)
    try:
        dlr = parse_dlr(params)
    except SmsRejected as err:
        raise _bad(service, err, "dlr") from err
    outcome = await service.receipt(dlr.message_id, dlr.state.value, error=dlr.error)
    if outcome in (ReceiptOutcome.UNKNOWN_ID, ReceiptOutcome.AMBIGUOUS):
        raise HubError("sms.unknown_message", f"no message sent with id {dlr.message_id!r}", 404)
    return _ack()


async def post_mo(request: web.Request) -> web.Response:
    """An inbound message from a phone."""
    service = _service(request)
    params = await _params(request, service)
    try:
        mo = parse_mo(params)
    except SmsRejected as err:
        raise _bad(service, err, "mo") from err
    await service.inbound(mo.sender, mo.recipient, mo.text, provider=NAME,
                          provider_id=mo.message_id)  # fmt: skip
    return _ack()


_ACK = Reply("Stored; Jasmin stops resending.", schema={"type": "string", "const": ACK_BODY},
             content_type="text/plain")  # fmt: skip
_FORM_BODY = {"type": "object", "additionalProperties": {"type": "string"}}
_NOTE = (
    " Form-encoded as Jasmin sends it (query parameters are read too). If `sms.callback_token`"
    " is configured the URL must carry `?token=`."
)

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("POST", DLR_PATH, post_dlr, Operation(
        "Delivery report from a Jasmin-compatible gateway", "sms",
        "Jasmin's DLR callback (`id`, `message_status`, `level`, and at level 2/3 `id_smsc`,"
        " `sub`, `dlvrd`, `subdate`, `donedate`, `err`, `text`). Answered `ACK/Jasmin` once"
        " the message's state is stored; the final report publishes `sms.delivered` or"
        " `sms.failed`." + _NOTE,
        body_schema=_FORM_BODY, replies={200: _ACK},
        errors=("sms.bad_dlr", "sms.unknown_message", "sms.callback_forbidden",
                "service.unavailable"),
        extra={"requestBody": {"content": {FORM: {"schema": _FORM_BODY}}}},
    )),
    ("POST", MO_PATH, post_mo, Operation(
        "Inbound SMS from a Jasmin-compatible gateway", "sms",
        "Jasmin's MO callback (`id`, `from`, `to`, `origin-connector`, `content`, `coding`,"
        " `binary`). Answered `ACK/Jasmin` once stored; publishes `sms.received`. A repeated"
        " `id` is acknowledged without a second event." + _NOTE,
        body_schema=_FORM_BODY, replies={200: _ACK},
        errors=("sms.bad_mo", "sms.callback_forbidden", "service.unavailable"),
        extra={"requestBody": {"content": {FORM: {"schema": _FORM_BODY}}}},
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the gateway callback routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
