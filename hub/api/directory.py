"""Directory REST: the org tree and the users.

Who may do what:

* **Reads** (GET) — any signed-in user, inside their own org subtree: dispatchers and
  leaders need the directory to pick people and places. Asking about anything outside the
  caller's subtree is 403 ``auth.forbidden``.
* **Writes** (POST, PATCH, DELETE) — role ``admin`` only (403 ``auth.forbidden`` otherwise),
  and only inside the admin's own subtree: a street admin manages that street's nodes and
  people, not another street's, and cannot move anyone out of the street.

Every write commits the row and one ``directory.*`` event (hub/events.py) to the outbox in
one transaction, then wakes the relay; the event goes to the org channel of the node it is
about and each ancestor's (a user moved between nodes: the old node's channels too).
DELETE of a user deactivates them (``active=false``); the row is kept for the record.
"""

from __future__ import annotations

from aiohttp import web

from hub.api import org_tree, users
from hub.api.directory_http import NODE, NODES, USER, USERS
from hub.api.directory_models import (
    NodeQuery,
    OrgNodeCreate,
    OrgNodeList,
    OrgNodeOut,
    OrgNodeUpdate,
    UserCreate,
    UserOut,
    UserPage,
    UserQuery,
    UserUpdate,
)
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey

# -- routes and their documentation -------------------------------------------------------

_READ = (
    "Any signed-in user may read inside their own org subtree (dispatchers pick people "
    "and places from it); outside it: 403 auth.forbidden."
)
_WRITE = (
    "Admins only (role `admin`), and only inside the admin's own org subtree. Commits the "
    "change and one `{event}` event (published on the org channel of the node concerned "
    "and its ancestors) in one transaction."
)
_NODE_PARAM = {"path": "Dotted org path, e.g. d01.s01.c01."}
_USER_PARAM = {"id": "User id."}
_READ_ERRORS = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")
_BODY_ERRORS = ("request.invalid_json", "request.too_large")
_NODE_WRITE = "directory.org_changed"
_USER_WRITE = "directory.user_changed"

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("GET", NODES, org_tree.list_nodes, Operation(
        "List the org nodes of a subtree", "directory", _READ, "bearer", query=NodeQuery,
        replies={200: Reply("The nodes, ordered by path.", OrgNodeList)},
        errors=(*_READ_ERRORS, "request.invalid_query", "org.not_found"),
    )),
    ("POST", NODES, org_tree.create_node, Operation(
        "Create an org node", "directory",
        "A child of an existing node, one level below it (district → street → community → "
        "grid). " + _WRITE.format(event=_NODE_WRITE), "bearer", body=OrgNodeCreate,
        replies={201: Reply("Created.", OrgNodeOut, headers={"Location": "The node's URL."})},
        errors=(*_READ_ERRORS, *_BODY_ERRORS, "org.invalid", "org.unknown_parent", "org.exists"),
    )),
    ("GET", NODE, org_tree.get_node, Operation(
        "Get an org node", "directory", _READ, "bearer", path_params=_NODE_PARAM,
        replies={200: Reply("The node.", OrgNodeOut)}, errors=(*_READ_ERRORS, "org.not_found"),
    )),
    ("PATCH", NODE, org_tree.update_node, Operation(
        "Rename an org node", "directory", _WRITE.format(event=_NODE_WRITE), "bearer",
        body=OrgNodeUpdate, path_params=_NODE_PARAM,
        replies={200: Reply("The renamed node.", OrgNodeOut)},
        errors=(*_READ_ERRORS, *_BODY_ERRORS, "org.invalid", "org.not_found"),
    )),
    ("GET", USERS, users.list_users, Operation(
        "List users", "directory",
        _READ + " Filters combine; pages follow `next_cursor` until it is null.", "bearer",
        query=UserQuery, replies={200: Reply("One page of users, ordered by id.", UserPage)},
        errors=(*_READ_ERRORS, "request.invalid_query"),
    )),
    ("POST", USERS, users.create_user, Operation(
        "Create a user", "directory",
        "The user's org node must exist and lie in the admin's subtree. "
        + _WRITE.format(event=_USER_WRITE), "bearer", body=UserCreate,
        replies={201: Reply("Created.", UserOut, headers={"Location": "The user's URL."})},
        errors=(*_READ_ERRORS, *_BODY_ERRORS, "user.invalid", "user.exists"),
    )),
    ("GET", USER, users.get_user, Operation(
        "Get a user", "directory", _READ, "bearer", path_params=_USER_PARAM,
        replies={200: Reply("The user.", UserOut)}, errors=(*_READ_ERRORS, "user.not_found"),
    )),
    ("PATCH", USER, users.update_user, Operation(
        "Update a user", "directory",
        "Only the fields given change. Moving a user (`org`) needs both nodes in the admin's "
        "subtree; the event then also goes to the old node's channels. "
        + _WRITE.format(event=_USER_WRITE), "bearer", body=UserUpdate, path_params=_USER_PARAM,
        replies={200: Reply("The updated user.", UserOut)},
        errors=(*_READ_ERRORS, *_BODY_ERRORS, "user.invalid", "user.not_found"),
    )),
    ("DELETE", USER, users.deactivate_user, Operation(
        "Deactivate a user", "directory",
        "Sets `active=false` and keeps the row; an already inactive user is returned "
        "unchanged and no event is published. " + _WRITE.format(event=_USER_WRITE), "bearer",
        path_params=_USER_PARAM, replies={200: Reply("The deactivated user.", UserOut)},
        errors=(*_READ_ERRORS, "user.not_found"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the directory routes."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
