"""The video network over REST: the terminals a host can call into a consultation (from
config), and the state of the cascade and the calls, for the console."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from hub.api.auth import require_identity
from hub.api.directory_http import json_reply
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.state import HUB
from protocols.envelope import org_contains

TERMINALS = "/api/v1/videonet/terminals"
STATUS = "/api/v1/videonet/status"
ROLES = ("admin", "dispatcher", "leader")


class TerminalOut(BaseModel):
    """A video network terminal a room can call."""

    uri: str = Field(description="Its SIP URI (what `…/consultations/{id}/terminals` takes).")
    name: str
    org: str


class TerminalList(BaseModel):
    """The configured terminals (those of the caller's subtree and above it, and those
    configured without an org)."""

    enabled: bool = Field(description="Whether calls are enabled at all.")
    items: list[TerminalOut]


class VideonetStatus(BaseModel):
    """Whether the cascade is registered upward and how many calls are up."""

    cascade_enabled: bool
    cascade_registered: bool
    cascaded_streams: int
    calls_enabled: bool
    calls: int


async def list_terminals(request: web.Request) -> web.Response:
    """The terminals a host may call."""
    identity = require_identity(request, *ROLES)
    hub = request.app[HUB]
    settings = hub.settings.videonet.calls
    items = [
        TerminalOut(uri=t.uri, name=t.name or t.uri, org=t.org)
        for t in settings.terminals
        if not t.org or org_contains(identity.org, t.org) or org_contains(t.org, identity.org)
    ]
    return json_reply(TerminalList(enabled=hub.calls is not None, items=items))


async def get_status(request: web.Request) -> web.Response:
    """The video network's state as this hub sees it."""
    require_identity(request, *ROLES)
    hub = request.app[HUB]
    cascade, calls = hub.cascade, hub.calls
    return json_reply(
        VideonetStatus(
            cascade_enabled=cascade is not None,
            cascade_registered=cascade is not None and cascade.registered,
            cascaded_streams=cascade.streams_open if cascade is not None else 0,
            calls_enabled=calls is not None,
            calls=len(calls.calls) if calls is not None else 0,
        )
    )


_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("GET", TERMINALS, list_terminals, Operation(
        "Video network terminals (视联网终端)", "videonet",
        "The terminals configured in `HUB_VIDEONET__CALLS__TERMINALS` that the caller's "
        "subtree may call (dispatchers, leaders, admins).", "bearer",
        replies={200: Reply("The terminals.", TerminalList)}, errors=_AUTH,
    )),
    ("GET", STATUS, get_status, Operation(
        "Video network status", "videonet",
        "Whether the hub is registered to the video network's GB/T 28181 gateway, how many "
        "cameras it streams upward, and how many terminal calls are up.", "bearer",
        replies={200: Reply("The status.", VideonetStatus)}, errors=_AUTH,
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the video network routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
