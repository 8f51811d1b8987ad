"""User directory handlers: list (filtered, cursor-paginated), get, create, update,
deactivate. Who may do what: hub/api/directory.py."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import String, cast, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.api.auth import require_identity
from hub.api.directory_http import (
    ADMIN,
    NOTHING_TO_CHANGE,
    USERS,
    check_scope,
    json_reply,
    page_by_id,
    read_body,
    stage_event,
    validate,
)
from hub.api.directory_models import (
    DirectoryError,
    UserCreate,
    UserOut,
    UserPage,
    UserQuery,
    UserUpdate,
    parse_query,
)
from hub.auth.channels import org_channel
from hub.auth.tokens import Identity
from hub.db.models import OrgNode, User
from hub.db.paths import in_subtree
from hub.events import UserChanged
from hub.org.seed import UserSpec
from hub.state import HUB
from protocols.envelope import org_ancestors

MAX_USER_ID = 64


def _user_id(request: web.Request) -> str:
    user_id = request.match_info["id"]
    if len(user_id) > MAX_USER_ID:
        raise DirectoryError(404, "user.not_found", "no such user")
    return user_id


async def list_users(request: web.Request) -> web.Response:
    """A page of users of a subtree (default: the caller's), ordered by id."""
    identity = require_identity(request)
    query = parse_query(UserQuery, dict(request.query))
    root = query.org or identity.org
    check_scope(identity, root)
    stmt = select(User).where(in_subtree(User.org, root))
    if query.role is not None:
        # Roles are a JSON list of names from a fixed vocabulary: match the quoted name
        # in its text, which works on every backend's JSON column.
        stmt = stmt.where(cast(User.roles, String).contains(f'"{query.role}"', autoescape=True))
    if query.active is not None:
        stmt = stmt.where(User.active.is_(query.active))
    if query.q is not None:
        stmt = stmt.where(
            or_(
                User.name.icontains(query.q, autoescape=True),
                User.id.icontains(query.q, autoescape=True),
            )
        )
    async with request.app[HUB].sessions() as session:
        page, cursor = await page_by_id(session, stmt, User.id, query)
    return json_reply(UserPage(items=[UserOut.model_validate(r) for r in page], next_cursor=cursor))


async def get_user(request: web.Request) -> web.Response:
    """One user."""
    identity = require_identity(request)
    user_id = _user_id(request)
    async with request.app[HUB].sessions() as session:
        row = await session.get(User, user_id)
    if row is None:
        raise DirectoryError(404, "user.not_found", f"no user {user_id}")
    check_scope(identity, row.org)
    return json_reply(UserOut.model_validate(row))


async def create_user(request: web.Request) -> web.Response:
    """Create a user in the admin's subtree (admins)."""
    identity = require_identity(request, ADMIN)
    spec = await read_body(request, UserCreate, "user.invalid")
    check_scope(identity, spec.org)
    hub = request.app[HUB]
    try:
        async with hub.sessions() as session, session.begin():
            if await session.get(User, spec.id) is not None:
                raise DirectoryError(409, "user.exists", f"user {spec.id} exists")
            await _require_org(session, spec.org)
            user = User(**spec.model_dump())
            session.add(user)
            stage_event(session, UserChanged(user_id=spec.id, action="created"), spec.org, spec.id)
            await session.flush()
            await session.refresh(user)
    except IntegrityError as err:
        raise DirectoryError(409, "user.exists", f"user {spec.id} exists") from err
    hub.relay.notify()
    return json_reply(UserOut.model_validate(user), 201, Location=f"{USERS}/{spec.id}")


async def update_user(request: web.Request) -> web.Response:
    """Change a user's fields; moving them needs both org nodes in the subtree (admins)."""
    identity = require_identity(request, ADMIN)
    user_id = _user_id(request)
    patch = await read_body(request, UserUpdate, "user.invalid")
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        raise DirectoryError(422, "user.invalid", "nothing to change", NOTHING_TO_CHANGE)
    hub = request.app[HUB]
    async with hub.sessions() as session, session.begin():
        user = await _visible_user(session, identity, user_id)
        current = UserSpec.model_validate(user, from_attributes=True).model_dump()
        merged = validate(UserSpec, {**current, **changes}, "user.invalid")
        old_org = user.org
        if merged.org != old_org:
            check_scope(identity, merged.org)
            await _require_org(session, merged.org)
        deactivated = user.active and not merged.active
        for name in changes:
            setattr(user, name, getattr(merged, name))
        # A move is news for the old node's centres too.
        moved = [org_channel(p) for p in org_ancestors(old_org)] if merged.org != old_org else []
        event = UserChanged(user_id=user_id, action="deactivated" if deactivated else "updated")
        stage_event(session, event, merged.org, user_id, *moved)
        await session.flush()
        await session.refresh(user)
    hub.relay.notify()
    return json_reply(UserOut.model_validate(user))


async def deactivate_user(request: web.Request) -> web.Response:
    """Deactivate a user; the row is kept. Deactivating an inactive user changes nothing
    and publishes nothing (admins)."""
    identity = require_identity(request, ADMIN)
    user_id = _user_id(request)
    hub = request.app[HUB]
    async with hub.sessions() as session, session.begin():
        user = await _visible_user(session, identity, user_id)
        changed = user.active
        if changed:
            user.active = False
            stage_event(
                session, UserChanged(user_id=user_id, action="deactivated"), user.org, user_id
            )
            await session.flush()
            await session.refresh(user)
    if changed:
        hub.relay.notify()
    return json_reply(UserOut.model_validate(user))


async def _visible_user(session: AsyncSession, identity: Identity, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise DirectoryError(404, "user.not_found", f"no user {user_id}")
    check_scope(identity, user.org)
    return user


async def _require_org(session: AsyncSession, path: str) -> None:
    if await session.get(OrgNode, path) is None:
        detail = [{"loc": "org", "msg": f"no org node {path}"}]
        raise DirectoryError(422, "user.invalid", f"no org node {path}", detail)
