"""Helpers of the notice tests and benchmark: bulk directory users, live clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from centrifuge import Client
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.db.models import Notice, NoticeRecipient, OrgNode, User
from hub.state import Hub
from tests.support.clients import Recorder, next_item, sdk_client
from tests.support.hubs import token

BULK_CHUNK = 5000


async def add_bulk_users(
    sessions: async_sessionmaker[AsyncSession], parent: str, node: str, count: int
) -> list[str]:
    """Create grid node ``parent.node`` and ``count`` grid workers in it, in a few
    multi-row INSERTs; returns their ids."""
    path = f"{parent}.{node}"
    ids = [f"{node}-{i:06d}" for i in range(count)]
    async with sessions() as session, session.begin():
        session.add(OrgNode(path=path, name=f"批量网格 {node}", level="grid", parent=parent))
        await session.flush()
        for start in range(0, count, BULK_CHUNK):
            rows = [
                {"id": uid, "name": f"网格员{uid[-6:]}", "org": path, "roles": ["grid_worker"]}
                for uid in ids[start : start + BULK_CHUNK]
            ]
            await session.execute(insert(User), rows)
    return ids


async def delete_notices(hub: Hub) -> None:
    """Remove every notice (the PostgreSQL database is shared by the test session)."""
    async with hub.sessions() as session, session.begin():
        await session.execute(delete(NoticeRecipient))
        await session.execute(delete(Notice))


@dataclass
class Live:
    """A signed-in SDK client and the events of its personal channel."""

    user: str
    client: Client
    recorder: Recorder

    async def next_event(self) -> dict[str, Any]:
        """The next envelope on the user's channel."""
        ctx = await next_item(self.recorder.server_publications)
        assert ctx.channel == f"user:{self.user}"
        data: dict[str, Any] = ctx.pub.data
        return data

    async def next_of(self, event_type: str) -> dict[str, Any]:
        """The next envelope of ``event_type`` (others are skipped)."""
        while True:
            envelope = await self.next_event()
            if envelope["type"] == event_type:
                return envelope

    async def rpc(self, method: str, data: Any) -> Any:
        """Call an rpc method; the reply's data."""
        return (await self.client.rpc(method, data)).data


async def connect_user(ws_url: str, user: str, org: str, roles: list[str]) -> Live:
    """Connect as ``user`` and wait for the server-side subscription to ``user:<id>``."""
    recorder = Recorder()
    client = sdk_client(ws_url, token(user, org, roles), recorder)
    await client.connect()
    await next_item(recorder.server_subscribed)
    return Live(user, client, recorder)
