"""OpenAPI and AsyncAPI documents. Placeholder: filled in next."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the document routes."""
