"""Case statistics REST (案件统计, 考核): ``GET /api/v1/cases/stats``.

Leaders, dispatchers, admins and departments read the statistics of their own org subtree
or of any node inside it. The figures come from hub/cases/stats.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.api.auth import require_identity
from hub.api.directory_http import check_scope, json_reply
from hub.api.directory_models import bad_query, parse_query
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.cases.stats import CaseStats, case_stats, level_depth
from hub.org.seed import LEVELS
from hub.state import HUB
from protocols.envelope import EnvelopeError, validate_org_path

STATS = "/api/v1/cases/stats"
STATS_ROLES = ("leader", "dispatcher", "admin", "department")
DEFAULT_RANGE = timedelta(days=30)
BREAKDOWN_LEVELS = LEVELS[1:]


def _utc(value: datetime) -> datetime:
    """A time without an offset is UTC; everything ends up in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class StatsQuery(BaseModel):
    """Query parameters of ``GET /api/v1/cases/stats``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    since: datetime | None = Field(
        None,
        alias="from",
        description="Start of the range on the creation time (inclusive): an ISO date (its "
        "midnight) or date-time; without an offset, UTC. Default: 30 days before `to`.",
    )
    until: datetime | None = Field(
        None,
        alias="to",
        description="End of the range (exclusive), same forms. Default: now.",
    )
    org: str | None = Field(
        None, max_length=128, description="Subtree counted (default: the caller's own org)."
    )
    level: str | None = Field(
        None,
        description="Level of the org breakdown, at or below `org`'s "
        "(default: the level below `org`'s).",
        json_schema_extra={"enum": list(BREAKDOWN_LEVELS)},
    )

    @field_validator("org")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                validate_org_path(value)
            except EnvelopeError as err:
                raise ValueError(str(err)) from err
        return value

    @field_validator("level")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        if value is not None and value not in BREAKDOWN_LEVELS:
            raise ValueError(f"level must be one of {', '.join(BREAKDOWN_LEVELS)}")
        return value

    @model_validator(mode="after")
    def _range(self) -> StatsQuery:
        since, until = self.since, self.until
        if since is not None and until is not None and _utc(since) >= _utc(until):
            raise ValueError("`from` must be before `to`")
        return self

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The range ``[from, to)`` in UTC, defaults filled in."""
        until = _utc(self.until) if self.until is not None else now
        since = _utc(self.since) if self.since is not None else until - DEFAULT_RANGE
        return since, until


def breakdown_level(root: str, level: str | None) -> str:
    """The requested level, or the one below ``root``'s; 400 if above ``root``'s level."""
    depth = root.count(".") + 1
    if level is None:
        return LEVELS[min(depth, len(LEVELS) - 1)]
    if level_depth(level) < depth:
        msg = f"level {level} is above the org {root}"
        raise bad_query([{"loc": "level", "msg": msg}])
    return level


async def get_stats(request: web.Request) -> web.Response:
    """Counts, on-time closure rates and rankings of the cases of an org subtree."""
    identity = require_identity(request, *STATS_ROLES)
    query = parse_query(StatsQuery, dict(request.query))
    root = query.org or identity.org
    check_scope(identity, root)
    level = breakdown_level(root, query.level)
    since, until = query.window(datetime.now(UTC))
    async with request.app[HUB].sessions() as session:
        stats = await case_stats(session, root, since, until, level)
    return json_reply(stats)


# -- routes and their documentation -------------------------------------------------------

_AUTH_ERRORS = ("auth.required", "auth.invalid_token", "auth.token_expired", "auth.forbidden")

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("GET", STATS, get_stats, Operation(
        "Case statistics (案件统计与考核)", "cases",
        "Leaders, dispatchers, admins and departments (403 auth.forbidden otherwise). The "
        "cases created in `[from, to)` inside the `org` subtree (the caller's own org by "
        "default; a node outside it is 403 auth.forbidden): counts by state, root "
        "category and handling tier; per org node at `level` the counts, the closure rate "
        "(closed / total), the on-time closure rate (按期办结率: closed by the deadline / "
        "closed; closed means states `closed` and `evaluated`) and the average "
        "satisfaction, ranked by on-time closure rate; the same per assignee and per "
        "department (assignees with the role `department`).",
        "bearer", query=StatsQuery,
        replies={200: Reply("The statistics.", CaseStats)},
        errors=(*_AUTH_ERRORS, "request.invalid_query"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the statistics route (before the cases module's ``/api/v1/cases/{id}``)."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
