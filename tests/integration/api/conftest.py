"""Fixtures of the HTTP API tests: a hub whose directory starts from the seed files (the
PostgreSQL database is shared by the session, so what one test wrote is undone), and a
small JSON HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from sqlalchemy import delete, func, select

from hub.db.models import OrgNode, OutboxEvent, User
from hub.org.seed import read_tree, read_users
from hub.state import Hub
from tests.conftest import Backend, RunningHub, backend_settings, start_hub


async def reset_directory(hub: Hub) -> None:
    """Put the org tree and users back to the seed files' content."""
    settings = hub.settings
    nodes = read_tree(settings.org_tree_file)
    users = read_users(settings.users_file) if settings.users_file is not None else []
    async with hub.sessions() as session, session.begin():
        for spec in users:
            user = await session.get(User, spec.id)
            if user is not None:
                for name, value in spec.model_dump().items():
                    setattr(user, name, value)
        await session.execute(delete(User).where(User.id.not_in([u.id for u in users])))
        await session.flush()
        for spec_node in nodes:
            node = await session.get(OrgNode, spec_node.path)
            if node is not None:
                node.name = spec_node.name
        extra = (
            await session.scalars(
                select(OrgNode.path).where(OrgNode.path.not_in([n.path for n in nodes]))
            )
        ).all()
        for path in sorted(extra, key=lambda p: -p.count(".")):  # children first
            await session.execute(delete(OrgNode).where(OrgNode.path == path))


@pytest.fixture
async def running_hub(backend: Backend) -> AsyncIterator[RunningHub]:
    """A hub on the parametrised backend, with the seed directory."""
    hub = await start_hub(backend_settings(backend))
    try:
        await reset_directory(hub.hub)
        yield hub
    finally:
        await hub.server.close()


@dataclass
class Reply:
    """An HTTP answer: status, JSON body (None if not JSON), headers."""

    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        """The error code of an error body."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return code if isinstance(code, str) else None
        return None


class Api:
    """Calls the hub's HTTP API as one user (or none)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, token: str | None) -> None:
        self.http = http
        self.base = base
        self.token = token

    def as_(self, token: str | None) -> Api:
        """The same client acting with another token."""
        return Api(self.http, self.base, token)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> Reply:
        """Send a request; return the decoded answer."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.request(
            method, self.base + path, json=json, data=data, params=params, headers=headers
        ) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            return Reply(resp.status, body, dict(resp.headers))

    async def get(self, path: str, **params: str) -> Reply:
        """GET with query parameters."""
        return await self.call("GET", path, params=params or None)

    async def post(self, path: str, body: Any) -> Reply:
        """POST a JSON body."""
        return await self.call("POST", path, json=body)

    async def patch(self, path: str, body: Any) -> Reply:
        """PATCH with a JSON body."""
        return await self.call("PATCH", path, json=body)

    async def delete(self, path: str) -> Reply:
        """DELETE."""
        return await self.call("DELETE", path)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for the test."""
    async with aiohttp.ClientSession() as session:
        yield session


async def outbox_count(hub: Hub, *, prefix: str = "", event_id: str | None = None) -> int:
    """Outbox rows whose type starts with ``prefix`` (and with ``event_id``)."""
    query = select(func.count()).select_from(OutboxEvent)
    if prefix:
        query = query.where(OutboxEvent.type.startswith(prefix))
    if event_id is not None:
        query = query.where(OutboxEvent.event_id == event_id)
    async with hub.sessions() as session:
        return int(await session.scalar(query) or 0)
