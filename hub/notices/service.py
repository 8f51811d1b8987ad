"""Sending and reading notices.

Send: check who may send what to whom, resolve the targets to active users page by page
(never one statement over the whole directory), insert the recipients in batches and commit
the notice, its recipients and the sender's ``notice.sent`` (outbox) in one transaction.
The recipients' ``notice.new`` pop-ups are views of that stored state: for a small notice
they go through the outbox in the same transaction (one row, one encoding, one channel per
recipient); for a large one a background task publishes them in paced batches with bounded
concurrency, so the request returns at once and the hub keeps serving everyone else. Who
missed a push still finds the notice as unread (REST inbox, rpc ``notice.unread``).

Read: the first read stores the receipt (a conditional UPDATE, so concurrent reads cannot
both win); later reads store nothing and return the same receipt. Each first read nudges
the sender's ``notice.read_progress``, coalesced per notice.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Select,
    String,
    and_,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.channels import user_channel
from hub.auth.tokens import Identity
from hub.bus import BusUnavailable
from hub.db.models import Notice, NoticeRecipient, OrgNode, User, utcnow
from hub.db.outbox import OutboxRelay, add_personal_event
from hub.db.paths import in_subtree
from hub.errors import HubError
from hub.events import NoticeNew, NoticeReadProgress, NoticeSent
from hub.notices.models import NoticeSpec, ReadVia, Receipt, Targets, as_utc
from hub.notices.progress import ProgressCoalescer
from hub.publisher import Publisher
from hub.tasks import TaskRegistry
from protocols.envelope import Envelope, new_event_id, org_contains

log = structlog.get_logger(__name__)

SOURCE = "hub/notices"
SENDER_ROLES = ("dispatcher", "leader", "admin")
RED_HEADER_ROLES = ("leader", "admin")
RESOLVE_BATCH = 1000
"""Users resolved and inserted as recipients per statement (paged by id)."""
OUTBOX_FANOUT_MAX = 200
"""Up to this many recipients the pop-ups go through the outbox with the notice; above it
a paced background fan-out publishes them."""
FANOUT_BATCH = 500
"""Recipients pushed per batch of the background fan-out."""
FANOUT_CONCURRENCY = 16
"""Publishes in flight within a batch."""
FANOUT_PAUSE = 0.005
"""Seconds between batches, so other work gets the event loop and the bus."""
FANOUT_RETRY_DELAY = 0.2
FANOUT_RETRY_MAX_DELAY = 5.0
FANOUT_RETRIES = 6
PROGRESS_INTERVAL = 1.0
"""At most one notice.read_progress per notice per this many seconds (trailing one sent)."""
EXCERPT_CHARS = 120


class NoticeError(HubError):
    """A notice request refused: status, documented code, message, optional details."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(code, message, status)
        self.details = details


def excerpt(body: str) -> str:
    """The start of a body, for pop-ups and lists."""
    return body if len(body) <= EXCERPT_CHARS else body[: EXCERPT_CHARS - 1] + "…"


def new_notice_event(notice: Notice) -> Envelope:
    """The recipients' ``notice.new`` pop-up for ``notice``."""
    data = NoticeNew(
        notice_id=notice.id,
        kind=notice.kind,
        level=notice.level,
        title=notice.title,
        excerpt=excerpt(notice.body),
        attachment_count=len(notice.attachments),
        sender_id=notice.sender_id,
        sender_name=notice.sender_name,
        sender_org=notice.sender_org,
        created_at=as_utc(notice.created_at).isoformat(),
    )
    envelope = data.envelope(source=SOURCE, org=notice.sender_org, subject=notice.id)
    # One event id per notice: a pop-up pushed again (a resumed fan-out, a second hub
    # process) is a duplicate consumers drop, not a second notice.
    return dataclasses.replace(envelope, id=notice.id)


