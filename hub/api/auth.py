"""Bearer-token authentication for the REST API."""

from __future__ import annotations

from aiohttp import web

from hub.auth.tokens import Identity, TokenError
from hub.errors import HubError
from hub.state import HUB


def require_identity(request: web.Request, *roles: str) -> Identity:
    """The caller's identity from ``Authorization: Bearer <JWT>``; with ``roles``, the
    caller must hold one of them (403 ``auth.forbidden`` otherwise)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HubError("auth.required", "Authorization: Bearer <token> required", 401)
    try:
        identity = request.app[HUB].verifier.verify(token.strip())
    except TokenError as err:
        raise HubError(err.code, err.message, 401) from err
    if roles and not identity.has_any(*roles):
        raise HubError("auth.forbidden", f"needs one of the roles: {', '.join(roles)}", 403)
    return identity
