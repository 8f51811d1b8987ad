"""Request and response schemas of the directory REST API (org tree and users).

The create schemas extend the seed file's ``OrgNodeSpec``/``UserSpec`` (hub/org/seed.py), so
a node or user an admin creates is validated exactly like one loaded from config. The
update schemas are derived from the same fields (same constraints, every field optional),
and a patched record is validated as a whole by the spec again before it is written.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    create_model,
    field_validator,
)

from hub.auth.tokens import ROLES
from hub.errors import HubError
from hub.org.seed import LEVELS, OrgNodeSpec, UserSpec
from protocols.envelope import validate_org_path

DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_CURSOR = 256
MAX_QUERY = 64

M = TypeVar("M", bound=BaseModel)
_ROLE_NAMES: list[JsonValue] = [role for role in sorted(ROLES)]


class DirectoryError(HubError):
    """A directory API error, optionally with validation details."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(code, message, status)
        self.details = details


def validation_details(err: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic errors as ``[{"loc": "a.b", "msg": ...}]``."""
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        out.append({"loc": f"{prefix}{loc}" if loc else prefix.rstrip("."), "msg": e["msg"]})
    return out


def partial_model(name: str, spec: type[BaseModel], fields: Iterable[str], doc: str) -> Any:
    """A PATCH schema: ``fields`` of ``spec`` with their constraints, each optional; unknown
    fields are rejected. Field validators stay on ``spec``: the patched record is validated
    by ``spec`` as a whole, so there is one copy of every rule."""
    definitions: dict[str, Any] = {}
    for field_name in fields:
        info = spec.model_fields[field_name]
        definitions[field_name] = (
            info.rebuild_annotation() | None,
            Field(None, description=info.description),
        )
    return create_model(name, __config__=ConfigDict(extra="forbid"), __doc__=doc, **definitions)


# -- org tree -----------------------------------------------------------------------------


class OrgNodeCreate(OrgNodeSpec):
    """A new org node: a child of an existing node, one level below it."""

    model_config = ConfigDict(extra="forbid")


OrgNodeUpdate = partial_model(
    "OrgNodeUpdate", OrgNodeSpec, ["name"], "Changes to an org node (rename)."
)


def next_level(level: str) -> str | None:
    """The level below ``level`` (None below a grid)."""
    index = LEVELS.index(level) if level in LEVELS else len(LEVELS)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


class OrgNodeOut(BaseModel):
    """An org node."""

    model_config = ConfigDict(from_attributes=True)

    path: str = Field(description="Dotted path, e.g. d01.s01.c01.g01.")
    name: str
    level: str = Field(description=f"One of {', '.join(LEVELS)}.")
    parent: str | None = Field(description="The parent's path; null for a district.")


class OrgNodeList(BaseModel):
    """Org nodes, ordered by path."""

    items: list[OrgNodeOut]


class NodeQuery(BaseModel):
    """Query parameters of ``GET /api/v1/org/nodes``."""

    model_config = ConfigDict(extra="forbid")

    under: str | None = Field(
        None, description="Subtree root (default: the caller's own org node)."
    )

    @field_validator("under")
    @classmethod
    def _under(cls, value: str | None) -> str | None:
        return None if value is None else validate_org_path(value)


# -- users --------------------------------------------------------------------------------


class UserCreate(UserSpec):
    """A new user."""

    model_config = ConfigDict(extra="forbid")


UserUpdate = partial_model(
    "UserUpdate",
    UserSpec,
    ["name", "title", "phone", "org", "roles", "active"],
    "Changes to a user; only the fields given are changed.",
)


class UserOut(BaseModel):
    """A user of the directory."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    title: str
    phone: str
    org: str = Field(description="Path of the user's org node.")
    roles: list[str]
    active: bool = Field(description="False once deactivated (DELETE keeps the row).")
    created_at: datetime
    updated_at: datetime

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # SQLite hands back naive datetimes; every stored time is UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class UserPage(BaseModel):
    """One page of users, ordered by id."""

    items: list[UserOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class PageQuery(BaseModel):
    """Cursor pagination over records ordered by id (shared by list endpoints)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Page size.")
    cursor: str | None = Field(
        None, max_length=MAX_CURSOR, description="Opaque `next_cursor` of the previous page."
    )

    def after(self) -> str | None:
        """The last id of the previous page, decoded from the cursor."""
        if self.cursor is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4))
            after = orjson.loads(raw)["after"]
        except (binascii.Error, ValueError, KeyError, TypeError) as err:
            raise bad_query([{"loc": "cursor", "msg": "not a cursor this API issued"}]) from err
        if not isinstance(after, str):
            raise bad_query([{"loc": "cursor", "msg": "not a cursor this API issued"}])
        return after


class UserQuery(PageQuery):
    """Query parameters of ``GET /api/v1/users``."""

    org: str | None = Field(
        None, description="Only users in this org subtree (default: the caller's own)."
    )
    role: str | None = Field(
        None, description="Only users with this role.", json_schema_extra={"enum": _ROLE_NAMES}
    )
    active: bool | None = Field(None, description="Only active (true) or inactive (false) users.")
    q: str | None = Field(
        None, min_length=1, max_length=MAX_QUERY, description="Substring of the name or id."
    )

    @field_validator("org")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        return None if value is None else validate_org_path(value)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and value not in ROLES:
            raise ValueError(f"unknown role {value!r}")
        return value


def encode_cursor(after: str) -> str:
    """The opaque cursor that continues after id ``after``."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


def bad_query(details: list[dict[str, Any]]) -> DirectoryError:
    """400 request.invalid_query."""
    return DirectoryError(400, "request.invalid_query", "invalid query parameters", details)


def parse_query(model: type[M], query: dict[str, str]) -> M:
    """Validate query parameters with ``model`` (400 request.invalid_query on failure)."""
    try:
        return model.model_validate(query)
    except ValidationError as err:
        raise bad_query(validation_details(err)) from err
