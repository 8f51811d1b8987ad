"""Org tree handlers: list, get, create (a child one level below its parent), rename.
Who may do what: hub/api/directory.py."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.api.auth import require_identity
from hub.api.directory_http import (
    ADMIN,
    NODES,
    NOTHING_TO_CHANGE,
    check_scope,
    json_reply,
    read_body,
    stage_event,
    validate,
)
from hub.api.directory_models import (
    DirectoryError,
    NodeQuery,
    OrgNodeCreate,
    OrgNodeList,
    OrgNodeOut,
    OrgNodeUpdate,
    next_level,
    parse_query,
)
from hub.db.models import OrgNode
from hub.db.paths import in_subtree
from hub.events import OrgNodeChanged
from hub.org.seed import OrgNodeSpec
from hub.state import HUB
from protocols.envelope import EnvelopeError, validate_org_path


def _node_path(request: web.Request) -> str:
    try:
        return validate_org_path(request.match_info["path"])
    except EnvelopeError as err:
        raise DirectoryError(404, "org.not_found", "no such org node") from err


async def list_nodes(request: web.Request) -> web.Response:
    """The nodes of a subtree (default: the caller's), ordered by path."""
    identity = require_identity(request)
    query = parse_query(NodeQuery, dict(request.query))
    root = query.under or identity.org
    check_scope(identity, root)
    async with request.app[HUB].sessions() as session:
        rows = (
            await session.scalars(
                select(OrgNode).where(in_subtree(OrgNode.path, root)).order_by(OrgNode.path)
            )
        ).all()
    if not rows:
        raise DirectoryError(404, "org.not_found", f"no org node {root}")
    return json_reply(OrgNodeList(items=[OrgNodeOut.model_validate(r) for r in rows]))


async def get_node(request: web.Request) -> web.Response:
    """One node."""
    identity = require_identity(request)
    path = _node_path(request)
    check_scope(identity, path)
    async with request.app[HUB].sessions() as session:
        row = await session.get(OrgNode, path)
    if row is None:
        raise DirectoryError(404, "org.not_found", f"no org node {path}")
    return json_reply(OrgNodeOut.model_validate(row))


async def create_node(request: web.Request) -> web.Response:
    """Create a child of an existing node, one level below it (admins)."""
    identity = require_identity(request, ADMIN)
    spec = await read_body(request, OrgNodeCreate, "org.invalid")
    parent_path = spec.parent
    if parent_path is None:
        detail = [{"loc": "path", "msg": "a new node must be the child of an existing node"}]
        raise DirectoryError(422, "org.invalid", "districts come from the org tree file", detail)
    check_scope(identity, parent_path)
    hub = request.app[HUB]
    try:
        async with hub.sessions() as session, session.begin():
            if await session.get(OrgNode, spec.path) is not None:
                raise DirectoryError(409, "org.exists", f"org node {spec.path} exists")
            parent = await session.get(OrgNode, parent_path)
            if parent is None:
                raise DirectoryError(422, "org.unknown_parent", f"no org node {parent_path}")
            expected = next_level(parent.level)
            if spec.level != expected:
                msg = (
                    f"a {parent.level} has no child nodes"
                    if expected is None
                    else f"the level below a {parent.level} is {expected}"
                )
                detail = [{"loc": "level", "msg": msg}]
                raise DirectoryError(422, "org.invalid", msg, detail)
            node = OrgNode(path=spec.path, name=spec.name, level=spec.level, parent=parent_path)
            session.add(node)
            stage_event(
                session, OrgNodeChanged(path=spec.path, action="created"), spec.path, spec.path
            )
    except IntegrityError as err:
        raise DirectoryError(409, "org.exists", f"org node {spec.path} exists") from err
    hub.relay.notify()
    return json_reply(OrgNodeOut.model_validate(node), 201, Location=f"{NODES}/{spec.path}")


async def update_node(request: web.Request) -> web.Response:
    """Rename a node (admins)."""
    identity = require_identity(request, ADMIN)
    path = _node_path(request)
    check_scope(identity, path)
    patch = await read_body(request, OrgNodeUpdate, "org.invalid")
    changes = patch.model_dump(exclude_unset=True)
    if not changes:
        raise DirectoryError(422, "org.invalid", "nothing to change", NOTHING_TO_CHANGE)
    hub = request.app[HUB]
    async with hub.sessions() as session, session.begin():
        row = await session.get(OrgNode, path)
        if row is None:
            raise DirectoryError(404, "org.not_found", f"no org node {path}")
        current = {"path": row.path, "name": row.name, "level": row.level}
        merged = validate(OrgNodeSpec, {**current, **changes}, "org.invalid")
        row.name = merged.name
        stage_event(session, OrgNodeChanged(path=path, action="updated"), path, path)
    hub.relay.notify()
    return json_reply(OrgNodeOut.model_validate(row))
