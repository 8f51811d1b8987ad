"""How an HTTP endpoint is described for the OpenAPI document.

Each module that registers routes keeps an ``Operation`` next to every handler; the
document builder (hub/api/openapi.py) walks the app's router and looks each route up, so a
route without an ``Operation`` is reported rather than silently missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

Auth = Literal["none", "bearer", "signature"]
RouteKey = tuple[str, str]
"""(HTTP method, canonical path) as aiohttp's router knows it, e.g. ("GET", "/readyz")."""


@dataclass(frozen=True)
class Reply:
    """A non-error response."""

    description: str
    model: type[BaseModel] | None = None
    schema: dict[str, Any] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)  # name → description


@dataclass(frozen=True)
class Header:
    """A request header parameter."""

    name: str
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    """One method on one path: what it takes, what it answers, which errors it may return."""

    summary: str
    tag: str
    description: str = ""
    auth: Auth = "none"
    body: type[BaseModel] | None = None
    body_schema: dict[str, Any] | None = None  # overrides ``body`` in the document
    models: tuple[type[BaseModel], ...] = ()  # more models ``body_schema`` refers to
    query: type[BaseModel] | None = None
    headers: tuple[Header, ...] = ()
    path_params: dict[str, str] = field(default_factory=dict)  # name → description
    replies: dict[int, Reply] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # merged into the operation object
