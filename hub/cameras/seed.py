"""Create the cameras of ``config/cameras.json`` that are missing at start; cameras that
exist are left as they are (an admin may have edited them through the API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.cameras.models import CameraSpec
from hub.db.models import Camera, OrgNode
from hub.errors import HubError

log = structlog.get_logger(__name__)


def read_cameras(path: Path) -> list[CameraSpec]:
    """Parse and check the cameras file (ids unique); HubError ``config.invalid``."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        cameras = [CameraSpec.model_validate(c) for c in raw["cameras"]]
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
        raise HubError("config.invalid", f"cameras file {path}: {err}", 500) from err
    ids = [c.id for c in cameras]
    if len(set(ids)) != len(ids):
        raise HubError("config.invalid", f"cameras file {path}: duplicate ids", 500)
    return cameras


async def seed_cameras(sessions: async_sessionmaker[AsyncSession], path: Path) -> int:
    """Insert the file's cameras that are missing; returns how many were added. A camera
    whose org node does not exist is skipped with a warning (the org tree is
    configurable; the demo cameras' nodes may not be in it)."""
    specs = read_cameras(path)
    added = 0
    async with sessions() as session, session.begin():
        existing = set((await session.scalars(select(Camera.id))).all())
        orgs = set((await session.scalars(select(OrgNode.path))).all())
        for spec in specs:
            if spec.id in existing:
                continue
            if spec.org not in orgs:
                log.warning("camera skipped: no such org node", camera_id=spec.id, org=spec.org)
                continue
            session.add(Camera(**spec.columns()))
            added += 1
    return added
