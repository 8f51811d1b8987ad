"""Directory admin REST (org tree and users). Placeholder routes: filled in next."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the directory routes."""
