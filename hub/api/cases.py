"""Cases REST (案件): report, list, detail with timeline, the loop's actions, attachments,
and the category tree. The rules live in hub/cases/ (lifecycle.py says who may do what)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from urllib.parse import quote

import orjson
from aiohttp import BodyPartReader, web
from sqlalchemy import ColumnElement, Select, func, or_, select

from hub.api.auth import require_identity
from hub.api.case_models import (
    AttachmentOut,
    CaseDetail,
    CaseOut,
    CasePage,
    CaseQuery,
    CategoryTree,
    TimelineEntry,
)
from hub.api.directory_http import json_reply, read_body
from hub.api.directory_models import PageQuery, bad_query, parse_query
from hub.api.errors import Handler
from hub.api.operations import Operation, Reply, RouteKey
from hub.cases.attachments import ACCEPTED, AttachmentStore
from hub.cases.lifecycle import OPEN, Actor
from hub.cases.models import CaseAction, CaseReport
from hub.cases.service import CaseError, actor_of, can_view
from hub.db.models import Case, CaseAttachment, CaseEntry, utcnow
from hub.db.paths import in_subtree
from hub.state import HUB
from protocols.envelope import new_event_id

CASES = "/api/v1/cases"
CATEGORIES = "/api/v1/cases/categories"
CASE = "/api/v1/cases/{id}"
ACTIONS = "/api/v1/cases/{id}/actions"
ATTACHMENTS = "/api/v1/cases/{id}/attachments"
ATTACHMENT = "/api/v1/cases/{id}/attachments/{attachment}"
ID_LENGTH = 26
CHUNK = 64 * 1024


def _id(request: web.Request, name: str = "id") -> str:
    value = request.match_info[name]
    if len(value) != ID_LENGTH or not value.isalnum():
        raise CaseError(404, "case.not_found", "no such case")
    return value


def _actor(request: web.Request) -> Actor:
    """The caller as a case actor (the service looks up their display name)."""
    return actor_of(require_identity(request))


async def report_case(request: web.Request) -> web.Response:
    """Report a new case (上报)."""
    actor = _actor(request)
    spec = await read_body(request, CaseReport, "case.invalid")
    case = await request.app[HUB].cases.report(actor, spec)
    return json_reply(CaseOut.of(case), 201, Location=f"{CASES}/{case.id}")


async def act_on_case(request: web.Request) -> web.Response:
    """Apply one action of the loop."""
    actor = _actor(request)
    case_id = _id(request)
    spec = await read_body(request, CaseAction, "case.invalid")
    case = await request.app[HUB].cases.act(actor, case_id, spec)
    return json_reply(CaseOut.of(case))


async def get_case(request: web.Request) -> web.Response:
    """A case with its timeline and attachments."""
    actor = actor_of(require_identity(request))
    case_id = _id(request)
    async with request.app[HUB].sessions() as session:
        case = await session.get(Case, case_id)
        if case is None or not can_view(actor, case):
            raise CaseError(404, "case.not_found", f"no case {case_id} for you")
        entries = await session.scalars(
            select(CaseEntry).where(CaseEntry.case_id == case_id).order_by(CaseEntry.id)
        )
        files = await session.scalars(
            select(CaseAttachment)
            .where(CaseAttachment.case_id == case_id)
            .order_by(CaseAttachment.id)
        )
        detail = CaseDetail(
            **CaseOut.of(case).model_dump(),
            timeline=[TimelineEntry.of(e) for e in entries],
            attachments=[AttachmentOut.of(f) for f in files],
        )
    return json_reply(detail)


async def list_cases(request: web.Request) -> web.Response:
    """Cases the caller may see, newest first, filtered."""
    identity = require_identity(request)
    query = parse_query(CaseQuery, dict(request.query))
    stmt = _filtered(select(Case), query, identity.user, identity.org)
    after = _after(query)
    if after is not None:
        stmt = stmt.where(Case.id < after)
    async with request.app[HUB].sessions() as session:
        rows = (await session.scalars(stmt.order_by(Case.id.desc()).limit(query.limit + 1))).all()
    shown = rows[: query.limit]
    cursor = _cursor(shown[-1].id) if len(rows) > query.limit else None
    return json_reply(CasePage(items=[CaseOut.of(c) for c in shown], next_cursor=cursor))


def _filtered(stmt: Select[Case], q: CaseQuery, user: str, org: str) -> Select[Case]:
    visible: ColumnElement[bool] = or_(
        in_subtree(Case.org, org),
        Case.assignee == user,
        (Case.reporter_kind == "user") & (Case.reporter_id == user),
    )
    stmt = stmt.where(visible)
    if q.state is not None:
        stmt = stmt.where(Case.state == q.state)
    if q.open is not None:
        opened = Case.state.in_([s.value for s in OPEN])
        stmt = stmt.where(opened if q.open else ~opened)
    if q.category is not None:
        column = Case.category if "." in q.category else Case.category_root
        stmt = stmt.where(column == q.category)
    if q.priority is not None:
        stmt = stmt.where(Case.priority == q.priority)
    if q.org is not None:
        stmt = stmt.where(in_subtree(Case.org, q.org))
    if q.tier_org is not None:
        stmt = stmt.where(Case.tier_org == q.tier_org)
    if q.assignee is not None:
        stmt = stmt.where(Case.assignee == (user if q.assignee == "me" else q.assignee))
    if q.alert == "due_soon":
        stmt = stmt.where(Case.due_soon_raised_at.is_not(None), Case.overdue_raised_at.is_(None))
    elif q.alert == "overdue":
        stmt = stmt.where(Case.overdue_raised_at.is_not(None))
    if q.created_from is not None:
        stmt = stmt.where(Case.created_at >= q.created_from)
    if q.created_to is not None:
        stmt = stmt.where(Case.created_at < q.created_to)
    if q.external_id is not None:
        stmt = stmt.where(Case.external_id == q.external_id)
    return stmt


def _cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": last_id})).decode().rstrip("=")


def _after(query: PageQuery) -> str | None:
    """The last id of the previous page (pages go backwards in time)."""
    if query.cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(query.cursor + "=" * (-len(query.cursor) % 4))
        before = orjson.loads(raw)["before"]
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise bad_query([{"loc": "cursor", "msg": "not a cursor this API issued"}]) from err
    if not isinstance(before, str):
        raise bad_query([{"loc": "cursor", "msg": "not a cursor this API issued"}])
    return before


async def get_categories(request: web.Request) -> web.Response:
    """The category tree and time limits."""
    require_identity(request)
    cases = request.app[HUB].cases
    spec = cases.categories.spec
    return json_reply(
        CategoryTree(
            categories=spec.categories,
            time_limits_hours=spec.time_limits_hours,
            due_soon_fraction=cases.settings.due_soon_fraction,
        )
    )


# -- attachments --------------------------------------------------------------------------


def _store(request: web.Request) -> AttachmentStore:
    settings = request.app[HUB].settings.cases
    return AttachmentStore(settings.attachments_dir, settings.max_attachment_bytes)


async def upload_attachment(request: web.Request) -> web.Response:
    """Upload one file (multipart field ``file``) to a case."""
    actor = _actor(request)
    case_id = _id(request)
    hub = request.app[HUB]
    async with hub.sessions() as session:
        case = await session.get(Case, case_id)
        if case is None or not can_view(actor, case):
            raise CaseError(404, "case.not_found", f"no case {case_id} for you")
        count = await session.scalar(select(func.count()).where(CaseAttachment.case_id == case_id))
    if (count or 0) >= hub.settings.cases.max_attachments:
        raise CaseError(409, "case.too_many_attachments", "the case has all it may hold")
    part = await _file_part(request)
    filename = (part.filename or "attachment")[:200]
    content_type = part.headers.get("Content-Type", "application/octet-stream").split(";")[0]
    attachment_id = new_event_id()
    store = _store(request)
    stored = await store.save(case_id, attachment_id, content_type.strip().lower(), _chunks(part))
    row = CaseAttachment(
        id=attachment_id,
        case_id=case_id,
        filename=filename,
        content_type=content_type.strip().lower(),
        size=stored.size,
        sha256=stored.sha256,
        uploaded_by=actor.id,
        uploaded_at=utcnow(),
    )
    try:
        async with hub.sessions() as session, session.begin():
            session.add(row)
    except BaseException:
        await store.discard(case_id, attachment_id)
        raise
    url = f"{CASES}/{case_id}/attachments/{attachment_id}"
    return json_reply(AttachmentOut.of(row), 201, Location=url)


async def _file_part(request: web.Request) -> BodyPartReader:
    if not request.content_type.startswith("multipart/form-data"):
        raise CaseError(
            415, "request.unsupported_media_type", "upload as multipart/form-data, field `file`"
        )
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            return part
    raise CaseError(422, "case.invalid", "the form has no `file` field")


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


async def download_attachment(request: web.Request) -> web.StreamResponse:
    """An attachment's bytes, with its content type."""
    actor = actor_of(require_identity(request))
    case_id = _id(request)
    attachment_id = _id(request, "attachment")
    async with request.app[HUB].sessions() as session:
        case = await session.get(Case, case_id)
        if case is None or not can_view(actor, case):
            raise CaseError(404, "case.not_found", f"no case {case_id} for you")
        row = await session.get(CaseAttachment, attachment_id)
    if row is None or row.case_id != case_id:
        raise CaseError(404, "case.attachment_not_found", "no such attachment on this case")
    path = _store(request).path(case_id, attachment_id)
    disposition = "inline" if row.content_type.startswith("image/") else "attachment"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": row.content_type,
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(row.filename)}",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- routes and their documentation -------------------------------------------------------

