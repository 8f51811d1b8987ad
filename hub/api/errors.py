"""JSON error responses: ``{"error": {"code": ..., "message": ...}}`` for every API error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from hub.errors import HubError

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_CODES = {
    400: "request.bad",
    401: "auth.required",
    403: "auth.forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request.too_large",
    415: "request.unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> web.Response:
    """Build the JSON error body."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn HubError and aiohttp HTTP errors into the JSON error body; never leak a trace."""
    try:
        return await handler(request)
    except HubError as err:
        details = getattr(err, "details", None)
        return error_response(err.status, err.code, err.message, details)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = HTTP_CODES.get(exc.status, f"http.{exc.status}")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error", path=request.path)
        return error_response(500, "internal", "internal server error")