class NoticeService:
    """Sends notices, fans their pop-ups out and stores read receipts."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        relay: OutboxRelay,
        tasks: TaskRegistry,
    ) -> None:
        self.sessions = sessions
        self._publisher = publisher
        self._relay = relay
        self._tasks = tasks
        self.progress = ProgressCoalescer(PROGRESS_INTERVAL, self._publish_progress, tasks)
        self.fanouts: dict[str, asyncio.Task[None]] = {}
        """Background fan-outs running in this process, by notice id."""

    # -- send -----------------------------------------------------------------------------

    async def send(self, identity: Identity, spec: NoticeSpec) -> Notice:
        """Store the notice and its recipients; push the pop-ups. Returns the notice."""
        if not identity.has_any(*SENDER_ROLES):
            raise NoticeError(
                403, "auth.forbidden", f"sending notices needs one of: {', '.join(SENDER_ROLES)}"
            )
        if spec.kind == "red_header" and not identity.has_any(*RED_HEADER_ROLES):
            raise NoticeError(
                403,
                "notice.red_header_forbidden",
                "red-header notices (红头文件) may be issued by leaders and admins only",
            )
        outside = [org for org in spec.targets.orgs if not org_contains(identity.org, org)]
        if outside:
            raise NoticeError(
                403,
                "notice.target_outside_scope",
                f"org targets outside your org {identity.org}: {', '.join(outside)}",
            )
        now = utcnow()
        async with self.sessions() as session, session.begin():
            sender = await session.get(User, identity.user)
            if sender is None or not sender.active:
                raise NoticeError(403, "auth.forbidden", "the sender is not an active user")
            await self._check_targets(session, identity, spec.targets)
            notice = Notice(
                id=new_event_id(),
                kind=spec.kind,
                level=spec.level,
                title=spec.title,
                body=spec.body,
                attachments=[a.model_dump() for a in spec.attachments],
                sender_id=sender.id,
                sender_name=sender.name,
                sender_org=identity.org,
                targets=spec.targets.model_dump(),
                recipient_count=0,
                created_at=now,
            )
            session.add(notice)
            await session.flush()
            count, first = await self._insert_recipients(session, notice.id, identity, spec.targets)
            if count == 0:
                raise NoticeError(
                    422, "notice.no_recipients", "the targets resolve to no active user"
                )
            notice.recipient_count = count
            if count <= OUTBOX_FANOUT_MAX:
                channels = [user_channel(user) for user in first]
                add_personal_event(session, new_notice_event(notice), channels)
                await session.execute(
                    update(NoticeRecipient)
                    .where(NoticeRecipient.notice_id == notice.id)
                    .values(delivered_at=now)
                )
                notice.sent_at = now
            sent = NoticeSent(
                notice_id=notice.id,
                kind=spec.kind,
                level=spec.level,
                title=spec.title,
                recipient_count=count,
                created_at=now.isoformat(),
            )
            envelope = sent.envelope(source=SOURCE, org=identity.org, subject=notice.id)
            add_personal_event(session, envelope, [user_channel(identity.user)])
        self._relay.notify()
        if count > OUTBOX_FANOUT_MAX:
            self._start_fanout(notice)
        log.info("notice sent", notice_id=notice.id, recipients=count, kind=spec.kind)
        return notice

    async def _check_targets(
        self, session: AsyncSession, identity: Identity, targets: Targets
    ) -> None:
        """403 for a target outside the sender's subtree, 422 for one that does not exist."""
        unknown: list[dict[str, Any]] = []
        if targets.users:
            rows = (
                await session.execute(select(User.id, User.org).where(User.id.in_(targets.users)))
            ).all()
            orgs = {row.id: row.org for row in rows}
            outside = sorted(u for u, org in orgs.items() if not org_contains(identity.org, org))
            if outside:
                raise NoticeError(
                    403,
                    "notice.target_outside_scope",
                    f"users outside your org {identity.org}: {', '.join(outside[:20])}",
                )
            unknown += [
                {"loc": f"targets.users.{i}", "msg": f"no user {u}"}
                for i, u in enumerate(targets.users)
                if u not in orgs
            ]
        if targets.orgs:
            known = set(
                await session.scalars(select(OrgNode.path).where(OrgNode.path.in_(targets.orgs)))
            )
            unknown += [
                {"loc": f"targets.orgs.{i}", "msg": f"no org node {p}"}
                for i, p in enumerate(targets.orgs)
                if p not in known
            ]
        if unknown:
            raise NoticeError(422, "notice.unknown_target", "unknown targets", unknown)

    async def _insert_recipients(
        self, session: AsyncSession, notice_id: str, identity: Identity, targets: Targets
    ) -> tuple[int, list[str]]:
        """Insert a recipient row per resolved user, a page of ``RESOLVE_BATCH`` users at a
        time, inside the database (INSERT … SELECT over a key range: the ids never travel
        to the hub and back). Returns the count and, for a notice small enough for the
        outbox, the recipients' ids."""
        matching = self._targets_query(identity, targets)
        count = 0
        after: str | None = None
        while True:
            page = matching if after is None else matching.where(User.id > after)
            page = page.order_by(User.id).limit(RESOLVE_BATCH)
            # The page's last id in the database's own ordering (its collation, not ours).
            last = await session.scalar(select(func.max(page.subquery().c.id)))
            if last is None:
                break
            in_page = matching.where(User.id <= last)
            if after is not None:
                in_page = in_page.where(User.id > after)
            rows = in_page.with_only_columns(literal(notice_id, String(26)), User.id)
            result = await session.execute(
                insert(NoticeRecipient).from_select(["notice_id", "user_id"], rows)
            )
            added = cast(CursorResult[Any], result).rowcount
            count += added
            if added < RESOLVE_BATCH:
                break
            after = last
        first: list[str] = []
        if 0 < count <= OUTBOX_FANOUT_MAX:
            first = list(
                await session.scalars(
                    select(NoticeRecipient.user_id).where(NoticeRecipient.notice_id == notice_id)
                )
            )
        return count, first

    def _targets_query(self, identity: Identity, targets: Targets) -> Select[str]:
        """Ids of the active users the targets name, the sender excepted."""
        wanted: list[ColumnElement[bool]] = []
        if targets.users:
            wanted.append(User.id.in_(targets.users))
        if targets.roles:
            # Roles are a JSON list of names from a fixed vocabulary: match the quoted name
            # in its text, which works on every backend's JSON column.
            holds = [
                sql_cast(User.roles, String).contains(f'"{role}"', autoescape=True)
                for role in targets.roles
            ]
            wanted.append(and_(in_subtree(User.org, identity.org), or_(*holds)))
        wanted.extend(in_subtree(User.org, org) for org in targets.orgs)
        return select(User.id).where(User.active, User.id != identity.user, or_(*wanted))

    # -- background fan-out ---------------------------------------------------------------

    async def resume_fanouts(self) -> int:
        """Restart the fan-out of every notice a stopped hub left unfinished (``sent_at``
        still empty): the recipients not yet pushed get their pop-up now."""
        async with self.sessions() as session:
            unfinished = list(await session.scalars(select(Notice).where(Notice.sent_at.is_(None))))
        for notice in unfinished:
            self._start_fanout(notice)
        if unfinished:
            log.info("notice fan-outs resumed", notices=len(unfinished))
        return len(unfinished)

    def _start_fanout(self, notice: Notice) -> None:
        if notice.id in self.fanouts:
            return
        task = self._tasks.spawn(self.fan_out(notice), name=f"notice fan-out {notice.id}")
        self.fanouts[notice.id] = task
        task.add_done_callback(lambda _: self.fanouts.pop(notice.id, None))

    async def fan_out(self, notice: Notice) -> None:
        """Publish the pop-up to every recipient not yet pushed, batch by batch; mark each
        batch delivered, and the notice sent at the end."""
        data = new_notice_event(notice).encode()
        after = ""
        while True:
            async with self.sessions() as session:
                users = list(
                    await session.scalars(
                        select(NoticeRecipient.user_id)
                        .where(
                            NoticeRecipient.notice_id == notice.id,
                            NoticeRecipient.delivered_at.is_(None),
                            NoticeRecipient.user_id > after,
                        )
                        .order_by(NoticeRecipient.user_id)
                        .limit(FANOUT_BATCH)
                    )
                )
            if not users:
                break
            await self._publish_batch(data, users)
            async with self.sessions() as session, session.begin():
                # A key range, not an IN list: a range scan of the primary key whatever
                # plan the database has cached for the statement.
                await session.execute(
                    update(NoticeRecipient)
                    .where(
                        NoticeRecipient.notice_id == notice.id,
                        NoticeRecipient.user_id > after,
                        NoticeRecipient.user_id <= users[-1],
                        NoticeRecipient.delivered_at.is_(None),
                    )
                    .values(delivered_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
            after = users[-1]
            await asyncio.sleep(FANOUT_PAUSE)
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Notice).where(Notice.id == notice.id).values(sent_at=utcnow())
            )
        log.info("notice fan-out done", notice_id=notice.id, recipients=notice.recipient_count)

    async def _publish_batch(self, data: bytes, users: list[str]) -> None:
        pending = iter([user_channel(user) for user in users])

        async def worker() -> None:
            for channel in pending:  # shared iterator: each channel taken by one worker
                await self._publish_retrying(data, channel)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(FANOUT_CONCURRENCY, len(users))):
                group.create_task(worker())

    async def _publish_retrying(self, data: bytes, channel: str) -> None:
        delay = FANOUT_RETRY_DELAY
        for attempt in range(FANOUT_RETRIES):
            try:
                await self._publisher.publish_encoded(data, [channel])
                return
            except BusUnavailable:
                if attempt == FANOUT_RETRIES - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, FANOUT_RETRY_MAX_DELAY)

    # -- read -----------------------------------------------------------------------------

    async def read(self, identity: Identity, notice_id: str, via: ReadVia) -> Receipt:
        """Store the caller's read receipt (first read wins) and return it."""
        async with self.sessions() as session, session.begin():
            result = cast(
                CursorResult[Any],
                await session.execute(
                    update(NoticeRecipient)
                    .where(
                        NoticeRecipient.notice_id == notice_id,
                        NoticeRecipient.user_id == identity.user,
                        NoticeRecipient.read_at.is_(None),
                    )
                    .values(read_at=utcnow(), read_via=via)
                ),
            )
            row = await session.get(NoticeRecipient, (notice_id, identity.user))
            if row is None or row.read_at is None or row.read_via is None:
                raise NoticeError(404, "notice.not_found", f"no notice {notice_id} for you")
            receipt = Receipt(
                notice_id=notice_id,
                user_id=identity.user,
                read_at=row.read_at,
                read_via=row.read_via,
            )
        if result.rowcount:
            self.progress.touch(notice_id)
        return receipt

    async def read_counts(self, session: AsyncSession, notice_ids: list[str]) -> dict[str, int]:
        """How many recipients have read each notice."""
        if not notice_ids:
            return {}
        rows = await session.execute(
            select(NoticeRecipient.notice_id, func.count())
            .where(NoticeRecipient.notice_id.in_(notice_ids), NoticeRecipient.read_at.is_not(None))
            .group_by(NoticeRecipient.notice_id)
        )
        return {notice_id: int(n) for notice_id, n in rows}

    async def _publish_progress(self, notice_id: str) -> None:
        async with self.sessions() as session:
            notice = await session.get(Notice, notice_id)
            if notice is None:
                return
            read = (await self.read_counts(session, [notice_id])).get(notice_id, 0)
        total = notice.recipient_count
        data = NoticeReadProgress(notice_id=notice_id, read=read, unread=total - read, total=total)
        envelope = data.envelope(source=SOURCE, org=notice.sender_org, subject=notice_id)
        try:
            await self._publisher.publish_encoded(
                envelope.encode(), [user_channel(notice.sender_id)]
            )
        except BusUnavailable:
            log.warning("read progress not pushed: bus unavailable", notice_id=notice_id)
