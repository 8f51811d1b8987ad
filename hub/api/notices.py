"""Notices REST (通知公告): send, the caller's inbox, the notices they sent, one notice,
marking read, and a sender's view of the receipts.

Who may do what: dispatchers, leaders and admins send, to targets inside their own org
subtree (red-header notices: leaders and admins); a notice is visible to its recipients
and its sender only; only its sender sees the receipts. The service is hub/notices/.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from hub.api.auth import require_identity
from hub.api.directory_http import json_reply, read_body
from hub.api.directory_models import PageQuery, bad_query, encode_cursor, parse_query
from hub.api.errors import Handler
from hub.api.notice_models import (
    InboxPage,
    InboxQuery,
    NoticeOut,
    ReceiptPage,
    ReceiptsQuery,
    RecipientState,
    SentNotice,
    SentPage,
)
from hub.api.operations import Operation, Reply, RouteKey
from hub.auth.tokens import Identity
from hub.db.models import Notice, NoticeRecipient
from hub.notices import queries
from hub.notices.models import NoticeSpec, Receipt, Targets
from hub.notices.service import NoticeError
from hub.state import HUB

NOTICES = "/api/v1/notices"
INBOX = "/api/v1/notices/inbox"
SENT = "/api/v1/notices/sent"
NOTICE = "/api/v1/notices/{id}"
READ = "/api/v1/notices/{id}/read"
RECEIPTS = "/api/v1/notices/{id}/receipts"
NOTICE_ID_LENGTH = 26


def _notice_id(request: web.Request) -> str:
    notice_id = request.match_info["id"]
    if len(notice_id) != NOTICE_ID_LENGTH:
        raise NoticeError(404, "notice.not_found", "no such notice")
    return notice_id


def _not_found(notice_id: str) -> NoticeError:
    return NoticeError(404, "notice.not_found", f"no notice {notice_id} for you")


_FIELDS = (
    "id", "kind", "level", "title", "body", "attachments", "sender_id", "sender_name",
    "sender_org", "created_at", "sent_at", "recipient_count",
)  # fmt: skip


def _out(notice: Notice, **extra: object) -> NoticeOut:
    return NoticeOut.model_validate({**{f: getattr(notice, f) for f in _FIELDS}, **extra})


async def _sender_view(session: AsyncSession, request: web.Request, notice: Notice) -> NoticeOut:
    read = (await request.app[HUB].notices.read_counts(session, [notice.id])).get(notice.id, 0)
    return _out(
        notice,
        targets=Targets.model_validate(notice.targets),
        read=read,
        unread=notice.recipient_count - read,
    )


async def send_notice(request: web.Request) -> web.Response:
    """Send a notice: store it with its resolved recipients and push the pop-ups."""
    identity = require_identity(request)
    spec = await read_body(request, NoticeSpec, "notice.invalid")
    hub = request.app[HUB]
    notice = await hub.notices.send(identity, spec)
    out = _out(notice, targets=spec.targets, read=0, unread=notice.recipient_count)
    return json_reply(out, 201, Location=f"{NOTICES}/{notice.id}")


async def get_inbox(request: web.Request) -> web.Response:
    """The caller's notices: unread first, then newest first."""
    identity = require_identity(request)
    query = parse_query(InboxQuery, dict(request.query))
    raw = query.after()
    after = None if raw is None else queries.InboxCursor.decode(raw)
    if raw is not None and after is None:
        raise bad_query([{"loc": "cursor", "msg": "not a cursor this API issued"}])
    async with request.app[HUB].sessions() as session:
        items, cursor = await queries.inbox(
            session, identity.user, limit=query.limit, after=after, unread_only=bool(query.unread)
        )
        unread, total = await queries.inbox_counts(session, identity.user)
    next_cursor = encode_cursor(cursor.encode()) if cursor is not None else None
    return json_reply(InboxPage(items=items, unread=unread, total=total, next_cursor=next_cursor))


async def get_sent(request: web.Request) -> web.Response:
    """The notices the caller sent, newest first, with read counts."""
    identity = require_identity(request)
    query = parse_query(PageQuery, dict(request.query))
    hub = request.app[HUB]
    async with hub.sessions() as session:
        notices, last = await queries.sent(
            session, identity.user, limit=query.limit, after=query.after()
        )
        counts = await hub.notices.read_counts(session, [n.id for n in notices])
    items = []
    for notice in notices:
        read = counts.get(notice.id, 0)
        base = queries.summary(notice).model_dump(exclude={"read_at"})
        items.append(
            SentNotice(
                **base,
                recipient_count=notice.recipient_count,
                read=read,
                unread=notice.recipient_count - read,
                sent_at=notice.sent_at,
            )
        )
    cursor = encode_cursor(last) if last is not None else None
    return json_reply(SentPage(items=items, next_cursor=cursor))


async def get_notice(request: web.Request) -> web.Response:
    """One notice in full, for a recipient or its sender."""
    identity = require_identity(request)
    notice_id = _notice_id(request)
    async with request.app[HUB].sessions() as session:
        notice = await session.get(Notice, notice_id)
        if notice is None:
            raise _not_found(notice_id)
        if notice.sender_id == identity.user:
            return json_reply(await _sender_view(session, request, notice))
        mine = await session.get(NoticeRecipient, (notice_id, identity.user))
    if mine is None:
        raise _not_found(notice_id)
    return json_reply(_out(notice, read_at=mine.read_at, read_via=mine.read_via))


async def read_notice(request: web.Request) -> web.Response:
    """Mark the notice read by the caller (idempotent: the first read is the receipt)."""
    identity = require_identity(request)
    receipt = await request.app[HUB].notices.read(identity, _notice_id(request), "rest")
    return json_reply(receipt)


