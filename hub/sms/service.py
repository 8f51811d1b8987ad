"""The SMS service: a persistent outbound queue, delivery states from receipts, inbound
messages, all published as events through the outbox.

Sending. ``enqueue`` stores a row under an idempotency key (the caller's or a new ULID);
enqueueing the same key again returns the stored message. The sender loop claims due rows
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several hubs share one queue), marks each
``sending`` with its attempt number and the claim time *before* it submits, then records
the provider's part ids and ``sent`` in one transaction. A temporary error puts the row
back to ``queued`` with a capped, jittered back-off; a permanent one, or running out of
attempts, fails it and publishes ``sms.failed``.

Crash safety. A row found ``sending`` has no recorded provider ids (ids and ``sent`` are
committed together). After ``sending_timeout`` such a row is claimed again and resent,
because the hub cannot tell whether the gateway ever saw it: the process may have died
before its request left or after. An SMSC has no idempotency key, so this is the one
at-least-once window that remains: a hub killed between the gateway accepting a message
and the commit of its ids (milliseconds: one submission plus one commit) sends that
message again after the timeout; every other crash point loses and duplicates nothing
(before the claim: still queued; after the commit: sent, never claimed again). A resent
multi-part text keeps its concatenation reference, so a handset joining parts sees the
same message. Outcome updates are guarded by the claimed attempt number: a slow process
whose claim was taken over cannot overwrite the newer attempt's result. A submission that
times out is just as ambiguous and is retried the same way.

Receipts. Providers report receipts by provider id; the id is looked up exactly first,
then by the normalised keys of ``protocols.sms.message_id_keys`` (hex / decimal, leading
zeros, case) among messages still waiting for receipts, with no time limit. A message is
delivered when all its parts are, failed or expired as soon as one part is. A receipt that
arrives before its submission was recorded waits for this process's submissions in flight.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from ulid import ULID

from hub.config import SmsSettings
from hub.db.models import SmsInbound, SmsMatchKey, SmsMessage, SmsPart, utcnow
from hub.db.outbox import OutboxRelay, add_event
from hub.errors import HubError, NotReadyError
from hub.events import SmsDelivered, SmsFailed, SmsReceived
from hub.sms.metrics import SmsCounters
from hub.sms.ports import OutboundSms, ReceiptOutcome, SmsProvider, SubmitError
from hub.sms.ratelimit import TokenBucket
from hub.tasks import drain_forever
from protocols.sms import SmsRejected, encode_message, message_id_keys

log = structlog.get_logger(__name__)

SOURCE = "hub/sms"
NUMBER = re.compile(r"\+?[0-9]{3,20}")
KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_KEY_CHARS = 72
"""Match keys longer than the column are not stored (no SMSC writes ids that long)."""
MAX_ERROR_CHARS = 500
FINAL_STATES = frozenset({"delivered", "failed", "expired"})
RECEIPT_FINAL = frozenset({"delivered", "failed", "expired"})
REF_MODULO = 256

InboundHook = Callable[[AsyncSession, "InboundSms"], Awaitable[bool]]
"""Called inside the transaction that stores an inbound message, before the commit, in
registration order until one answers True (it handled the message): notice reply codes
first, citizens' cases last, each acting on the message atomically with its storing."""


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An inbound message as stored."""

    id: str
    sender: str
    recipient: str
    text: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedSms:
    """What ``enqueue`` answers."""

    id: str
    state: str
    segments: int
    created: bool


def concat_ref(message_id: str) -> int:
    """A stable 8-bit concatenation reference for a message id."""
    return sum(message_id.encode()) % REF_MODULO


def backoff(attempt: int, minimum: float, maximum: float) -> float:
    """Capped exponential back-off with jitter for the ``attempt``-th failure."""
    delay = min(maximum, minimum * 2.0 ** max(0, attempt - 1))
    return delay * random.uniform(0.5, 1.0)


class SmsService:
    """Owns the outbound queue and receives receipts and inbound messages."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        relay: OutboxRelay,
        settings: SmsSettings,
        *,
        skip_locked: bool,
    ) -> None:
        self._sessions = sessions
        self._relay = relay
        self.settings = settings
        self._skip_locked = skip_locked
        self._provider: SmsProvider | None = None
        self._wake = asyncio.Event()
        self._bucket = TokenBucket(settings.rate_per_second)
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self.counters = SmsCounters()
        self.inbound_hooks: list[InboundHook] = []
        """Extension point: see :data:`InboundHook`."""

    def attach(self, provider: SmsProvider) -> None:
        """Send through ``provider`` from now on."""
        self._provider = provider
        self.notify()

    def notify(self) -> None:
        """Sweep the queue now (new message, provider back)."""
        self._wake.set()

    # -- enqueue ---------------------------------------------------------------------------

    def _new_row(self, to: str, text: str, key: str | None) -> SmsMessage:
        """A queued message row, validated (HubError sms.invalid_number, sms.invalid_text,
        sms.invalid_key)."""
        to = to.strip()
        if not NUMBER.fullmatch(to):
            raise HubError("sms.invalid_number", "to must be 3-20 digits, optionally after +")
        if key is not None and not KEY.fullmatch(key):
            raise HubError("sms.invalid_key", "key must be 1-64 of A-Z a-z 0-9 . _ : -")
        if not text:
            raise HubError("sms.invalid_text", "text is empty")
        try:
            segments = encode_message(text, max_segments=self.settings.max_segments)
        except SmsRejected as err:
            raise HubError("sms.invalid_text", err.detail) from err
        return SmsMessage(
            id=key or str(ULID()),
            to=to,
            text=text,
            segments=len(segments),
            coding=int(segments[0].data_coding),
            state="queued",
            attempts=0,
            next_attempt_at=utcnow(),
        )

    async def enqueue(self, to: str, text: str, *, key: str | None = None) -> QueuedSms:
        """Queue ``text`` for ``to``; the same ``key`` again returns the stored message.

        Raises HubError sms.invalid_number, sms.invalid_text, sms.invalid_key or
        sms.key_conflict (the key was used for a different message).
        """
        row = self._new_row(to, text, key)
        try:
            async with self._sessions() as session, session.begin():
                existing = await session.get(SmsMessage, row.id)
                if existing is None:
                    session.add(row)
        except IntegrityError:
            existing = await self._get(row.id)
        except OperationalError as err:
            raise NotReadyError(f"database: {err.orig}") from err
        if existing is not None:
            if existing.to != row.to or existing.text != text:
                raise HubError("sms.key_conflict", "this key was used for a different message", 409)
            return QueuedSms(existing.id, existing.state, existing.segments, created=False)
        self.counters.enqueued += 1
        self.notify()
        return QueuedSms(row.id, "queued", row.segments, created=True)

    async def stage(self, session: AsyncSession, to: str, text: str, *, key: str) -> bool:
        """Queue a message inside the caller's transaction (it is sent once that commits);
        False when ``key`` is already queued. Call ``notify`` after the commit."""
        row = self._new_row(to, text, key)
        if await session.get(SmsMessage, key) is not None:
            return False
        session.add(row)
        self.counters.enqueued += 1
        return True

    async def _get(self, message_id: str) -> SmsMessage | None:
        async with self._sessions() as session:
            return await session.get(SmsMessage, message_id)

    async def get(self, message_id: str) -> SmsMessage | None:
        """The stored message (state, attempts, times)."""
        return await self._get(message_id)

    # -- sending ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Send forever (cancel to stop)."""
        await drain_forever("sms sender", self.send_once, self._wake, self.settings.poll_interval)

    async def send_once(self) -> int:
        """Claim one batch of due messages and submit them; returns how many were claimed."""
        provider = self._provider
        if provider is None or not provider.ready:
            return 0
        claimed = await self._claim(provider.name)
        try:
            results = await asyncio.gather(
                *(self._send(provider, message, attempt) for message, attempt in claimed),
                return_exceptions=True,
            )
        finally:
            for message, _ in claimed:
                future = self._inflight.pop(message.id, None)
                if future is not None and not future.done():
                    future.set_result(None)
        for (message, _), result in zip(claimed, results, strict=True):
            if isinstance(result, Exception):
                log.error("sms attempt not recorded", message_id=message.id,
                          exc_info=(type(result), result, result.__traceback__))  # fmt: skip
            elif isinstance(result, BaseException):
                raise result
        return len(claimed)

    async def _claim(self, provider: str) -> list[tuple[SmsMessage, int]]:
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.sending_timeout)
        query = (
            select(SmsMessage)
            .where(
                or_(
                    and_(SmsMessage.state == "queued", SmsMessage.next_attempt_at <= now),
                    and_(SmsMessage.state == "sending", SmsMessage.claimed_at < stale),
                )
            )
            .order_by(SmsMessage.next_attempt_at, SmsMessage.id)
            .limit(self.settings.batch_size)
        )
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True)
        claimed: list[tuple[SmsMessage, int]] = []
        async with self._sessions() as session, session.begin():
            for row in (await session.scalars(query)).all():
                if row.state == "sending":
                    self.counters.reclaimed += 1
                    log.warning("sms resent after an unfinished attempt", message_id=row.id,
                                attempt=row.attempts)  # fmt: skip
                row.state = "sending"
                row.attempts += 1
                row.claimed_at = now
                row.provider = provider
                claimed.append((row, row.attempts))
        for row, _ in claimed:
            self._inflight[row.id] = asyncio.get_running_loop().create_future()
        return claimed

    async def _send(self, provider: SmsProvider, row: SmsMessage, attempt: int) -> None:
        outbound = OutboundSms(
            id=row.id,
            to=row.to,
            sender=self.settings.sender,
            text=row.text,
            ref=concat_ref(row.id),
            max_segments=self.settings.max_segments,
        )
        try:
            await self._bucket.acquire(row.segments)
            try:
                async with asyncio.timeout(self.settings.submit_timeout):
                    ids = await provider.submit(outbound)
            except TimeoutError:
                raise SubmitError("submission timed out", temporary=True) from None
        except SubmitError as err:
            self.counters.submit_failed("temporary" if err.temporary else "permanent")
            await self._record_failure(row, attempt, err)
        else:
            await self._record_sent(row, attempt, ids)
            self.counters.submitted += 1
        finally:
            future = self._inflight.pop(row.id, None)
            if future is not None and not future.done():
                future.set_result(None)

    async def _record_sent(self, row: SmsMessage, attempt: int, ids: list[str]) -> None:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(SmsMessage)
                .where(
                    SmsMessage.id == row.id,
                    SmsMessage.state == "sending",
                    SmsMessage.attempts == attempt,
                )
                .values(state="sent", sent_at=utcnow(), last_error=None)
            )
            if _rowcount(result) != 1:
                log.warning("sms claim lost before recording", message_id=row.id)
                return
            for seq, provider_id in enumerate(ids, start=1):
                session.add(SmsPart(message_id=row.id, seq=seq, provider_id=provider_id))
                for key in message_id_keys(provider_id):
                    if len(key) <= MAX_KEY_CHARS:
                        session.add(SmsMatchKey(key=key, message_id=row.id, seq=seq))

    async def _record_failure(self, row: SmsMessage, attempt: int, err: SubmitError) -> None:
        error = err.message[:MAX_ERROR_CHARS]
        give_up = not err.temporary or attempt >= self.settings.max_attempts
        guard = (
            SmsMessage.id == row.id,
            SmsMessage.state == "sending",
            SmsMessage.attempts == attempt,
        )
        async with self._sessions() as session, session.begin():
            if give_up:
                result = await session.execute(
                    update(SmsMessage)
                    .where(*guard)
                    .values(state="failed", last_error=error, final_at=utcnow())
                )
                if _rowcount(result) == 1:
                    self._add_failed(session, row, "failed", error, attempt)
            else:
                s = self.settings
                delay = backoff(attempt, s.retry_min_delay, s.retry_max_delay)
                await session.execute(
                    update(SmsMessage)
                    .where(*guard)
                    .values(
                        state="queued",
                        last_error=error,
                        next_attempt_at=utcnow() + timedelta(seconds=delay),
                    )
                )
        if give_up:
            log.warning("sms failed", message_id=row.id, error=error, attempts=attempt)
            self._relay.notify()

    def _add_failed(
        self, session: AsyncSession, row: SmsMessage, state: str, error: str | None, attempts: int
    ) -> None:
        event = SmsFailed(
            message_id=row.id,
            to=row.to,
            state="expired" if state == "expired" else "failed",
            error=error,
            attempts=attempts,
        )
        add_event(session, event.envelope(source=SOURCE, org=self.settings.event_org,
                                          subject=row.id))  # fmt: skip
        self.counters.final(state)

    # -- receipts --------------------------------------------------------------------------

    async def receipt(
        self, provider_id: str, state: str, *, error: str | None = None
    ) -> ReceiptOutcome:
        """Apply a delivery receipt; see :class:`hub.sms.ports.SmsSink`."""
        # Submissions in flight now may be the ones this receipt is about: the receipt
        # can overtake the commit of their provider ids.
        pending = list(self._inflight.values())
        outcome = await self._apply_receipt(provider_id, state, error)
        if outcome is ReceiptOutcome.UNKNOWN_ID and pending:
            await asyncio.wait(pending, timeout=self.settings.submit_timeout)
            outcome = await self._apply_receipt(provider_id, state, error)
        self.counters.receipt(outcome)
        if outcome in (ReceiptOutcome.UNKNOWN_ID, ReceiptOutcome.AMBIGUOUS):
            log.warning("sms receipt not matched", provider_id=provider_id[:80],
                        outcome=outcome.value)  # fmt: skip
        return outcome

    async def _apply_receipt(
        self, provider_id: str, state: str, error: str | None
    ) -> ReceiptOutcome:
        try:
            async with self._sessions() as session, session.begin():
                part = await self._find_part(session, provider_id)
                if isinstance(part, ReceiptOutcome):
                    return part
                if state not in RECEIPT_FINAL:
                    return ReceiptOutcome.INTERIM
                if part.state in RECEIPT_FINAL:
                    return ReceiptOutcome.DUPLICATE
                part.state = state
                part.error = (error or "")[:64] or None
                await self._settle(session, part.message_id, state, error)
        except OperationalError as err:
            raise NotReadyError(f"database: {err.orig}") from err
        self._relay.notify()
        return ReceiptOutcome.APPLIED

    async def _find_part(self, session: AsyncSession, provider_id: str) -> SmsPart | ReceiptOutcome:
        lock = self._skip_locked
        exact = select(SmsPart).where(SmsPart.provider_id == provider_id)
        parts = list((await session.scalars(exact.with_for_update() if lock else exact)).all())
        if len(parts) == 1:
            return parts[0]
        if len(parts) > 1:
            return ReceiptOutcome.AMBIGUOUS
        keys = [k for k in message_id_keys(provider_id) if len(k) <= MAX_KEY_CHARS]
        if not keys:
            return ReceiptOutcome.UNKNOWN_ID
        candidates = (
            select(SmsMatchKey.message_id, SmsMatchKey.seq)
            .join(SmsMessage, SmsMessage.id == SmsMatchKey.message_id)
            .where(SmsMatchKey.key.in_(keys))
            .distinct()
        )
        found = (await session.execute(candidates.where(SmsMessage.state == "sent"))).all()
        if not found:  # a repeated receipt for a message already settled
            found = (await session.execute(candidates)).all()
        if len(found) > 1:
            return ReceiptOutcome.AMBIGUOUS
        if not found:
            return ReceiptOutcome.UNKNOWN_ID
        message_id, seq = found[0]
        part = await session.get(SmsPart, (message_id, seq), with_for_update=lock)
        return part if part is not None else ReceiptOutcome.UNKNOWN_ID

    async def _settle(
        self, session: AsyncSession, message_id: str, state: str, error: str | None
    ) -> None:
        message = await session.get(SmsMessage, message_id, with_for_update=self._skip_locked)
        if message is None or message.state in FINAL_STATES:
            return
        if state in ("failed", "expired"):
            message.state = state
            message.final_at = utcnow()
            message.last_error = (error or state)[:MAX_ERROR_CHARS]
            self._add_failed(session, message, state, error, message.attempts)
            return
        await session.flush()
        waiting = await session.scalar(
            select(func.count())
            .select_from(SmsPart)
            .where(SmsPart.message_id == message_id, SmsPart.state != "delivered")
        )
        if waiting:
            return
        message.state = "delivered"
        message.final_at = utcnow()
        event = SmsDelivered(
            message_id=message.id,
            to=message.to,
            segments=message.segments,
            sent_at=_iso(message.sent_at),
        )
        add_event(session, event.envelope(source=SOURCE, org=self.settings.event_org,
                                          subject=message.id))  # fmt: skip
        self.counters.final("delivered")

    # -- inbound ---------------------------------------------------------------------------

    async def inbound(
        self, sender: str, recipient: str, text: str, *, provider: str, provider_id: str | None
    ) -> str:
        """Store an inbound message, run the hooks and publish sms.received (one
        transaction); a repeat of a provider id already stored returns the stored id."""
        row = SmsInbound(
            id=str(ULID()),
            sender=sender[:32],
            recipient=recipient[:32],
            text=text,
            provider=provider,
            provider_id=provider_id,
            received_at=datetime.now(UTC),
        )
        message = InboundSms(row.id, row.sender, row.recipient, text, row.received_at)
        try:
            async with self._sessions() as session, session.begin():
                if provider_id is not None:
                    stored = await session.scalar(
                        select(SmsInbound.id).where(
                            SmsInbound.provider == provider, SmsInbound.provider_id == provider_id
                        )
                    )
                    if stored is not None:
                        self.counters.inbound_duplicates += 1
                        return stored
                session.add(row)
                for hook in self.inbound_hooks:
                    if await hook(session, message):
                        break
                event = SmsReceived(
                    inbound_id=row.id,
                    sender=row.sender,
                    recipient=row.recipient,
                    text=text,
                    received_at=row.received_at.isoformat(),
                )
                add_event(session, event.envelope(source=SOURCE, org=self.settings.event_org,
                                                  subject=row.id))  # fmt: skip
        except IntegrityError:
            self.counters.inbound_duplicates += 1
            return row.id
        except OperationalError as err:
            raise NotReadyError(f"database: {err.orig}") from err
        self.counters.inbound += 1
        self._relay.notify()
        self.notify()  # hooks may have queued answers
        return row.id


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
