"""Load the org tree (always) and the demo users (with demo data) from config files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.tokens import ROLES
from hub.db.models import OrgNode, User, Worker
from protocols.envelope import validate_org_path

LEVELS = ("district", "street", "community", "grid")


class OrgNodeSpec(BaseModel):
    """An org node as written in ``config/org_tree.json``."""

    path: str
    name: str = Field(min_length=1, max_length=100)
    level: str

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return validate_org_path(value)

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        return value

    @property
    def parent(self) -> str | None:
        """The parent node's path (None for the root)."""
        head, _, _ = self.path.rpartition(".")
        return head or None


class UserSpec(BaseModel):
    """A user as written in ``config/demo_users.json``."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    name: str = Field(min_length=1, max_length=64)
    title: str = Field("", max_length=100)
    phone: str = Field("", max_length=32)
    org: str
    roles: list[str]
    active: bool = True

    @field_validator("org")
    @classmethod
    def _org(cls, value: str) -> str:
        return validate_org_path(value)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        unknown = set(value) - ROLES
        if unknown:
            raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
        return value


SEED_ATTEMPTS = 3
"""Seeding tries: hub processes starting together may race to insert the same rows."""


def read_tree(path: Path) -> list[OrgNodeSpec]:
    """Parse and check the org tree file: every parent exists, parents come first."""
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    nodes = [OrgNodeSpec.model_validate(n) for n in raw["nodes"]]
    seen: set[str] = set()
    for node in nodes:
        if node.parent is not None and node.parent not in seen:
            raise ValueError(f"{path}: parent of {node.path} missing or listed after it")
        seen.add(node.path)
    return nodes


def read_users(path: Path) -> list[UserSpec]:
    """Parse the users file."""
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    return [UserSpec.model_validate(u) for u in raw["users"]]


async def seed(
    sessions: async_sessionmaker[AsyncSession], tree: Path, users: Path | None
) -> tuple[int, int]:
    """Insert the nodes and users that are missing; existing rows are left as they are
    (an admin may have edited them). Returns (nodes added, users added)."""
    nodes = read_tree(tree)
    people = read_users(users) if users is not None else []
    for attempt in range(SEED_ATTEMPTS):
        try:
            return await _seed_once(sessions, nodes, people)
        except IntegrityError:
            # Another hub process seeded the same rows at the same moment: look again.
            if attempt == SEED_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _seed_once(
    sessions: async_sessionmaker[AsyncSession], nodes: list[OrgNodeSpec], people: list[UserSpec]
) -> tuple[int, int]:
    added_nodes = added_users = 0
    async with sessions() as session, session.begin():
        for node in nodes:
            if await session.get(OrgNode, node.path) is None:
                session.add(
                    OrgNode(path=node.path, name=node.name, level=node.level, parent=node.parent)
                )
                added_nodes += 1
        await session.flush()
        for person in people:
            if await session.get(User, person.id) is None:
                session.add(User(**person.model_dump()))
                added_users += 1
        await session.flush()
        for person in people:
            # Every demo grid worker carries a phone that reports from their own grid.
            if "grid_worker" in person.roles and await session.get(Worker, person.id) is None:
                session.add(
                    Worker(id=person.id, name=person.name, phone=person.phone, grid=person.org)
                )
    return added_nodes, added_users
