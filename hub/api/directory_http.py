"""Plumbing shared by the directory handlers (hub/api/org_tree.py, hub/api/users.py): the
subtree rule, JSON bodies and replies, and staging events in the write's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from hub.api.directory_models import DirectoryError, PageQuery, encode_cursor, validation_details
from hub.auth.tokens import Identity
from hub.db.outbox import add_event
from hub.events import EventData
from protocols.envelope import org_contains

SOURCE = "hub/directory"
ADMIN = "admin"
NODES = "/api/v1/org/nodes"
NODE = "/api/v1/org/nodes/{path}"
USERS = "/api/v1/users"
USER = "/api/v1/users/{id}"
NOTHING_TO_CHANGE = [{"loc": "", "msg": "give at least one field to change"}]

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def check_scope(identity: Identity, path: str) -> None:
    """403 unless ``path`` lies in the caller's org subtree."""
    if not org_contains(identity.org, path):
        raise DirectoryError(403, "auth.forbidden", f"{path} is outside your org {identity.org}")


async def read_body(request: web.Request, model: type[M], code: str) -> M:
    """The JSON body validated by ``model``; 400 request.invalid_json / 422 ``code``."""
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise DirectoryError(400, "request.invalid_json", "body is not valid JSON") from err
    return validate(model, data, code)


def validate(model: type[M], data: Any, code: str) -> M:
    """``data`` validated by ``model``; 422 ``code`` with details otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        details = validation_details(err)
        raise DirectoryError(422, code, "request does not match the schema", details) from err


def json_reply(model: BaseModel, status: int = 200, **headers: str) -> web.Response:
    """A JSON response from a model."""
    return web.json_response(text=model.model_dump_json(), status=status, headers=headers)


def stage_event(
    session: AsyncSession, event: EventData, org: str, subject: str, *extra: str
) -> None:
    """Add the directory event to the caller's transaction (outbox)."""
    envelope = event.envelope(source=SOURCE, org=org, subject=subject)
    add_event(session, envelope, extra)


async def page_by_id(
    session: AsyncSession,
    stmt: Select[R],
    id_column: InstrumentedAttribute[str],
    page: PageQuery,
) -> tuple[Sequence[R], str | None]:
    """One page of ``stmt``'s rows ordered by ``id_column``, after the page's cursor, and the
    cursor of the next page (None on the last)."""
    after = page.after()
    if after is not None:
        stmt = stmt.where(id_column > after)
    rows = (await session.scalars(stmt.order_by(id_column).limit(page.limit + 1))).all()
    shown = rows[: page.limit]
    more = len(rows) > page.limit
    cursor = encode_cursor(getattr(shown[-1], id_column.key)) if more else None
    return shown, cursor