async def get_receipts(request: web.Request) -> web.Response:
    """Who has and who has not read the notice (its sender only)."""
    identity = require_identity(request)
    notice_id = _notice_id(request)
    query = parse_query(ReceiptsQuery, dict(request.query))
    hub = request.app[HUB]
    async with hub.sessions() as session:
        notice = await session.get(Notice, notice_id)
        if notice is None or not _may_see_receipts(identity, notice):
            raise _not_found(notice_id)
        rows, last = await queries.receipts(
            session, notice_id, limit=query.limit, after=query.after(), read=query.read
        )
        read = (await hub.notices.read_counts(session, [notice_id])).get(notice_id, 0)
    items = [
        RecipientState(
            user_id=row.user_id,
            name=row.name,
            org=row.org,
            delivered_at=row.recipient.delivered_at,
            read_at=row.recipient.read_at,
            read_via=row.recipient.read_via,
        )
        for row in rows
    ]
    total = notice.recipient_count
    cursor = encode_cursor(last) if last is not None else None
    return json_reply(
        ReceiptPage(items=items, read=read, unread=total - read, total=total, next_cursor=cursor)
    )


def _may_see_receipts(identity: Identity, notice: Notice) -> bool:
    return notice.sender_id == identity.user


# -- routes and their documentation -------------------------------------------------------

_AUTH_ERRORS = ("auth.required", "auth.invalid_token", "auth.token_expired")
_BODY_ERRORS = ("request.invalid_json", "request.too_large")
_ID = {"id": "Notice id (a ULID)."}
_VISIBLE = "Visible to its recipients and its sender; to anyone else it does not exist (404)."

ROUTES: list[tuple[str, str, Handler, Operation]] = [
    ("POST", NOTICES, send_notice, Operation(
        "Send a notice (发送通知公告)", "notices",
        "Dispatchers, leaders and admins send; red-header notices (`kind=red_header`, 红头"
        "文件) only leaders and admins (403 notice.red_header_forbidden). Targets combine: "
        "`users` (each inside the sender's org subtree), `roles` (holders inside the "
        "sender's subtree) and `orgs` (whole subtrees inside the sender's), resolved at "
        "send time to the active users they name, the sender excepted; a target outside "
        "the subtree is 403 notice.target_outside_scope. The notice and its recipients are "
        "stored before this returns; each recipient gets a `notice.new` event on "
        "`user:<id>` (for large notices published in paced batches after the reply: "
        "`sent_at` is set when that is done), the sender a `notice.sent`.",
        "bearer", body=NoticeSpec,
        replies={201: Reply("Stored.", NoticeOut, headers={"Location": "The notice's URL."})},
        errors=(*_AUTH_ERRORS, "auth.forbidden", *_BODY_ERRORS, "notice.invalid",
                "notice.red_header_forbidden", "notice.target_outside_scope",
                "notice.unknown_target", "notice.no_recipients"),
    )),
    ("GET", INBOX, get_inbox, Operation(
        "My notices (收件箱)", "notices",
        "The caller's notices: unread first, then read, newest first within each, with "
        "the unread and total counts. Pages follow `next_cursor`. A console calls this (or "
        "the WebSocket rpc `notice.unread`) after connecting to show what arrived while it "
        "was away.", "bearer", query=InboxQuery,
        replies={200: Reply("One page.", InboxPage)},
        errors=(*_AUTH_ERRORS, "request.invalid_query"),
    )),
    ("GET", SENT, get_sent, Operation(
        "Notices I sent", "notices",
        "The caller's sent notices, newest first, each with its read and unread counts "
        "(live changes arrive as `notice.read_progress` on the sender's `user:<id>`).",
        "bearer", query=PageQuery,
        replies={200: Reply("One page.", SentPage)},
        errors=(*_AUTH_ERRORS, "request.invalid_query"),
    )),
    ("GET", NOTICE, get_notice, Operation(
        "Get a notice", "notices",
        _VISIBLE + " The sender also gets the targets and read counts; a recipient their "
        "own receipt. Reading it here does not mark it read.", "bearer", path_params=_ID,
        replies={200: Reply("The notice.", NoticeOut)},
        errors=(*_AUTH_ERRORS, "notice.not_found"),
    )),
    ("POST", READ, read_notice, Operation(
        "Mark a notice read (标记已读)", "notices",
        "Recipients only. The first read stores the receipt (`read_via=rest`); reading "
        "again stores nothing and returns the same receipt. The WebSocket rpc "
        "`notice.read` does the same with `read_via=ws`.", "bearer", path_params=_ID,
        replies={200: Reply("The caller's receipt.", Receipt)},
        errors=(*_AUTH_ERRORS, "notice.not_found"),
    )),
    ("GET", RECEIPTS, get_receipts, Operation(
        "Read receipts of a notice (阅读回执)", "notices",
        "Its sender only (anyone else: 404). Recipients ordered by user id, filtered by "
        "`read`, with the counts over all recipients.", "bearer", query=ReceiptsQuery,
        path_params=_ID, replies={200: Reply("One page.", ReceiptPage)},
        errors=(*_AUTH_ERRORS, "request.invalid_query", "notice.not_found"),
    )),
]  # fmt: skip

OPERATIONS: dict[RouteKey, Operation] = {(m, p): op for m, p, _, op in ROUTES}


def add_routes(app: web.Application) -> None:
    """Register the notice routes (inbox and sent before ``{id}``: routes match in order)."""
    for method, path, handler, _ in ROUTES:
        app.router.add_route(method, path, handler)