_AUTH = ("auth.required", "auth.invalid_token", "auth.token_expired")
_BODY = ("request.invalid_json", "request.too_large")
_ID = {"id": "Case id (a ULID)."}
_ACTION_ERRORS = (
    *_AUTH, *_BODY, "case.invalid", "case.not_found", "case.invalid_transition",
    "case.wrong_tier", "case.not_assignee", "case.no_higher_tier", "case.reason_required",
    "case.version_conflict", "case.unknown_assignee", "case.assignee_outside_scope",
    "case.invalid_deadline", "case.unknown_attachment",
)  # fmt: skip
_LOOP = (
    "| action | state before → after | who |\n|---|---|---|\n"
    "| register 立案 | reported → registered | dispatcher/leader of the handling centre "
    "(`tier_org`); starts the time limit |\n"
    "| reject 不予立案 | reported → rejected | same; `note` required |\n"
    "| assign 指派 | registered/assigned → assigned | same; `assignee` (a user under the "
    "centre or a department), optional `deadline` |\n"
    "| start 处置 | assigned → handling | the assignee |\n"
    "| feed_back 反馈 | handling → fed_back | the assignee; `attachments` ids |\n"
    "| close 核查结案 | fed_back → closed | the centre's staff |\n"
    "| return 退回 | fed_back → handling | the centre's staff; `note` required |\n"
    "| evaluate 评价 | closed → evaluated | the reporter or the centre; `satisfaction` 1–5 |\n"
    "| escalate 上报上级 | reported/registered → reported at the parent tier's centre | "
    "the centre's staff; `note` required |\n"
    "| supervise 督办 | any open state, unchanged | dispatcher/leader of a centre above "
    "the handling one; `note` required |\n"
)

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("GET", CATEGORIES, get_categories, Operation(
        "Case categories and time limits", "cases",
        "The category tree (codes for `category`) and the time limits in hours per root "
        "category and priority (`default` for the rest).", "bearer",
        replies={200: Reply("The tree.", CategoryTree)}, errors=_AUTH,
    )),
    ("POST", CASES, report_case, Operation(
        "Report a case (上报)", "cases",
        "Any signed-in user. The case belongs to `org` if given (inside the reporter's "
        "subtree), else to the grid containing `location` (anywhere in the reporter's "
        "district), else to the reporter's org; it goes to the centre of that place (a "
        "grid's community). `direct_to_district` (priority emergency, grid workers and "
        "leaders) sends it straight to the district centre. Events: `case.reported` on "
        "the org channels of the place and on `case:<id>`.", "bearer", body=CaseReport,
        replies={201: Reply("Stored.", CaseOut, headers={"Location": "The case's URL."})},
        errors=(*_AUTH, *_BODY, "case.invalid", "case.unknown_category", "case.unknown_org",
                "case.no_org", "case.outside_scope", "case.direct_report_forbidden"),
    )),
    ("GET", CASES, list_cases, Operation(
        "List cases", "cases",
        "Cases located in the caller's org subtree, assigned to them or reported by them, "
        "newest first, filtered; pages follow `next_cursor`.", "bearer", query=CaseQuery,
        replies={200: Reply("One page.", CasePage)}, errors=(*_AUTH, "request.invalid_query"),
    )),
    ("GET", CASE, get_case, Operation(
        "Get a case with its timeline", "cases",
        "Visible to users whose org subtree holds the case, its assignee and its reporter; "
        "to anyone else it does not exist (404).", "bearer", path_params=_ID,
        replies={200: Reply("The case.", CaseDetail)}, errors=(*_AUTH, "case.not_found"),
    )),
    ("POST", ACTIONS, act_on_case, Operation(
        "Act on a case (the seven steps)", "cases",
        "One step of the closed loop. The role check comes before the state check: 403 "
        "`case.wrong_tier`/`case.not_assignee` for the wrong person, 409 "
        "`case.invalid_transition` for the wrong moment. Each action writes a timeline "
        "row and publishes `case.<past tense>` (e.g. `case.assigned`) on the org channels, "
        "on `case:<id>` and, for assign/return/supervise, on the assignee's `user:<id>`.\n\n"
        + _LOOP, "bearer", body=CaseAction, path_params=_ID,
        replies={200: Reply("The case after the action.", CaseOut)}, errors=_ACTION_ERRORS,
    )),
    ("POST", ATTACHMENTS, upload_attachment, Operation(
        "Attach a file to a case", "cases",
        "multipart/form-data with one field `file`. Accepted types: "
        + ", ".join(sorted(ACCEPTED)) + "; the content must match the declared type. "
        "Reference the returned id in an action's `attachments` (e.g. feed_back).",
        "bearer", path_params=_ID,
        extra={"requestBody": {"content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"]}}}}},
        replies={201: Reply("Stored.", AttachmentOut)},
        errors=(*_AUTH, "case.not_found", "case.invalid", "request.unsupported_media_type",
                "case.attachment_too_large", "case.attachment_type",
                "case.too_many_attachments"),
    )),
    ("GET", ATTACHMENT, download_attachment, Operation(
        "Download an attachment", "cases", "The stored bytes with their content type.",
        "bearer", path_params={**_ID, "attachment": "Attachment id."},
        replies={200: Reply("The file.", schema={"type": "string", "format": "binary"},
                            content_type="application/octet-stream")},
        errors=(*_AUTH, "case.not_found", "case.attachment_not_found"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the case routes (categories before ``{id}``: routes match in order)."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
